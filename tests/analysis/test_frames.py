"""Shared DataFrame helpers (:mod:`analysis.frames`): the long-to-wide pivot, integer codes, JSON-safe values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.frames import integer_codes, jsonable, wide_matrix


def test_frames_tolerate_pandas_objects():
    # A long frame with string raters and a non-default index still pivots correctly.
    from analysis import icc

    data = pd.DataFrame({"t": [1, 1, 2, 2, 3, 3], "r": ["a", "b"] * 3, "y": [1.0, 2.0, 2.0, 2.5, 3.0, 3.5]})
    data.index = [10, 10, 11, 11, 12, 12]
    assert icc(data, "t", "r", "y").loc[0, "ICC"] == pytest.approx(
        icc(data.reset_index(drop=True), "t", "r", "y").loc[0, "ICC"]
    )


def test_wide_matrix_averages_duplicates_and_counts_them():
    data = pd.DataFrame({"u": [1, 1, 1, 2, 2], "r": ["a", "a", "b", "a", "b"], "y": [1.0, 3.0, 5.0, 2.0, np.nan]})
    wide = wide_matrix(data, "u", "r", "y")
    np.testing.assert_array_equal(wide.values, [[2.0, 5.0], [2.0, np.nan]])
    assert wide.n_duplicates == 1 and list(wide.raters) == ["a", "b"]
    assert list(wide.complete().units) == [1]


def test_integer_codes_of_compact_integers_categoricals_and_strings():
    codes, uniques = integer_codes(pd.Series([5, 7, 5]), sort=False)
    assert codes.tolist() == [0, 2, 0] and uniques is None  # compact integers: x − min, no hashing
    codes, uniques = integer_codes(pd.Series(["b", "a", "b"], dtype="category"), sort=True)
    assert [uniques[c] for c in codes] == ["b", "a", "b"]
    codes, uniques = integer_codes(pd.Series(["b", "a", "b"]), sort=True)
    assert codes.tolist() == [1, 0, 1] and list(uniques) == ["a", "b"]


def test_jsonable_makes_table_cells_json_safe():
    value = {1: [np.float64(0.5), np.nan, float("inf"), pd.NA, pd.NaT], "a": (np.int64(3), np.bool_(True))}
    assert jsonable(value) == {"1": [0.5, None, None, None, None], "a": [3, True]}
    assert jsonable(np.array([1.0, np.nan])) == [1.0, None]
    assert jsonable(pd.Timestamp("2024-01-02")) == "2024-01-02 00:00:00"  # anything else: its str
    json.dumps(jsonable(value), allow_nan=False)


@pytest.mark.parametrize("kind", ["float", "str", "category"])
def test_wide_matrix_drops_and_counts_rows_with_a_missing_id(kind):
    # Rater "a" never rated unit 3: the rating of a row without a unit id must not land in that empty cell.
    units = pd.Series([1.0, 1, 2, 2, 3, np.nan])
    if kind == "str":
        units = units.map({1.0: "x", 2.0: "y", 3.0: "z"})
    elif kind == "category":
        units = units.astype("category")
    data = pd.DataFrame({"u": units, "r": ["a", "b", "a", "b", "b", "b"], "y": [1.0, 2, 3, 4, 6, 100]})
    wide = wide_matrix(data, "u", "r", "y")
    np.testing.assert_array_equal(wide.values, [[1.0, 2.0], [3.0, 4.0], [np.nan, 6.0]])
    assert wide.n_missing_id == 1 and len(wide.units) == 3
    assert wide.complete().n_missing_id == 1
    # A missing rater id: unit 2 has no rating by "b" (the last rater), and the row must not fill it.
    data = pd.DataFrame({"u": [1, 1, 2, 2], "r": ["a", "b", "a", None], "y": [1.0, 2, 3, 100]})
    wide = wide_matrix(data, "u", "r", "y")
    np.testing.assert_array_equal(wide.values, [[1.0, 2.0], [3.0, np.nan]])
    assert wide.n_missing_id == 1


def test_wide_matrix_drops_unused_categories_of_units_and_raters():
    data = pd.DataFrame(
        {
            "u": pd.Categorical(["p", "p", "q", "q"], categories=["o", "p", "q", "s"]),
            "r": pd.Categorical(["a", "b", "a", "b"], categories=["a", "b", "c"]),
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    wide = wide_matrix(data, "u", "r", "y")
    assert list(wide.units) == ["p", "q"] and list(wide.raters) == ["a", "b"]
    np.testing.assert_array_equal(wide.values, [[1.0, 2.0], [3.0, 4.0]])
    # Nullable integer ids with a missing value.
    data = pd.DataFrame({"u": pd.array([5, 5, 7, 7, None], dtype="Int64"), "r": list("ababa"), "y": [1.0, 2, 3, 4, 9]})
    wide = wide_matrix(data, "u", "r", "y")
    assert list(wide.units) == [5, 7] and wide.n_missing_id == 1
    np.testing.assert_array_equal(wide.values, [[1.0, 2.0], [3.0, 4.0]])
