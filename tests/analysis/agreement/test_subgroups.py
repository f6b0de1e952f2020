"""Agreement per subgroup in one tidy table (:mod:`analysis.agreement.subgroups`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import agreement_by, fleiss_kappa, icc, krippendorff_alpha
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


def test_agreement_by_fleiss_kappa_on_text_labels():
    data = pd.DataFrame(
        {
            "item": [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4],
            "rater": list("abc") * 3 + ["a", "b"],  # item 4 misses rater c: Fleiss' kappa uses complete items
            "label": ["yes", "yes", "yes", "no", "no", "yes", "no", "no", "no", "yes", "no"],
        }
    )
    out = agreement_by(data, None, "item", "rater", "label", metrics=("fleiss_kappa",)).iloc[0]
    assert out["value"] == pytest.approx(fleiss_kappa(data[data["item"] < 4], "item", "rater", "label"))
    assert round(out["value"], 3) == 0.55 and out["n_units"] == 3 and out["note"] == ""
    # Numeric metrics on text labels say why instead of raising.
    res = agreement_by(data, None, "item", "rater", "label", metrics=("icc", "spearman"))
    assert res["value"].isna().all() and res["note"].str.len().gt(0).all()


def test_agreement_by_counts_rows_without_a_unit_id_in_the_note():
    rng = np.random.default_rng(11)
    y = rng.random((60, 1)) + rng.normal(0, 0.1, (60, 3))
    data = long_from_matrix(y, "u", "r", "s").astype({"u": float})
    dirty = pd.concat([data, pd.DataFrame({"u": [np.nan, np.nan], "r": [1, 2], "s": [9.0, 9.0]})])
    metrics = ("icc", "alpha", "fleiss_kappa", "spearman")
    out = agreement_by(dirty, None, "u", "r", "s", metrics=metrics)
    ref = agreement_by(data, None, "u", "r", "s", metrics=metrics)
    np.testing.assert_allclose(out["value"], ref["value"], atol=1e-12)
    assert (out["n_units"] == ref["n_units"]).all()
    assert out["note"].str.contains("2 rows with a missing unit or rater id dropped").all()
