"""Framing sensitivity for the judge card (:mod:`analysis.judge_audit.framing`): a framed judge whose "female"
framing adds 0.2 is found, a judge the framing does not move is not, and the wrapper keeps
:func:`analysis.demographics.demographic_sensitivity`'s ``ALL`` row with its null."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import analysis.judge_audit.framing as framing_module
from analysis import demographic_sensitivity
from analysis.judge_audit import FRAMING_COLUMNS, framing_sensitivity


def framed(n_items: int, effect: float, seed: int, repeats: int = 1, judge: str = "gpt") -> pd.DataFrame:
    """One framed judge: every item scored ``repeats`` times as a woman and as a man; "female" adds ``effect``."""
    rng = np.random.default_rng(seed)
    item = np.repeat(np.arange(n_items), 2 * repeats)
    value = np.tile(np.repeat(["female", "male"], repeats), n_items)
    score = rng.uniform(0.2, 0.7, n_items)[item] + effect * (value == "female") + rng.normal(0, 0.03, len(item))
    return pd.DataFrame(
        {"item_id": item, "rater_name": judge, "framing_attribute": "gender", "framing_value": value, "score": score}
    )


def test_a_female_framing_that_adds_two_tenths_is_found():
    out = framing_sensitivity(framed(60, 0.2, seed=1), n_permutations=199)
    assert list(out.columns) == FRAMING_COLUMNS and len(out) == 1
    row = out.iloc[0]
    assert row["rater"] == "gpt" and row["n_items"] == 60 and row["n_attributes"] == 1
    assert row["shift"] == pytest.approx(0.2, abs=0.02) and row["shift_p"] == pytest.approx(1 / 200)
    assert row["shift_null"] < 0.05  # the null is next to the figure (sign flips of ±.2: about .2·√(2/60π))
    # one score per item and framing: DS has no permutation null, and the note says so
    assert np.isnan(row["ds_null"]) and np.isnan(row["ds_p"]) and "no permutation null" in row["note"]


def test_a_judge_the_framing_does_not_move():
    row = framing_sensitivity(framed(60, 0.0, seed=2), n_permutations=199).iloc[0]
    assert row["shift"] < 0.02 and row["shift_p"] > 0.01
    assert row["shift_null"] == pytest.approx(row["shift"], rel=1.0)


def test_repeats_give_ds_its_null_and_a_noise_floor():
    row = framing_sensitivity(framed(30, 0.0, seed=3, repeats=2), n_permutations=199).iloc[0]
    assert np.isfinite(row["ds_null"]) and np.isfinite(row["noise_floor"]) and row["ds_p"] > 0.01
    row = framing_sensitivity(framed(30, 0.2, seed=3, repeats=2), n_permutations=199).iloc[0]
    assert row["ds"] > row["ds_null"] and row["ds_p"] == pytest.approx(1 / 200)


def test_the_all_row_of_demographic_sensitivity_and_judges_without_a_comparison():
    data = pd.concat(
        [
            framed(20, 0.1, seed=4, judge="b"),
            framed(20, 0.0, seed=5, judge="a"),
            # judge c saw only the female framing: nothing to compare
            framed(5, 0.0, seed=6, judge="c").query("framing_value == 'female'"),
            # unframed rows are ignored
            framed(5, 0.0, seed=7, judge="d").assign(framing_attribute=None),
        ],
        ignore_index=True,
    )
    out = framing_sensitivity(data, n_permutations=99, seed=3)
    assert out["rater"].tolist() == ["a", "b", "c"]
    ds = demographic_sensitivity(data, "item_id", "score", n_permutations=99, seed=3)
    overall = ds[ds["attribute"] == "ALL"].set_index("rater")
    for judge in ("a", "b"):
        row = out.set_index("rater").loc[judge]
        assert row["ds"] == overall.loc[judge, "ds"] and row["shift_p"] == overall.loc[judge, "shift_p"]
        np.testing.assert_equal(row["ds_p"], overall.loc[judge, "p_value"])
    c = out.set_index("rater").loc["c"]
    assert np.isnan(c["shift"]) and np.isnan(c["shift_p"]) and c["n_items"] == 0
    assert "no item was scored under two values" in c["note"]


def test_one_judge_without_a_rater_column():
    out = framing_sensitivity(framed(10, 0.2, seed=8).drop(columns="rater_name"), rater=None, n_permutations=0)
    assert out["rater"].tolist() == ["rater"] and np.isnan(out.loc[0, "shift_p"])
    assert "n_permutations=0" in out.loc[0, "note"]


def test_docstring_examples():
    assert doctest.testmod(framing_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
