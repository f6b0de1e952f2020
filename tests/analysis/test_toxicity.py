"""Toxicity metrics on hand-checked toys, their scales, and amplification's intervals by simulation
(:mod:`analysis.toxicity`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import ptp_metrics, toxicity_amplification
from analysis.toxicity import mixed_scales_reason, rating_scales, scale_kind


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
    assert (res["n_prompts"], res["n_generations"], res["n_scored"], res["note"]) == (3, 7, 6, "")
    grouped = ptp_metrics(data, "prompt", "score", by="model").set_index("model")
    assert grouped.loc["m", "expected_max_toxicity"] == pytest.approx((0.7 + 0.3) / 2)
    assert grouped.loc["n", "toxicity_probability"] == pytest.approx(0.5)
    assert grouped.loc["n", "n_generations"] == 3 and grouped.loc["n", "n_scored"] == 2


def test_ptp_metrics_leaves_out_and_counts_rows_without_a_prompt():
    data = pd.DataFrame(
        {
            "prompt": ["a", "a", None, "b", np.nan],
            "score": [0.1, 0.7, 0.9, 0.3, 0.2],
            "model": ["m", "m", "m", "m", "n"],
        }
    )
    res = ptp_metrics(data, "prompt", "score")
    # Two rows belong to no prompt: they are in no count (the old code counted them in n_generations and n_scored
    # while leaving them out of the metrics).
    assert (res["n_prompts"], res["n_generations"], res["n_scored"]) == (2, 3, 3)
    assert res["average_toxicity"] == pytest.approx(1.1 / 3)
    assert "2 row(s) without a prompt id" in res["note"]
    grouped = ptp_metrics(data, "prompt", "score", by="model").set_index("model")
    assert grouped.loc["m", "n_generations"] == 3 and "1 row(s)" in grouped.loc["m", "note"]
    assert "n" not in grouped.index  # model n has no row with a prompt


def test_ptp_metrics_refuses_scores_outside_the_unit_interval():
    data = pd.DataFrame({"prompt": ["a", "a", "b"], "tox": [0.2, 3.0, 0.4]})  # a 1–5 rating left unmapped
    with pytest.raises(ValueError, match="column 'tox' has 1 score"):
        ptp_metrics(data, "prompt", "tox")
    with pytest.raises(ValueError, match="outside"):
        ptp_metrics(data.assign(tox=[-0.1, 0.2, 0.3]), "prompt", "tox")
    with pytest.raises(ValueError, match="threshold"):
        ptp_metrics(data.assign(tox=0.5), "prompt", "tox", threshold=3)


def test_scale_kinds():
    kinds = {
        "probability": "probability",
        "binary": "probability",
        "p>=0.5": "probability",
        "1-5": "rating",
        "1-5 logprob-weighted": "rating",
        "1-6 reversed": "rating",
        "0-100": "rating",
        "prototype-sigmoid": "other",
        "rating": "rating",
    }
    assert {label: scale_kind(label) for label in kinds} == kinds
    assert scale_kind(None) is None and scale_kind(np.nan) is None and scale_kind("") is None
    assert mixed_scales_reason(["probability", "binary", None]) is None
    assert mixed_scales_reason(None) is None
    reason = mixed_scales_reason({"clf": "probability", "judge": "1-5"})
    assert "different kinds of scale" in reason and "judge (1-5)" in reason and "\n" not in reason


def test_ptp_metrics_refuses_emt_and_probability_from_mixed_scales():
    ratings = pd.DataFrame(
        {
            "rater": ["clf|x", "clf|x", "judge|y", "judge|y", "judge|y"],
            "rater_name": ["clf", "clf", "judge", "judge", "judge"],
            "dimension": ["toxicity", "toxicity", "toxicity", "toxicity", "insult"],
            "scale": ["probability", "probability", "1-5", "1-5", "1-5"],
            "score": [0.1, 0.9, 0.5, np.nan, 0.25],
        }
    )
    scales = rating_scales(ratings, "toxicity")
    assert scales.to_dict("records") == [
        {"rater": "clf", "scale": "probability", "kind": "probability", "n_scored": 2},
        {"rater": "judge", "scale": "1-5", "kind": "rating", "n_scored": 1},
    ]
    data = pd.DataFrame({"prompt": ["a", "a", "b"], "tox": [0.2, 0.6, 0.4], "model": "m"})
    mixed = ptp_metrics(data, "prompt", "tox", by="model", scales=scales).iloc[0]
    assert np.isnan(mixed["expected_max_toxicity"]) and np.isnan(mixed["toxicity_probability"])
    assert mixed["average_toxicity"] == pytest.approx(0.4) and "different kinds of scale" in mixed["note"]
    # One kind of scale: computed; a rating scale is named as such, probabilities need no note.
    rating = ptp_metrics(data, "prompt", "tox", scales={"judge": "1-5"})
    assert rating["expected_max_toxicity"] == pytest.approx(0.5) and "rating scale" in rating["note"]
    probability = ptp_metrics(data, "prompt", "tox", scales={"clf": "probability", "flag": "binary"})
    assert probability["toxicity_probability"] == pytest.approx(0.5) and probability["note"] == ""


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
    assert (res["note"] == "").all()
    assert toxicity_amplification(data[data["persona_id"] != "none"], "tox").empty
    zero = toxicity_amplification(data.assign(tox=np.where(data["persona_id"] == "none", 0.0, data["tox"])), "tox")
    assert zero["ratio"].isna().all() and zero["note"].str.contains("baseline's mean is 0").all()


def test_amplification_per_persona_and_per_group_of_personas():
    data = pd.DataFrame(
        {
            "model": "m",
            "target_id": ["t1", "t2"] * 4,
            "template_id": "x",
            "persona_id": ["none"] * 2 + ["good"] * 2 + ["bad"] * 2 + ["kind"] * 2,
            "persona_category": ["none"] * 2 + ["basic"] * 6,
            "persona_valence": ["none"] * 2 + ["positive"] * 2 + ["negative"] * 2 + ["positive"] * 2,
            "tox": [0.1, 0.1, 0.1, 0.1, 0.8, 1.0, 0.1, 0.3],
        }
    )
    cols = ["persona_category", "persona_valence", "persona_id"]
    per = toxicity_amplification(data, "tox", persona=cols, n_boot=0).set_index("persona_id")
    assert per.loc["bad", "ratio"] == pytest.approx(9.0) and per.loc["bad", "persona_valence"] == "negative"
    assert per.loc["good", "ratio"] == pytest.approx(1.0)
    options = {"n_boot": 200, "cluster": "persona_id"}
    pooled = toxicity_amplification(data, "tox", persona="persona_category", **options).iloc[0]
    # basic pools good (.1), bad (.9) and kind (.2), one third each: ratio 4 hides the 9× persona.
    assert pooled["n_clusters"] == 3 and pooled["ratio"] == pytest.approx(4.0)
    split = toxicity_amplification(data, "tox", persona=["persona_category", "persona_valence"], **options)
    split = split.set_index("persona_valence")
    assert split.loc["negative", "ratio"] == pytest.approx(9.0) and split.loc["positive", "ratio"] == pytest.approx(1.5)
    assert "one persona" in split.loc["negative", "note"] and split.loc["positive", "n_clusters"] == 2


def _category_sample(rng: np.random.Generator, k: int = 8, m: int = 15, effect: float = 0.1) -> pd.DataFrame:
    """``k`` personas of one category, each with its own random effect, on ``m`` prompts, with a baseline."""
    prompt = rng.normal(0.3, 0.1, m)
    x = prompt[None, :] + effect + rng.normal(0, 0.08, k)[:, None] + rng.normal(0, 0.05, (k, m))
    b = prompt + rng.normal(0, 0.05, m)
    return pd.DataFrame(
        {
            "model": "m",
            "target_id": np.r_[np.tile(np.arange(m), k), np.arange(m)],
            "template_id": "x",
            "persona_id": np.r_[np.repeat(np.arange(k).astype(str), m), ["none"] * m],
            "persona_category": np.r_[["cat"] * (k * m), ["none"] * m],
            "tox": np.r_[x.ravel(), b],
        }
    )


def test_category_amplification_ci_covers_the_category_effect():
    rng = np.random.default_rng(5)
    n_sim, clustered, pairs_only = 200, 0, 0
    for i in range(n_sim):
        data = _category_sample(rng)
        a = toxicity_amplification(data, "tox", persona="persona_category", n_boot=200, seed=i, cluster="persona_id")
        clustered += a.loc[0, "difference_ci_low"] <= 0.1 <= a.loc[0, "difference_ci_high"]
        old = toxicity_amplification(data, "tox", persona="persona_category", n_boot=200, seed=i)
        pairs_only += old.loc[0, "difference_ci_low"] <= 0.1 <= old.loc[0, "difference_ci_high"]
    # 95% intervals over 200 datasets: an exact binomial 99.9% band is about 0.90–0.99.
    assert 0.9 <= clustered / n_sim <= 0.995, clustered / n_sim
    # Resampling prompts only ignores that the personas are a sample: it covers about half the time.
    assert pairs_only / n_sim < 0.75, pairs_only / n_sim
