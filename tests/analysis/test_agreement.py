"""Agreement statistics against published values and reference implementations."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

import analysis.agreement as agreement_mod
from analysis import (
    agreement_by,
    cohen_kappa_pairs,
    fleiss_kappa,
    icc,
    judge_error_correlation,
    krippendorff_alpha,
    spearman_matrix,
)

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)
# Their Table 4: ICC(1,1) .17, ICC(2,1) .29, ICC(3,1) .71, ICC(1,4) .44, ICC(2,4) .62, ICC(3,4) .91.
SHROUT_FLEISS_ICC = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}
PINGOUIN_TYPES = {
    "ICC(1,1)": "ICC1",
    "ICC(A,1)": "ICC2",
    "ICC(C,1)": "ICC3",
    "ICC(1,k)": "ICC1k",
    "ICC(A,k)": "ICC2k",
    "ICC(C,k)": "ICC3k",
}


def long_from_matrix(y: np.ndarray, unit="target", rater="judge", rating="score") -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame({unit: np.repeat(np.arange(n), k), rater: np.tile(np.arange(k), n), rating: y.ravel()}).dropna()


def pingouin_icc(data, targets, raters, ratings, **kw):
    pingouin = pytest.importorskip("pingouin")
    old = pingouin.options.get("round.column.CI95")
    pingouin.options["round.column.CI95"] = None
    try:
        res = pingouin.intraclass_corr(data, targets, raters, ratings, **kw)
    finally:
        pingouin.options["round.column.CI95"] = old
    res["Type"] = res["Type"].map(lambda t: PINGOUIN_TYPES.get(t, t))
    return res.set_index("Type")


def test_icc_shrout_fleiss_published_values():
    res = icc(long_from_matrix(SHROUT_FLEISS), "target", "judge", "score").set_index("Type")
    assert list(res.columns) == ["Description", "ICC", "F", "df1", "df2", "pval", "CI95"]
    for form, published in SHROUT_FLEISS_ICC.items():
        assert round(res.loc[form, "ICC"], 2) == pytest.approx(published, abs=1e-9), form
    # Their F tests: BMS/WMS = 1.79 on (5, 18), BMS/EMS = 11.03 on (5, 15).
    assert res.loc["ICC1", "F"] == pytest.approx(1.795, abs=1e-3)
    assert res.loc["ICC3", "F"] == pytest.approx(11.027, abs=1e-3)
    assert (res.loc["ICC1", "df2"], res.loc["ICC2", "df2"]) == (18, 15)


def test_icc_shrout_fleiss_matches_pingouin():
    data = long_from_matrix(SHROUT_FLEISS)
    ours = icc(data, "target", "judge", "score").set_index("Type")
    ref = pingouin_icc(data, "target", "judge", "score")
    for form in SHROUT_FLEISS_ICC:
        assert ours.loc[form, "ICC"] == pytest.approx(ref.loc[form, "ICC"], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_icc_agrees_with_pingouin_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(20, 300), rng.integers(2, 7)
    y = rng.normal(size=(n, 1)) + rng.normal(0, 0.8, size=(n, k)) + rng.normal(0, 0.3, size=k)
    data = long_from_matrix(y, "t", "r", "y").sample(frac=1, random_state=seed)
    data["r"] = data["r"].map(lambda j: f"rater-{j}")
    ours = icc(data, "t", "r", "y").set_index("Type")
    ref = pingouin_icc(data, "t", "r", "y")
    for form in SHROUT_FLEISS_ICC:
        for col in ("ICC", "F", "pval"):
            assert ours.loc[form, col] == pytest.approx(ref.loc[form, col], abs=1e-9, rel=1e-9), (form, col)
        assert ours.loc[form, "df1"] == ref.loc[form, "df1"]
        assert ours.loc[form, "df2"] == pytest.approx(ref.loc[form, "df2"])
        np.testing.assert_allclose(ours.loc[form, "CI95"], ref.loc[form, "CI95"], atol=1e-9)


def test_icc_unbalanced_raise_and_omit():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(50, 3)) + rng.normal(size=(50, 1))
    y[[3, 7], [0, 2]] = np.nan
    data = long_from_matrix(y)
    with pytest.raises(ValueError, match="nan_policy='omit'"):
        icc(data, "target", "judge", "score")
    ours = icc(data, "target", "judge", "score", nan_policy="omit")
    assert ours.attrs["n_omitted"] == 2 and ours.attrs["n_targets"] == 48
    ref = pingouin_icc(data, "target", "judge", "score", nan_policy="omit")
    np.testing.assert_allclose(ours.set_index("Type")["ICC"], ref["ICC"].reindex(ours["Type"]), atol=1e-12)


def test_icc_too_small():
    with pytest.raises(ValueError, match="at least 2"):
        icc(long_from_matrix(np.array([[1.0, 2.0]])), "target", "judge", "score")


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", reliability data with missing values:
# 4 observers × 12 units.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
    ]
)


@pytest.fixture
def kripp_long():
    return long_from_matrix(KRIPPENDORFF_2011.T, "unit", "coder", "value")


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("interval", 0.849), ("ordinal", 0.815), ("ratio", 0.797)]
)
def test_krippendorff_2011_example(kripp_long, level, published):
    value = krippendorff_alpha(kripp_long, "unit", "coder", "value", level=level)
    assert round(value, 3) == published
    assert value == pytest.approx(krippendorff.alpha(KRIPPENDORFF_2011, level_of_measurement=level), abs=1e-12)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_large_path_matches_package(monkeypatch, level):
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, 400)
    y = np.clip(truth[None, :] + rng.integers(-1, 2, (5, 400)), 1, 5).astype(float)
    y[rng.random(y.shape) < 0.2] = np.nan
    data = long_from_matrix(y.T, "u", "c", "v")
    expected = krippendorff.alpha(y, level_of_measurement=level)
    monkeypatch.setattr(agreement_mod, "_DENSE_CELLS", 0)  # force the sparse / closed-form path
    assert krippendorff_alpha(data, "u", "c", "v", level=level) == pytest.approx(expected, abs=1e-12)


def test_krippendorff_continuous_interval_closed_form():
    rng = np.random.default_rng(8)
    y = rng.random((3, 2000))[:, :] * 0.3 + rng.random(2000)
    y[rng.random(y.shape) < 0.1] = np.nan
    data = long_from_matrix(y.T, "u", "c", "v")
    sub = y[:, :200]
    expected = krippendorff.alpha(sub, level_of_measurement="interval")
    got = krippendorff_alpha(data[data["u"] < 200], "u", "c", "v")
    assert got == pytest.approx(expected, abs=1e-10)
    assert 0 < krippendorff_alpha(data, "u", "c", "v") < 1


def test_krippendorff_bootstrap_and_errors(kripp_long):
    res = krippendorff_alpha(kripp_long, "unit", "coder", "value", bootstrap=200, seed=1)
    assert res.ci_low <= res.alpha <= res.ci_high and res.n_boot == 200
    again = krippendorff_alpha(kripp_long, "unit", "coder", "value", bootstrap=200, seed=1)
    assert again == res
    with pytest.raises(ValueError, match="twice"):
        krippendorff_alpha(pd.concat([kripp_long, kripp_long.head(1)]), "unit", "coder", "value")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(kripp_long, "unit", "coder", "value", level="cardinal")
    constant = kripp_long.assign(value=1.0)
    with pytest.raises(ValueError, match="distinct values"):
        krippendorff_alpha(constant, "unit", "coder", "value")


# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_kappa_textbook_example():
    rows = []
    for subject, counts in enumerate(FLEISS_TABLE):
        labels = np.repeat(np.arange(1, 6), counts)
        rows += [{"subject": subject, "rater": r, "category": c} for r, c in enumerate(labels)]
    data = pd.DataFrame(rows)
    assert round(fleiss_kappa(data, "subject", "rater", "category"), 3) == 0.210
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    assert fleiss_kappa(data, "subject", "rater", "category") == pytest.approx(sm_fleiss(FLEISS_TABLE), abs=1e-12)
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa(data.iloc[1:], "subject", "rater", "category")


def test_cohen_kappa_pairs_matches_statsmodels():
    from statsmodels.stats.inter_rater import cohens_kappa

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 300)
    y = np.stack([np.where(rng.random(300) < 0.7, truth, rng.integers(0, 3, 300)) for _ in range(3)], axis=1)
    data = long_from_matrix(y.astype(float), "u", "r", "c")
    pairs = cohen_kappa_pairs(data, "u", "r", "c")
    assert len(pairs) == 3 and list(pairs.columns) == ["rater_a", "rater_b", "n", "kappa"]
    for row in pairs.itertuples():
        table = pd.crosstab(y[:, row.rater_a], y[:, row.rater_b]).to_numpy()
        assert row.kappa == pytest.approx(cohens_kappa(table).kappa, abs=1e-12)
        w = cohen_kappa_pairs(data, "u", "r", "c", weights="linear")
        assert w.loc[row.Index, "kappa"] == pytest.approx(cohens_kappa(table, wt="linear").kappa, abs=1e-12)


def test_spearman_and_judge_errors():
    rng = np.random.default_rng(5)
    truth = rng.random(3000)
    shared = rng.normal(0, 0.2, 3000)
    y = np.stack(
        [truth + shared + rng.normal(0, 0.1, 3000), truth + shared + rng.normal(0, 0.1, 3000)]
        + [truth + rng.normal(0, 0.2, 3000) for _ in range(2)],
        axis=1,
    )
    data = long_from_matrix(y, "u", "r", "s")
    rho = spearman_matrix(data, "u", "r", "s")
    assert rho.shape == (4, 4) and np.allclose(np.diag(rho), 1)
    je = judge_error_correlation(data, "u", "r", "s")
    assert je.n_eff_null == 3
    # Judges 0 and 1 share an error component: their residuals correlate far above the -1/(k-1) baseline.
    assert je.correlation.iloc[0, 1] > 0.3 > je.correlation.iloc[2, 3]
    r = je.correlation.to_numpy()
    lam = np.linalg.eigvalsh(r)
    assert je.n_eff == pytest.approx(lam.sum() ** 2 / (lam**2).sum())
    with_truth = judge_error_correlation(data.assign(t=np.repeat(truth, 4)), "u", "r", "s", truth="t")
    assert with_truth.n_eff_null == 4 and with_truth.n_eff < 4
    assert len(je.summary()) == 4


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


def test_spearman_matches_pandas_with_missing_values():
    rng = np.random.default_rng(9)
    y = rng.random((400, 3))
    y[rng.random(y.shape) < 0.2] = np.nan
    data = long_from_matrix(y, "u", "r", "s")
    expected = pd.DataFrame(y).corr(method="spearman").to_numpy()
    np.testing.assert_allclose(spearman_matrix(data, "u", "r", "s").to_numpy(), expected, atol=1e-12)
