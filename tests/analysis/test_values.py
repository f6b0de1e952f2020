"""Value inertia on a hand-checked toy (:mod:`analysis.values`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import value_inertia


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
