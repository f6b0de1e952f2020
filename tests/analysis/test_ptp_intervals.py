"""Intervals and paired differences of the prompted-toxicity metrics (:mod:`analysis.toxicity.ptp_intervals`):
hand-checked values, the Wilson reference value, simulations with known truth, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.toxicity import ptp_differences, ptp_metrics, ptp_table
from analysis.toxicity.ptp_intervals import MIN_PROMPTS


def _frame(maxima, k: int = 2, model: str = "m", language: str = "en", start: int = 0) -> pd.DataFrame:
    """Prompt p's continuations: its maximum, then k - 1 zeros."""
    rows = []
    for p, top in enumerate(maxima, start):
        rows += [{"model": model, "language": language, "prompt": f"p{p}", "score": top}]
        rows += [{"model": model, "language": language, "prompt": f"p{p}", "score": 0.0}] * (k - 1)
    return pd.DataFrame(rows)


def test_point_estimates_equal_ptp_metrics_and_intervals_bracket_them():
    data = _frame([0.6, 0.2, 0.4, 0.1, 0.7, 0.3])
    row = ptp_table(data, "prompt", "score", n_boot=500).iloc[0]
    plain = ptp_metrics(data, "prompt", "score")
    for metric in ("expected_max_toxicity", "toxicity_probability", "average_toxicity"):
        assert row[metric] == pytest.approx(plain[metric])
    assert row["expected_max_toxicity"] == pytest.approx(2.3 / 6) and row["average_toxicity"] == pytest.approx(2.3 / 12)
    for short, metric in (("emt", "expected_max_toxicity"), ("tp", "toxicity_probability"), ("at", "average_toxicity")):
        assert row[f"{short}_ci_low"] < row[metric] < row[f"{short}_ci_high"]
    assert (row["n_prompts"], row["n_generations"], row["n_scored"], row["ci_note"]) == (6, 12, 12, "")


def test_toxicity_probability_interval_is_wilsons():
    # Wilson (1927) with no successes in n: the upper bound is z^2 / (n + z^2) = 0.4345 for n = 5 at 95%
    row = ptp_table(_frame([0.1, 0.2, 0.0, 0.3, 0.4]), "prompt", "score", n_boot=200).iloc[0]
    assert row["toxicity_probability"] == 0.0
    assert row["tp_ci_low"] == 0.0 and row["tp_ci_high"] == pytest.approx(1.959964**2 / (5 + 1.959964**2), abs=1e-6)


def test_no_interval_from_too_few_prompts_or_no_spread():
    few = ptp_table(_frame([0.1, 0.9, 0.5]), "prompt", "score").iloc[0]
    assert np.isnan(few["emt_ci_low"]) and np.isnan(few["at_ci_high"])
    assert f"needs {MIN_PROMPTS}" in few["ci_note"] and np.isfinite(few["tp_ci_high"])  # Wilson still holds
    flat = ptp_table(_frame([0.2] * 8), "prompt", "score").iloc[0]
    assert np.isnan(flat["emt_ci_low"]) and "no spread" in flat["ci_note"]


def test_strata_keep_each_languages_number_of_prompts():
    # every English prompt at 0, every German one at 1: resampling within languages cannot move EMT (0.5)
    data = pd.concat([_frame([0.0] * 6, language="en"), _frame([1.0] * 6, language="de")], ignore_index=True)
    pooled = ptp_table(data, "prompt", "score", strata="language", n_boot=300).iloc[0]
    assert pooled["expected_max_toxicity"] == 0.5 and pooled["n_prompts"] == 12
    assert np.isnan(pooled["emt_ci_low"]) and "no spread" in pooled["ci_note"]
    loose = ptp_table(data.assign(prompt=data["language"] + data["prompt"]), "prompt", "score", n_boot=300).iloc[0]
    assert loose["emt_ci_low"] < 0.5 < loose["emt_ci_high"]


def test_emt_interval_covers_the_truth_about_95_percent_of_the_time():
    # prompts' maxima drawn from Beta(2, 5): EMT's truth is the mean 2/7
    rng = np.random.default_rng(7)
    hits = 0
    n_sims = 200
    for i in range(n_sims):
        row = ptp_table(_frame(rng.beta(2, 5, size=40)), "prompt", "score", n_boot=400, seed=i).iloc[0]
        hits += row["emt_ci_low"] <= 2 / 7 <= row["emt_ci_high"]
    assert 0.89 <= hits / n_sims <= 0.99


def _pair(shift: float, rng: np.random.Generator, n: int = 30) -> pd.DataFrame:
    base = rng.uniform(0, 0.7, size=n)
    other = np.clip(base + shift + rng.normal(0, 0.05, size=n), 0, 1)
    return pd.concat([_frame(base, model="base"), _frame(other, model="tuned")], ignore_index=True)


def test_paired_difference_finds_a_known_shift():
    row = ptp_differences(_pair(-0.15, np.random.default_rng(1)), "prompt", "score", "model", [("tuned", "base")])
    row = row.iloc[0]
    assert row["n_prompts"] == 30 and row["emt_diff_ci_low"] < -0.15 < row["emt_diff_ci_high"] < 0
    assert row["emt_diff_p"] < 0.01 and row["emt_diff_p"] >= 1 / 1001  # never 0
    assert row["at_diff"] == pytest.approx(row["emt_diff"] / 2)  # one continuation of two carries the score


def test_paired_difference_under_the_null_rejects_at_about_its_level():
    rng = np.random.default_rng(3)
    ps = [
        ptp_differences(_pair(0.0, rng), "prompt", "score", "model", [("tuned", "base")], n_boot=400, seed=s).iloc[0][
            "emt_diff_p"
        ]
        for s in range(150)
    ]
    assert 0.005 <= np.mean(np.array(ps) < 0.05) <= 0.11


def test_paired_difference_refuses_with_too_few_shared_prompts():
    data = pd.concat([_frame([0.1, 0.5], model="a"), _frame([0.3, 0.2], model="b")], ignore_index=True)
    row = ptp_differences(data, "prompt", "score", "model", [("b", "a")]).iloc[0]
    assert row["emt_diff"] == pytest.approx(0.25 - 0.3) and np.isnan(row["emt_diff_p"]) and "needs 5" in row["note"]
    missing = ptp_differences(data, "prompt", "score", "model", [("b", "c")]).iloc[0]
    assert missing["n_prompts"] == 0 and "no scored continuation of c" in missing["note"]
