"""Toxicity, refusal, demographic sensitivity, value inertia and mitigation on hand-checked toys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import (
    benjamini_hochberg,
    cosine_similarity,
    demographic_parity_difference,
    demographic_sensitivity,
    equalized_odds_difference,
    gender_gaps,
    meaning_preservation,
    mitigation_curve,
    ptp_metrics,
    refusal_rates,
    refusal_rates_by_factor,
    rounds_to_success,
    stop_reasons,
    toxicity_amplification,
    two_proportion_ztest,
    value_inertia,
)


def test_ptp_metrics_hand_computed():
    data = pd.DataFrame(
        {
            "prompt": ["a", "a", "a", "b", "b", "c", "c"],
            "score": [0.1, 0.7, 0.2, 0.3, 0.4, 0.5, np.nan],
            "model": ["m", "m", "m", "m", "n", "n", "n"],
        }
    )
    res = ptp_metrics(data, "prompt", "score")
    # max per prompt: a .7, b .4, c .5 -> EMT .5333; prob: a and c reach .5 -> 2/3; average over 6 scored.
    assert res["expected_max_toxicity"] == pytest.approx((0.7 + 0.4 + 0.5) / 3)
    assert res["toxicity_probability"] == pytest.approx(2 / 3)
    assert res["average_toxicity"] == pytest.approx(2.2 / 6)
    assert (res["n_prompts"], res["n_generations"], res["n_scored"]) == (3, 7, 6)
    grouped = ptp_metrics(data, "prompt", "score", by="model").set_index("model")
    assert grouped.loc["m", "expected_max_toxicity"] == pytest.approx((0.7 + 0.3) / 2)
    assert grouped.loc["n", "toxicity_probability"] == pytest.approx(0.5)
    assert grouped.loc["n", "n_generations"] == 3 and grouped.loc["n", "n_scored"] == 2


def test_toxicity_amplification_paired():
    data = pd.DataFrame(
        {
            "model": ["m"] * 8,
            "target_id": ["t1", "t1", "t2", "t2", "t1", "t2", "t3", "t1"],
            "template_id": ["x"] * 8,
            "persona_id": ["none", "p", "none", "p", "q", "q", "p", "p"],
            "tox": [0.1, 0.4, 0.2, 0.6, 0.2, 0.2, 0.9, 0.2],
        }
    )
    res = toxicity_amplification(data, "tox", n_boot=500, seed=0).set_index("persona")
    # p: pairs t1 (mean of .4 and .2 = .3 vs .1) and t2 (.6 vs .2); t3 has no baseline.
    assert res.loc["p", "n_pairs"] == 2
    assert res.loc["p", "difference"] == pytest.approx((0.3 + 0.6) / 2 - (0.1 + 0.2) / 2)
    assert res.loc["p", "ratio"] == pytest.approx(0.45 / 0.15)
    assert res.loc["q", "difference"] == pytest.approx(0.2 - 0.15)
    assert res.loc["p", "difference_ci_low"] <= res.loc["p", "difference"] <= res.loc["p", "difference_ci_high"]
    assert res.loc["p", "ratio_ci_low"] <= res.loc["p", "ratio"] <= res.loc["p", "ratio_ci_high"]
    assert toxicity_amplification(data[data["persona_id"] != "none"], "tox").empty


def test_refusal_rates_and_gender_gaps_with_bh():
    rows = []
    # category A: female 30/100 refuse, male 10/100; category B: female 20/50, male 18/50.
    for cat, sex, n, x in [
        ("A", "female", 100, 30),
        ("A", "male", 100, 10),
        ("B", "female", 50, 20),
        ("B", "male", 50, 18),
    ]:
        rows += [{"persona_category": cat, "persona_gender": sex, "refusal": int(i < x)} for i in range(n)]
    rows.append({"persona_category": "A", "persona_gender": "male", "refusal": np.nan})
    data = pd.DataFrame(rows).assign(model="m")
    rates = refusal_rates(data, ["persona_category", "persona_gender"]).set_index(
        ["persona_category", "persona_gender"]
    )
    assert rates.loc[("A", "female"), "rate"] == pytest.approx(0.3)
    assert rates.loc[("A", "male"), "n_unknown"] == 1 and rates.loc[("A", "male"), "n"] == 100
    # Wilson interval of 30/100: (0.2189, 0.3958).
    assert rates.loc[("A", "female"), "ci_low"] == pytest.approx(0.21886, abs=1e-4)
    assert rates.loc[("A", "female"), "ci_high"] == pytest.approx(0.39580, abs=1e-4)

    gaps = gender_gaps(data, by=["model", "persona_category"]).set_index("persona_category")
    from statsmodels.stats.proportion import proportions_ztest

    z_a, p_a = proportions_ztest([30, 10], [100, 100])
    z_b, p_b = proportions_ztest([20, 18], [50, 50])
    assert gaps.loc["A", "z"] == pytest.approx(z_a) and gaps.loc["A", "pval"] == pytest.approx(p_a)
    assert gaps.loc["B", "pval"] == pytest.approx(p_b)
    # BH with m = 2: the smaller p is doubled, the larger stays (monotone).
    assert gaps.loc["A", "pval_bh"] == pytest.approx(min(1, 2 * p_a))
    assert gaps.loc["B", "pval_bh"] == pytest.approx(p_b)
    assert bool(gaps.loc["A", "significant"]) and not bool(gaps.loc["B", "significant"])
    assert gaps.loc["A", "gap"] == pytest.approx(0.2)

    long = refusal_rates_by_factor(data, factors=("persona_gender", "persona_category"))
    assert set(long["factor"]) == {"persona_gender", "persona_category"}


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.5, 0.001, np.nan])
    ours = benjamini_hochberg(p)
    ref = multipletests(p[:-1], method="fdr_bh")[1]
    np.testing.assert_allclose(ours[:-1], ref)
    assert np.isnan(ours[-1])
    z, pval = two_proportion_ztest([0], [10], [0], [10])
    assert np.isnan(z[0]) and pval[0] == 1.0


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


def test_value_inertia_toy():
    data = pd.DataFrame(
        {
            "dimension": ["care"] * 7,
            "persona_id": ["none", "p1", "p1", "p2", "p2", "p3", "p3"],
            "score": [0.8, 0.7, 0.9, 0.6, 0.6, 0.2, 0.4],
        }
    )
    res = value_inertia(data).iloc[0]
    assert res["default_mean"] == pytest.approx(0.8)
    assert res["n_personas"] == 3
    assert res["persona_mean"] == pytest.approx((0.8 + 0.6 + 0.3) / 3)
    # persona rows: grand mean 0.5667; SS_between = 2[(.8-.5667)^2 + (.6-.5667)^2 + (.3-.5667)^2]
    grand = np.mean([0.7, 0.9, 0.6, 0.6, 0.2, 0.4])
    ssb = 2 * sum((m - grand) ** 2 for m in (0.8, 0.6, 0.3))
    sst = sum((v - grand) ** 2 for v in (0.7, 0.9, 0.6, 0.6, 0.2, 0.4))
    assert res["eta_squared"] == pytest.approx(ssb / sst)
    assert res["n_same_side"] == 2 and res["share_same_side"] == pytest.approx(2 / 3)


def test_mitigation_summary_toy():
    # cell 1: .9 -> .6 -> .3 (success at round 2); cell 2: .8 -> .4 (stops, carried forward);
    # cell 3: .7 -> unscored rewrite at round 1 -> .6 at round 2.
    data = pd.DataFrame(
        {
            "cell_id": [1, 1, 1, 2, 2, 3, 3, 3],
            "round": [0, 1, 2, 0, 1, 0, 1, 2],
            "score": [0.9, 0.6, 0.3, 0.8, 0.4, 0.7, np.nan, 0.6],
        }
    )
    curve = mitigation_curve(data).set_index("round")
    assert curve.loc[0, "mean_score"] == pytest.approx(0.8)
    assert curve.loc[1, "mean_score"] == pytest.approx(0.5) and curve.loc[1, "n_unscored"] == 1
    assert curve.loc[2, "mean_score"] == pytest.approx((0.3 + 0.4 + 0.6) / 3)
    assert curve.loc[2, "n_cells"] == 3
    assert curve.loc[1, "share_above"] == pytest.approx(0.5)
    assert curve.loc[2, "reduction"] == pytest.approx(0.8 - 1.3 / 3)
    rts = rounds_to_success(data).set_index("round")
    assert rts.loc[1, "n_success"] == 1 and rts.loc[2, "n_success"] == 1 and rts.loc[-1, "n_success"] == 1
    assert rts.attrs["mean_rounds"] == pytest.approx(1.5)
    reasons = stop_reasons(pd.DataFrame({"stop_reason": ["below_threshold", "max_rounds", "below_threshold"]}))
    assert reasons.set_index("stop_reason").loc["below_threshold", "n"] == 2
    assert reasons.set_index("stop_reason").loc["refused", "n"] == 0


def test_meaning_preservation_with_fake_embedder():
    vocab = ["cats", "are", "bad", "good", "dogs"]

    def embed(texts):
        return np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float)

    data = pd.DataFrame({"original_text": ["cats are bad", "dogs", None], "text": ["cats are good", "dogs", "x"]})
    sims = meaning_preservation(data, embed, batch_size=1)
    assert sims.iloc[0] == pytest.approx(2 / 3) and sims.iloc[1] == pytest.approx(1.0) and np.isnan(sims.iloc[2])
    assert cosine_similarity(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))[0] == pytest.approx(0.0)


def test_wilson_interval_stays_inside_zero_one():
    from analysis._frames import wilson_ci

    low, high = wilson_ci(np.array([0, 24, 3]), np.array([24, 24, 10]))
    assert low[0] == 0.0 and high[1] == 1.0
    assert (low >= 0).all() and (high <= 1).all() and (low <= high).all()
