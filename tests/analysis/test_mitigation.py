"""Mitigation curves, rounds to success, stop reasons, meaning preservation (:mod:`analysis.mitigation`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import cosine_similarity, meaning_preservation, mitigation_curve, rounds_to_success, stop_reasons


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


def test_curve_intervals_are_t_over_cells_and_wilson_and_absent_without_spread():
    from scipy import stats

    data = pd.DataFrame(
        {
            "cell_id": [1, 1, 2, 2, 3, 3, 4, 4],
            "round": [0, 1] * 4,
            "score": [0.9, 0.2, 0.8, 0.6, 0.7, 0.7, 0.9, 0.1],
        }
    )
    curve = mitigation_curve(data).set_index("round")
    after = np.array([0.2, 0.6, 0.7, 0.1])
    low, high = stats.t.interval(0.95, 3, loc=after.mean(), scale=stats.sem(after))
    assert (curve.loc[1, "mean_ci_low"], curve.loc[1, "mean_ci_high"]) == pytest.approx((low, high))
    drops = np.array([0.7, 0.2, 0.0, 0.8])  # the paired per-cell reductions
    low, high = stats.t.interval(0.95, 3, loc=drops.mean(), scale=stats.sem(drops))
    assert curve.loc[1, "reduction"] == pytest.approx(drops.mean())
    assert (curve.loc[1, "reduction_ci_low"], curve.loc[1, "reduction_ci_high"]) == pytest.approx((low, high))
    wilson = stats.binomtest(2, 4).proportion_ci(method="wilson")  # 0.6 and 0.7 are at or above 0.5
    assert (curve.loc[1, "share_ci_low"], curve.loc[1, "share_ci_high"]) == pytest.approx((wilson.low, wilson.high))
    # round 0's reduction is 0 for every cell: no spread, so no interval rather than [0, 0]
    assert curve.loc[0, "reduction"] == 0 and np.isnan(curve.loc[0, "reduction_ci_low"])
    one = mitigation_curve(data[data["cell_id"] == 1])
    assert one["mean_ci_low"].isna().all() and one["share_ci_low"].notna().all()  # Wilson is defined for n = 1


def test_panels_and_self_judging_come_from_the_stored_config():
    from analysis.mitigation import mitigation_panels
    from analysis.self_judging import self_judging, self_judging_notes

    config = {
        "models": [
            {"name": "qwen", "backend": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct"},
            {"name": "gpt", "backend": "openai", "model": "gpt-4o"},
            {"name": "mini", "backend": "openai", "model": "gpt-4o-mini"},
        ],
        "grid": {"models": ["qwen"]},
        "panel": {
            "raters": [
                {
                    "name": "own",
                    "kind": "llm",
                    "model": {"name": "served", "backend": "openai", "model": "qwen/qwen2.5-7b-instruct"},
                },
                {"name": "gate", "kind": "llm", "model": "mini"},
                {"name": "held", "kind": "llm", "model": "gpt"},
                {"name": "clf", "kind": "profanity-check"},
            ]
        },  # fmt: skip
        "mitigation": {"measure": ["held"], "critic": "gpt", "threshold": 0.4, "dimension": "toxicity"},
    }
    found = self_judging(config)
    assert found.to_dict("records") == [{"rater": "own", "judge_model": "served", "generators": "qwen"}]
    assert self_judging_notes(config, {"gate"}) == []
    (note,) = self_judging_notes(config)
    assert "rater own judges with served, which also generated (qwen)" in note
    panels = mitigation_panels(config)
    # gate by default: every panel rater not held out; the held-out judge shares the critic's model
    assert panels.gate == ("own", "gate", "clf") and panels.measure == ("held",) and panels.critic == "gpt"
    assert panels.measure_overlaps == ("held",) and panels.threshold == 0.4
    assert list(panels.frame()["role"]) == ["critic", "gate", "measure (held out)"]
    assert not mitigation_panels(None, ["a"]).known and mitigation_panels(None, ["a"]).gate == ("a",)
    assert self_judging(None).empty
