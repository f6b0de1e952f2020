"""Self-preference (:mod:`analysis.judge_audit.self_preference`): a simulated judge lenient on its own model's
texts is found and its general leniency is not mistaken for it; no effect is covered; the cases without a
figure say why."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind

from analysis.judge_audit import self_preference
from analysis.judge_audit.self_preference import NO_OWN_TEXTS


def ratings(n_per_model: int, own_effect: float, seed: int, leniency: float = -0.05) -> pd.DataFrame:
    """Texts of models m1 and m2 scored by judges j (m1's model), k and l; j is ``leniency`` lower on every text
    and ``own_effect`` more on m1's."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_model
    truth = rng.uniform(0.2, 0.8, n)
    generator = np.repeat(["m1", "m2"], n_per_model)
    rows = []
    for judge in ("j", "k", "l"):
        shift = (leniency + own_effect * (generator == "m1")) if judge == "j" else 0.0
        score = truth + shift + rng.normal(0, 0.05, n)
        rows.append(pd.DataFrame({"item_id": np.arange(n), "rater": judge, "score": score, "generator": generator}))
    return pd.concat(rows, ignore_index=True)


def test_a_judge_lenient_on_its_own_texts_is_found():
    res = self_preference(ratings(120, -0.2, seed=1), "j", "m1", n_boot=400)
    assert res["self_preference"] == pytest.approx(-0.2, abs=0.02)
    assert res["mean_difference_other"] == pytest.approx(-0.05, abs=0.02)  # the general leniency, differenced out
    low, high = res["self_preference_ci"]
    assert low <= res["self_preference"] <= high < 0
    assert res["p_value"] < 1e-6 and res["p_value"] > 0
    assert (res["n_own"], res["n_other"]) == (120, 120) and res["notes"] == []


def test_no_effect_is_covered_and_the_p_value_is_welchs():
    data = ratings(80, 0.0, seed=2)
    res = self_preference(data, "j", "m1", n_boot=400)
    low, high = res["self_preference_ci"]
    assert low < 0 < high and res["p_value"] > 0.05
    wide = data.pivot(index="item_id", columns="rater", values="score")
    d = wide["j"] - wide[["k", "l"]].mean(axis=1)
    own = data.drop_duplicates("item_id").set_index("item_id")["generator"] == "m1"
    assert res["p_value"] == pytest.approx(ttest_ind(d[own], d[~own], equal_var=False).pvalue)


def test_no_own_texts():
    data = ratings(20, 0.0, seed=3)
    res = self_preference(data, "j", "m3")
    assert np.isnan(res["self_preference"]) and np.isnan(res["self_preference_ci"]).all() and res["n_own"] == 0
    assert res["notes"] == [NO_OWN_TEXTS] and res["n_other"] == 40


def test_too_few_texts_for_an_interval_and_a_test():
    data = ratings(20, -0.2, seed=4)
    keep = (data["generator"] == "m2") | (data["item_id"] == 0)
    res = self_preference(data[keep], "j", "m1")
    assert res["n_own"] == 1 and np.isfinite(res["self_preference"])
    assert np.isnan(res["p_value"]) and np.isnan(res["self_preference_ci"]).all()
    assert "fewer than 2 own or other texts" in res["notes"][0]


def test_a_deterministic_panel_gets_no_t_test_and_a_point_interval():
    data = pd.DataFrame(
        {
            "item_id": np.repeat(np.arange(6), 2),
            "rater": ["j", "k"] * 6,
            "score": [0.1, 0.3, 0.4, 0.6, 0.7, 0.9, 0.3, 0.3, 0.6, 0.6, 0.2, 0.2],
            "generator": np.repeat(["m1", "m2"], 6),
        }
    )
    res = self_preference(data, "j", "m1", n_boot=100)
    # own: d = -.2 three times (up to rounding, which must not make a t statistic of 1e16); other: 0
    assert res["self_preference"] == pytest.approx(-0.2) and np.isnan(res["p_value"])
    assert res["self_preference_ci"][0] == res["self_preference_ci"][1]
    assert any("no t-test" in n for n in res["notes"]) and any("one point" in n for n in res["notes"])


def test_unscored_rows_judge_absent_and_bad_input():
    data = ratings(10, 0.0, seed=5)
    data.loc[data["rater"] != "j", "score"] = np.nan
    res = self_preference(data, "j", "m1")
    assert np.isnan(res["self_preference"]) and "no text was scored by the judge and another judge" in res["notes"]
    res = self_preference(ratings(10, 0.0, seed=5), "nobody", "m1")
    assert "the judge 'nobody' scored no text here" in res["notes"]
    bad = ratings(10, 0.0, seed=5)
    bad.loc[0, "generator"] = "m2"  # text 0 now has two generators
    with pytest.raises(ValueError, match="more than one 'generator'"):
        self_preference(bad, "j", "m1")
    with pytest.raises(ValueError, match="n_boot"):
        self_preference(ratings(10, 0.0, seed=5), "j", "m1", n_boot=-1)


def test_docstring_examples():
    # the package re-exports the function under the module's name: fetch the module itself
    module = importlib.import_module("analysis.judge_audit.self_preference")
    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
