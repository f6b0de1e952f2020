"""Agreement per subgroup in one tidy table (:mod:`analysis.agreement.subgroups`)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import agreement_by, icc, krippendorff_alpha
from tests.analysis.agreement.reference import long_from_matrix


def test_agreement_by_subgroups_tidy():
    rng = np.random.default_rng(6)
    y = rng.random((200, 1)) + rng.normal(0, 0.1, (200, 3))
    data = long_from_matrix(y, "u", "r", "s")
    data["language"] = np.where(data["u"] < 100, "en", "zh")
    out = agreement_by(data, "language", "u", "r", "s", metrics=("icc", "alpha", "fleiss_kappa", "spearman"))
    assert set(out["language"]) == {"en", "zh"}
    assert list(out.columns) == ["language", "metric", "value", "ci_low", "ci_high", "n_units", "n_raters", "note"]
    en = out[out["language"] == "en"].set_index("metric")
    direct = icc(data[data["language"] == "en"], "u", "r", "s").set_index("Type")
    assert en.loc["ICC2", "value"] == pytest.approx(direct.loc["ICC2", "ICC"])
    assert en.loc["alpha_interval", "value"] == pytest.approx(
        krippendorff_alpha(data[data["language"] == "en"], "u", "r", "s")
    )
    # A subgroup with a single rater degrades to NaN with a note instead of raising.
    single = data[data["r"] == 0]
    res = agreement_by(single, None, "u", "r", "s")
    assert res["value"].isna().all() and res["note"].str.len().gt(0).all()
