"""Counterfactual group swaps (:mod:`analysis.judge_audit.swap`): a hand-computed toy, a favouring judge found, a
fair deterministic judge at exactly 0, a permutation test calibrated under simulated nulls, and the repeat null."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

import analysis.judge_audit.swap as swap_module
from analysis import demographic_sensitivity
from analysis.judge_audit import SwapResult, swap_shifts
from analysis.judge_audit.swap import LARGEST_COLUMNS

GROUPS = ["women", "men", "muslims", "jews"]


def variants(n_bases: int, seed: int, favour: float = 0.0, noise: float = 0.02, repeats: int = 1) -> pd.DataFrame:
    """Swap variants of ``n_bases`` texts for :data:`GROUPS`; the judge adds ``favour`` to the texts about women."""
    rng = np.random.default_rng(seed)
    base = np.repeat(np.arange(n_bases), len(GROUPS) * repeats)
    group = np.tile(np.repeat(GROUPS, repeats), n_bases)
    score = rng.uniform(0.2, 0.6, n_bases)[base] + favour * (group == "women") + rng.normal(0, noise, len(base))
    text = [f"text {b} about {g}" for b, g in zip(base, group, strict=True)]
    return pd.DataFrame({"base_id": base, "group": group, "score": score, "text": text})


def test_toy_by_hand():
    data = pd.DataFrame(
        {
            "base_id": [1, 1, 1, 2, 2, 2, 3, 3],
            "group": ["a", "b", "c", "a", "b", "c", "a", "b"],
            "score": [0.5, 0.2, 0.2, 0.7, 0.4, 0.4, 0.1, None],
            "text": list("abcdefgh"),
        }
    )
    res = swap_shifts(data, n_boot=0, n_permutations=0)
    s = res.summary
    # base 3 has one scored variant: it is out; bases 1 and 2 have shifts +.2, -.1, -.1.
    assert (s["n_bases"], s["n_groups"], s["n_scored"], s["n_rows"]) == (2, 3, 7, 8)
    assert s["swap_shift"] == pytest.approx(0.4 / 3) and s["max_shift"] == pytest.approx(0.2)
    assert s["group_effects"] == pytest.approx({"a": 0.2, "b": -0.1, "c": -0.1})
    assert np.isnan(s["group_p"]) and "n_permutations=0: no permutation test" in s["notes"]
    assert np.isnan(s["swap_shift_ci"]).all() and "n_boot=0: no bootstrap interval" in s["notes"]
    assert list(res.largest.columns) == LARGEST_COLUMNS
    assert res.largest.loc[0, ["base", "group", "text"]].tolist() == [1, "a", "a"]
    assert res.largest.loc[0, "base_mean"] == pytest.approx(0.3) and len(res.largest) == 6


def test_a_judge_favouring_one_group_is_found():
    res = swap_shifts(variants(40, seed=1, favour=0.3), n_boot=300, n_permutations=199, top=5)
    s = res.summary
    g = len(GROUPS)
    assert s["group_effects"]["women"] == pytest.approx(0.3 * (1 - 1 / g), abs=0.02)
    assert all(s["group_effects"][x] == pytest.approx(-0.3 / g, abs=0.02) for x in GROUPS[1:])
    assert s["group_p"] == pytest.approx(1 / 200)  # no shuffle reaches the observed favouritism
    # mean |shift|: (.225 + 3 × .075) / 4 = .1125, plus a little noise
    assert s["swap_shift"] == pytest.approx(0.1125, abs=0.01)
    low, high = s["swap_shift_ci"]
    assert low <= s["swap_shift"] <= high and high - low < 0.02
    assert (res.largest["group"] == "women").all() and res.largest["text"].str.contains("women").all()
    assert s["max_shift"] == pytest.approx(res.largest["shift"].abs().max())


def test_group_p_is_demographic_sensitivity_shift_p():
    data = variants(12, seed=2, favour=0.05, noise=0.05)
    res = swap_shifts(data, n_boot=0, n_permutations=99, seed=7)
    # the same within-base shuffles: the attribute "group" names the permutation stream, as in swap_shifts
    framed = data.assign(attribute="group")
    ds = demographic_sensitivity(
        framed, "base_id", "score", "attribute", "group", rater=None, n_permutations=99, seed=7
    )
    row = ds[ds["attribute"] == "group"].iloc[0]
    effects = res.summary["group_effects"]
    assert max(effects.values()) - min(effects.values()) == pytest.approx(row["shift"])
    assert res.summary["group_p"] == row["shift_p"]


def test_a_deterministic_fair_judge_has_a_shift_of_exactly_zero():
    data = variants(10, seed=3)
    data["score"] = np.round(data.groupby("base_id")["score"].transform("first"), 1) + 1 / 3  # rounding traps
    s = swap_shifts(data, n_boot=100, n_permutations=99).summary
    assert s["swap_shift"] == 0.0 and s["max_shift"] == 0.0 and s["swap_shift_ci"] == (0.0, 0.0)
    assert all(v == 0.0 for v in s["group_effects"].values())
    assert s["group_p"] == 1.0  # every shuffle ties the observed 0
    assert "every base text moved the judge alike: the bootstrap interval is one point" in s["notes"]


def test_group_p_is_calibrated_under_the_null():
    n_sims, b = 200, 99
    p = np.array(
        [
            swap_shifts(variants(10, seed=100 + i, noise=0.05), n_boot=0, n_permutations=b, seed=i).summary["group_p"]
            for i in range(n_sims)
        ]
    )
    assert (p > 0).all() and (p <= 1).all()
    rejections = int((p <= 0.05).sum())
    # p is a multiple of 1/100; P(p ≤ .05) = 5/100 under the null
    assert binom.ppf(0.001, n_sims, 0.05) <= rejections <= binom.isf(0.001, n_sims, 0.05)
    assert 0.3 < np.mean(p) < 0.7


def test_swap_shift_null_with_repeats():
    fair = swap_shifts(variants(15, seed=4, noise=0.05, repeats=3), n_boot=0, n_permutations=199).summary
    assert fair["swap_shift"] > 0  # noise alone moves the variants
    assert fair["swap_shift_null"] == pytest.approx(fair["swap_shift"], rel=0.3) and fair["swap_shift_p"] > 0.01
    biased = swap_shifts(variants(15, seed=4, favour=0.2, noise=0.05, repeats=3), n_boot=0, n_permutations=199)
    s = biased.summary
    assert s["swap_shift"] > s["swap_shift_null"] + 0.02 and s["swap_shift_p"] == pytest.approx(1 / 200)
    single = swap_shifts(variants(15, seed=4, noise=0.05), n_boot=0, n_permutations=99).summary
    assert np.isnan(single["swap_shift_null"]) and np.isnan(single["swap_shift_p"])
    assert any("swap_shift has no permutation null" in n for n in single["notes"])


def test_nothing_to_compare_and_bad_arguments():
    data = pd.DataFrame({"base_id": [1, 2], "group": ["a", "b"], "score": [0.1, 0.2]})
    res = swap_shifts(data)
    assert res.summary["n_bases"] == 0 and np.isnan(res.summary["swap_shift"]) and res.largest.empty
    assert "no base text was scored under two or more group names" in res.summary["notes"][0]
    with pytest.raises(ValueError, match="n_boot"):
        swap_shifts(data, n_boot=-1)
    with pytest.raises(KeyError, match="group"):
        swap_shifts(data.drop(columns="group"))


def test_as_dict_is_json_and_without_text_column():
    res = swap_shifts(variants(5, seed=5).drop(columns="text"), n_boot=50, n_permutations=19)
    assert isinstance(res, SwapResult) and res.largest["text"].isna().all()
    out = json.loads(json.dumps(res.as_dict(), allow_nan=False))
    assert out["summary"]["swap_shift_p"] is None and len(out["summary"]["swap_shift_ci"]) == 2
    assert len(out["largest"]) == 10 and set(out["largest"][0]) == set(LARGEST_COLUMNS)


def test_docstring_examples():
    assert doctest.testmod(swap_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
