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
