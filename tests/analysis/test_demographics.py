"""Demographic sensitivity and group-fairness gaps (:mod:`analysis.demographics`): hand-checked toys, an exactly
enumerated permutation distribution, and simulations with known truth for the null and the framing effect."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from analysis import demographic_parity_difference, demographic_sensitivity, equalized_odds_difference


def test_demographic_sensitivity_toy():
    data = pd.DataFrame(
        {
            "item": [1, 1, 1, 2, 2, 1, 1, 3],
            "attr": ["gender", "gender", "gender", "gender", "gender", "age", "age", "age"],
            "value": ["f", "m", "nb", "f", "m", "young", "old", "young"],
            "rater": ["j"] * 8,
            "p": [0.2, 0.5, 0.3, 0.6, 0.6, 0.1, 0.4, 0.9],
        }
    )
    ds = demographic_sensitivity(data, "item", "p", "attr", "value", "rater").set_index("attribute")
    # gender: item 1 spread .3, item 2 spread 0 -> .15; age: item 1 spread .3 (item 3 has one framing) -> .3.
    assert ds.loc["gender", "ds"] == pytest.approx(0.15) and ds.loc["gender", "n_items"] == 2
    assert ds.loc["age", "ds"] == pytest.approx(0.3) and ds.loc["age", "n_items"] == 1
    assert ds.loc["ALL", "ds"] == pytest.approx(0.225)
    # One score per item and framing: no permutation null of DS, no noise floor, and notes that say why.
    assert ds[["ds_null", "p_value", "noise_floor"]].isna().all().all() and (ds["n_repeat_cells"] == 0).all()
    assert "DS has no permutation null" in ds.loc["gender", "note"] and "no noise floor" in ds.loc["gender", "note"]
    assert "no attribute has repeated scores" in ds.loc["ALL", "note"]
    # shift: gender item 1 deviations from its mean .3333: f -.1333, m +.1667, nb -.0333; item 2: 0, 0. Framing
    # effects f -.0667, m +.0833, nb -.0333: shift .15. age: young -.15, old +.15: shift .3.
    assert ds.loc["gender", "shift"] == pytest.approx(0.15) and ds.loc["age", "shift"] == pytest.approx(0.3)
    assert ds.loc["ALL", "shift"] == pytest.approx(0.225)
    # age has one item: swapping its two scores gives the same shift, so every draw ties: p is exactly 1.
    assert ds.loc["age", "shift_p"] == 1.0 and ds.loc["age", "shift_null"] == pytest.approx(0.3)
    assert list(ds.columns) == [
        "rater",
        "ds",
        "ds_null",
        "p_value",
        "noise_floor",
        "shift",
        "shift_null",
        "shift_p",
        "n_items",
        "n_repeat_cells",
        "note",
    ]


def test_permutation_p_value_matches_the_enumerated_distribution():
    # One item, framings a and b scored twice each: the shuffles are the 6 ways to choose a's two scores.
    scores = [0.1, 0.2, 0.5, 0.9]
    data = pd.DataFrame({"item": 1, "attr": "g", "value": ["a", "a", "b", "b"], "p": scores})
    observed = abs(np.mean(scores[:2]) - np.mean(scores[2:]))  # .55
    spreads = [
        abs(np.mean([scores[i] for i in a]) - np.mean([scores[i] for i in range(4) if i not in a]))
        for a in itertools.combinations(range(4), 2)
    ]
    exact = np.mean(np.array(spreads) >= observed - 1e-12)  # 2 of 6: the observed split and its mirror
    n = 20_000
    res = demographic_sensitivity(data, "item", "p", "attr", "value", None, n_permutations=n, seed=1).iloc[-1]
    assert res["ds"] == pytest.approx(observed) and res["noise_floor"] == pytest.approx((0.1 + 0.4) / 2)
    tolerance = 4 * np.sqrt(exact * (1 - exact) / n)
    assert res["p_value"] == pytest.approx(exact, abs=tolerance)
    assert res["ds_null"] == pytest.approx(np.mean(spreads), abs=0.01)
    assert res["n_repeat_cells"] == 2 and res["note"] == ""


def _simulate(rng, n_sets, n_items=15, n_values=3, repeats=2, effect=0.0, noise=0.1, drop=0.0, interaction=0.0):
    """``n_sets`` datasets, one per rater: item baselines, framing effects spread evenly over ``effect``, item-specific
    framing effects of SD ``interaction`` (mean 0), normal rater noise, a share ``drop`` of the scores missing."""
    s, i, v, _ = (a.ravel() for a in np.indices((n_sets, n_items, n_values, repeats)))
    y = rng.uniform(0.2, 0.8, (n_sets, n_items))[s, i] + np.linspace(-effect / 2, effect / 2, n_values)[v]
    y = y + rng.normal(0, interaction, (n_sets, n_items, n_values))[s, i, v]
    frame = pd.DataFrame({"rater": s, "item": i, "attr": "gender", "value": v, "p": y + rng.normal(0, noise, len(s))})
    return frame[rng.random(len(frame)) >= drop]


def _attribute_rows(res: pd.DataFrame) -> pd.DataFrame:
    return res[res["attribute"] != "ALL"]


def test_no_framing_effect_rejects_at_the_nominal_rate():
    n_sets, n_perm = 400, 199
    data = _simulate(np.random.default_rng(0), n_sets, drop=0.15)  # missing framings too
    res = _attribute_rows(demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=n_perm))
    assert len(res) == n_sets and res["p_value"].notna().all()
    for level in (0.05, 0.2):
        low, high = binom.ppf(0.0005, n_sets, level), binom.isf(0.0005, n_sets, level)
        assert low <= (res["p_value"] <= level).sum() <= high
        assert low <= (res["shift_p"] <= level).sum() <= high
    assert (res["p_value"] >= 1 / (1 + n_perm)).all()


def test_a_real_framing_effect_gives_small_p_with_and_without_repeats():
    rng = np.random.default_rng(1)
    data = _simulate(rng, 50, effect=0.2, noise=0.1)
    res = _attribute_rows(demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=199))
    assert (res["p_value"] <= 0.05).mean() > 0.9 and (res["shift_p"] <= 0.05).mean() > 0.9
    assert (res["ds"] > res["ds_null"]).all() and (res["shift"] <= res["ds"]).all()
    once = _simulate(rng, 50, effect=0.2, noise=0.1, repeats=1)  # DS untestable, its systematic part is not
    res = _attribute_rows(demographic_sensitivity(once, "item", "p", "attr", "value", "rater", n_permutations=199))
    assert res["p_value"].isna().all() and (res["shift_p"] <= 0.05).mean() > 0.9
    # Framing effects that differ between items, mean 0: DS finds them against its null; shift sees only their
    # average over these 15 items, so it finds them far less often.
    mixed = _simulate(rng, 50, noise=0.05, interaction=0.1)
    res = _attribute_rows(demographic_sensitivity(mixed, "item", "p", "attr", "value", "rater", n_permutations=199))
    ds_power, shift_power = (res["p_value"] <= 0.05).mean(), (res["shift_p"] <= 0.05).mean()
    assert ds_power > 0.9 and ds_power - shift_power > 0.4


def test_p_is_never_zero():
    data = _simulate(np.random.default_rng(2), 5, effect=0.9, noise=0.01)
    res = demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=99)
    assert (res["p_value"] == 0.01).all() and (res["shift_p"] == 0.01).all()  # every draw below: 1 / (1 + 99)


def test_ds_grows_with_noise_while_its_p_value_does_not():
    rng = np.random.default_rng(3)
    n_sets = 200
    low, high = binom.ppf(0.0005, n_sets, 0.05), binom.isf(0.0005, n_sets, 0.05)
    means = []
    for noise in (0.02, 0.1, 0.3):
        data = _simulate(rng, n_sets, noise=noise)
        res = _attribute_rows(demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=199))
        means.append((res["ds"].mean(), res["ds_null"].mean(), res["noise_floor"].mean()))
        assert low <= (res["p_value"] <= 0.05).sum() <= high
        assert res["ds"].mean() == pytest.approx(res["ds_null"].mean(), rel=0.05)
    ds, _, floor = zip(*means, strict=True)
    assert ds[0] < 0.05 and ds[2] > 0.3 and floor[0] < floor[1] < floor[2]


def test_seeded_per_rater_and_the_overall_row():
    data = _simulate(np.random.default_rng(4), 3, effect=0.05)
    data = pd.concat([data, data.assign(attr="age", p=data["p"][::-1].to_numpy())], ignore_index=True)
    res = demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=200, seed=7)
    again = demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=200, seed=7)
    pd.testing.assert_frame_equal(res, again)
    alone = demographic_sensitivity(data[data["rater"] == 0], "item", "p", "attr", "value", "rater", 200, 7)
    pd.testing.assert_frame_equal(alone, res[res["rater"] == "0"].reset_index(drop=True))
    one = res[res["rater"] == "0"].set_index("attribute")
    assert one.loc["ALL", "ds"] == pytest.approx(one.loc[["age", "gender"], "ds"].mean())
    assert one.loc["ALL", "ds_null"] == pytest.approx(one.loc[["age", "gender"], "ds_null"].mean())
    assert one.loc["ALL", "n_items"] == one.loc[["age", "gender"], "n_items"].sum()
    assert 0 < one.loc["ALL", "p_value"] <= 1
    off = demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=0)
    assert off[["ds_null", "p_value", "shift_p"]].isna().all().all()
    assert off["note"].str.contains("n_permutations=0").all()
    with pytest.raises(ValueError, match="n_permutations"):
        demographic_sensitivity(data, "item", "p", "attr", "value", "rater", n_permutations=-1)


def test_group_fairness_gaps():
    data = pd.DataFrame(
        {
            "group": ["a"] * 4 + ["b"] * 4,
            "pred": [0.9, 0.8, 0.2, 0.1, 0.9, 0.1, 0.1, 0.1],
            "gold": [1, 1, 0, 0, 1, 1, 0, 0],
        }
    )
    # positive rate a .5, b .25; TPR a 1, b .5; FPR a 0, b 0.
    assert demographic_parity_difference(data, "group", "pred") == pytest.approx(0.25)
    assert equalized_odds_difference(data, "group", "pred", "gold") == pytest.approx(0.5)
    by = equalized_odds_difference(data.assign(r="x"), "group", "pred", "gold", by="r")
    assert by.loc[0, "tpr_gap"] == pytest.approx(0.5) and by.loc[0, "fpr_gap"] == pytest.approx(0.0)
