"""``values_as_strings`` and ``pairs_in`` (:mod:`analysis.frames`) give what ``astype(str)`` on every row gives
(missing values stay ``NaN``, never a string), for categoricals with unused categories, object and str columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.frames import pairs_in, values_as_strings

NAMES = ["judge-a", "judge-b", None, "judge-c", "judge-a", "nan"]
DIMS = ["toxicity", "unsafe", "toxicity", None, "unsafe", "toxicity"]


def _columns():
    cat = pd.Series(pd.Categorical(NAMES, categories=["judge-c", "judge-a", "judge-b", "unused", "nan"]))
    return [cat, pd.Series(NAMES, dtype=object), pd.Series(NAMES, dtype="str")]


@pytest.mark.parametrize("column", _columns())
def test_values_as_strings_is_set_of_astype_str(column):
    assert values_as_strings(column) == {v for v in column.astype(str) if isinstance(v, str)}


@pytest.mark.parametrize("column", _columns())
def test_pairs_in_equals_the_string_pairs(column):
    dims = pd.Series(pd.Categorical(DIMS))
    pairs = {("judge-a", "unsafe"), ("nan", "toxicity"), ("judge-c", "nan"), ("unused", "toxicity")}
    # what the judges' filter did before, on every row
    want = (column.astype(str) + "\x00" + dims.astype(str)).isin({f"{a}\x00{b}" for a, b in pairs})
    got = pairs_in(column, dims, pairs)
    assert got.dtype == bool and np.array_equal(got, want.to_numpy())
    assert got.tolist() == [False, False, False, False, True, True]
