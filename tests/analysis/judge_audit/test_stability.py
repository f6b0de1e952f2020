"""Test–retest (:mod:`analysis.judge_audit.stability`): identical passes, a noisy second pass against the
``krippendorff`` package, constant passes (alpha undefined), unscored second answers and bad input."""

from __future__ import annotations

import doctest

import krippendorff
import numpy as np
import pandas as pd
import pytest

import analysis.judge_audit.stability as stability_module
from analysis.judge_audit import retest


def passes(n: int, noise: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 1, n)
    first = pd.DataFrame({"item_id": np.arange(n), "score": truth})
    second = pd.DataFrame({"item_id": np.arange(n), "score": np.clip(truth + rng.normal(0, noise, n), 0, 1)})
    return first, second


def test_identical_passes():
    first, _ = passes(30, 0)
    res = retest(first, first.sample(frac=1, random_state=1), n_boot=100)  # row order does not matter
    assert res["n"] == 30 and res["retest_shift"] == 0 and res["exact_share"] == 1 and res["identical"] is True
    assert res["retest_alpha"] == pytest.approx(1.0) and res["n_unscored_second"] == 0 and res["notes"] == []
    low, high = res["retest_alpha_ci"]
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_noisy_second_pass_matches_the_krippendorff_package():
    first, second = passes(80, 0.15, seed=2)
    res = retest(first, second, n_boot=300, seed=3)
    reference = krippendorff.alpha(
        reliability_data=np.vstack([first["score"], second["score"]]), level_of_measurement="interval"
    )
    assert res["retest_alpha"] == pytest.approx(reference, abs=1e-12)
    low, high = res["retest_alpha_ci"]
    assert low <= res["retest_alpha"] <= high and 0 < high - low < 0.3
    assert res["retest_shift"] == pytest.approx(np.abs(first["score"] - second["score"]).mean())
    assert res["exact_share"] < 0.2 and res["identical"] is False


def test_constant_passes_have_no_alpha():
    same = pd.DataFrame({"item_id": [1, 2, 3], "score": [0.0, 0.0, 0.0]})
    res = retest(same, same, n_boot=50)
    assert np.isnan(res["retest_alpha"]) and np.isnan(res["retest_alpha_ci"]).all() and res["identical"] is True
    assert "alpha is undefined" in res["notes"][0]
    other = same.assign(score=0.5)
    res = retest(same, other, n_boot=50)
    assert np.isnan(res["retest_alpha"]) and res["identical"] is False
    assert res["retest_shift"] == 0.5 and res["exact_share"] == 0


def test_unscored_second_answers_and_items_only_in_the_second_pass():
    first = pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"], "score": [0.1, 0.4, 0.8, 0.3, np.nan]})
    second = pd.DataFrame({"item_id": ["a", "b", "c", "z"], "score": [0.1, 0.5, np.nan, 0.9]})
    res = retest(first, second, n_boot=0)
    # shared and scored: a, b; c is unscored in the second pass, d absent from it; e was never scored; z is new
    assert res["n"] == 2 and res["n_unscored_second"] == 2
    assert res["retest_shift"] == pytest.approx(0.05) and res["exact_share"] == 0.5
    assert "2 item(s) scored in the first pass were not scored in the second" in res["notes"]
    assert "n_boot=0: no bootstrap interval" in res["notes"] and np.isfinite(res["retest_alpha"])


def test_too_few_items_and_bad_input():
    one = pd.DataFrame({"item_id": [1], "score": [0.2]})
    res = retest(one, one.assign(score=0.3))
    assert res["n"] == 1 and np.isnan(res["retest_alpha"]) and "one item" in res["notes"][0]
    res = retest(one, pd.DataFrame({"item_id": [2], "score": [0.3]}))
    assert res["n"] == 0 and np.isnan(res["retest_shift"]) and res["identical"] is None
    twice = pd.DataFrame({"item_id": [1, 1], "score": [0.2, 0.3]})
    with pytest.raises(ValueError, match="repeated item"):
        retest(twice, one)
    with pytest.raises(KeyError, match="second"):
        retest(one, one.rename(columns={"score": "s"}))


def test_docstring_examples():
    assert doctest.testmod(stability_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
