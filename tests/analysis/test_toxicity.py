"""Toxicity metrics on hand-checked toys (:mod:`analysis.toxicity`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import ptp_metrics, toxicity_amplification


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
