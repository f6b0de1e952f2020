"""Persona regressions against statsmodels' own fits and published coefficients.

Where an estimator exists in statsmodels (OLS with HC3 or CR1 errors, the ML logit), ours must reproduce it on
the row-level data; the estimators statsmodels lacks (CR2, Satterthwaite df, HTZ, Firth) are checked against
direct computations and published values in ``tests/analysis/regression/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from analysis import DegenerateDataError, fit_persona_model, persona_regressions, tidy_result
from analysis.regression import TIDY_COLUMNS

FORMULA = "C(persona_category, Treatment(reference='none')) + C(target_category) + C(template_id)"
INTERACTION = " + C(persona_category, Treatment(reference='none')):C(template_id)"


def test_tidy_result_longley_nist_certified():
    """NIST StRD certified values for the Longley (1967) regression."""
    data = sm.datasets.longley.load_pandas().data
    res = smf.ols("TOTEMP ~ GNPDEFL + GNP + UNEMP + ARMED + POP + YEAR", data).fit()
    table = tidy_result(res, model="longley").set_index("term")
    certified = {
        "Intercept": (-3482258.63459582, 890420.383607373),
        "GNPDEFL": (15.0618722713733, 84.9149257747669),
        "GNP": (-0.358191792925910e-01, 0.334910077722432e-01),
        "UNEMP": (-2.02022980381683, 0.488399681651699),
        "ARMED": (-1.03322686717359, 0.214274163161675),
        "POP": (-0.511041056535807e-01, 0.226073200069370),
        "YEAR": (1829.15146461355, 455.478499142212),
    }
    for term, (coef, se) in certified.items():
        assert table.loc[term, "coef"] == pytest.approx(coef, rel=1e-6)
        assert table.loc[term, "se"] == pytest.approx(se, rel=1e-6)
    assert list(tidy_result(res).columns) == TIDY_COLUMNS
    assert (table["note"] == "").all() and (table["df"] == 9).all()


def test_tidy_result_spector_logit_published():
    """Spector & Mazzeo (1980) logit as reported by Greene, Econometric Analysis, Table 21.1."""
    data = sm.datasets.spector.load_pandas().data
    res = smf.logit("GRADE ~ GPA + TUCE + PSI", data).fit(disp=0)
    table = tidy_result(res).set_index("term")
    for term, coef in {"Intercept": -13.021, "GPA": 2.826, "TUCE": 0.095, "PSI": 2.379}.items():
        assert table.loc[term, "coef"] == pytest.approx(coef, abs=1e-3)


@pytest.fixture
def persona_data():
    rng = np.random.default_rng(11)
    n = 4000
    data = pd.DataFrame(
        {
            "persona_category": rng.choice(["none", "politician", "athlete", "journalist"], n),
            "target_category": rng.choice(["gender", "religion", "age"], n),
            "template_id": rng.choice(["generic", "bad", "toxic"], n),
        }
    )
    data["persona_id"] = data["persona_category"] + rng.integers(0, 6, n).astype(str)
    effect = data["persona_category"].map({"none": 0, "politician": 0.1, "athlete": 0.05, "journalist": -0.05})
    tmpl = data["template_id"].map({"generic": 0, "bad": 0.2, "toxic": 0.3})
    data["toxicity"] = np.clip(0.2 + effect + tmpl + rng.normal(0, 0.1, n), 0, 1)
    data["refusal"] = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 3 * tmpl + 2 * effect)))).astype(int)
    return data


def _groups(data: pd.DataFrame) -> np.ndarray:
    """Our clusters: the persona id, and for the baseline its prompt (here target × template)."""
    base = data["persona_category"] == "none"
    prompt = "base:" + data["target_category"] + ":" + data["template_id"]
    return pd.factorize(np.where(base, prompt, data["persona_id"]))[0]


@pytest.mark.parametrize("interaction", [False, True])
def test_ols_hc3_matches_statsmodels_with_the_normal(persona_data, interaction):
    """HC3 intervals and p-values use the normal, as statsmodels reports them (not t)."""
    ours = fit_persona_model(persona_data, "toxicity", "ols", cluster=None, interaction=interaction)
    ref = smf.ols("toxicity ~ " + FORMULA + (INTERACTION if interaction else ""), persona_data).fit(cov_type="HC3")
    assert not ref.use_t
    np.testing.assert_allclose(ours["coef"], ref.params.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(ours["se"], ref.bse.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ours["pval"], ref.pvalues.to_numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours[["ci_low", "ci_high"]], ref.conf_int().to_numpy(), atol=1e-10)
    np.testing.assert_allclose(ours["ci_high"] - ours["coef"], 1.959963984540054 * ours["se"], rtol=1e-9)
    assert ours["term"].iloc[1] == "persona[T.athlete]" and (ours["cov_type"] == "HC3").all()
    assert ours["df"].isna().all()


@pytest.mark.parametrize("interaction", [False, True])
def test_ols_cr1_matches_statsmodels_cluster_with_t(persona_data, interaction):
    ours = fit_persona_model(persona_data, "toxicity", "ols", cov_type="CR1", interaction=interaction)
    groups = _groups(persona_data)
    ref = smf.ols("toxicity ~ " + FORMULA + (INTERACTION if interaction else ""), persona_data).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True
    )
    np.testing.assert_allclose(ours["se"], ref.bse.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ours["pval"], ref.pvalues.to_numpy(), rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(ours[["ci_low", "ci_high"]], ref.conf_int().to_numpy(), atol=1e-10)
    assert (ours["df"] == len(np.unique(groups)) - 1).all()


def test_logit_model_based_matches_statsmodels_row_level(persona_data):
    ours = fit_persona_model(persona_data, "refusal", "logit", cluster=None)
    rows = fit_persona_model(persona_data, "refusal", "logit", cluster=None, aggregate=False)
    ref = smf.logit("refusal ~ " + FORMULA, persona_data).fit(disp=0)
    for table in (ours, rows):
        np.testing.assert_allclose(table["coef"], ref.params.to_numpy(), atol=1e-8)
        np.testing.assert_allclose(table["se"], ref.bse.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(table["pval"], ref.pvalues.to_numpy(), rtol=1e-5, atol=1e-14)
        np.testing.assert_allclose(table[["ci_low", "ci_high"]], ref.conf_int().to_numpy(), atol=1e-7)
    assert ours["n_obs"].iloc[0] == len(persona_data) and (ours["kind"] == "Logit").all()


@pytest.mark.parametrize(("outcome", "kind"), [("toxicity", "ols"), ("refusal", "logit")])
def test_cells_reproduce_the_row_level_cr2_fit(persona_data, outcome, kind):
    """The fit on cells equals the same estimator run with one cell per generation."""
    cells = fit_persona_model(persona_data, outcome, kind)
    rows = fit_persona_model(persona_data, outcome, kind, aggregate=False)
    for col in ("coef", "se", "df", "pval", "ci_low", "ci_high"):
        np.testing.assert_allclose(cells[col], rows[col], rtol=1e-7, atol=1e-12, err_msg=col)
    assert (cells["cov_type"] == "CR2").all() and cells["n_clusters"].iloc[0] == 18 + 9  # personas + baseline prompts


def test_statsmodels_cluster_errors_print_a_false_certainty_that_we_refuse():
    """The quickstart's defect: clustered on the persona id, a category carried by one persona got an SE of ~1e-16."""
    rng = np.random.default_rng(3)
    personas = {"none": "none", "p1": "basic", "p2": "basic", "p3": "activist"}
    rows = [(pid, cat, t, m) for pid, cat in personas.items() for t in "abcd" for m in "xyz" for _ in range(2)]
    data = pd.DataFrame(rows, columns=["persona_id", "persona_category", "target_category", "template_id"])
    data["toxicity"] = rng.normal(0.3, 0.1, len(data))
    groups = pd.factorize(data["persona_id"])[0]  # what this module did: the baseline one cluster too
    ref = smf.ols("toxicity ~ " + FORMULA, data).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert ref.bse["C(persona_category, Treatment(reference='none'))[T.activist]"] < 1e-8  # what statsmodels says
    table = tidy_result(ref).set_index("term")
    assert np.isnan(table.iloc[1]["se"]) and "degenerate" in table.iloc[1]["note"]
    for cov_type in ("CR2", "CR1"):
        ours = fit_persona_model(data, "toxicity", "ols", cov_type=cov_type).set_index("term")
        row = ours.loc["persona[T.activist]"]
        assert np.isnan(row[["se", "pval", "ci_low", "ci_high"]].astype(float)).all()
        assert "single cluster" in row["note"]
        assert ours["se"].dropna().min() > 1e-8 and (ours["pval"].dropna() > 0).all()


def test_degenerate_data_is_a_clear_error(persona_data):
    all_refused = persona_data.assign(refusal=1)
    with pytest.raises(DegenerateDataError, match="constant"):
        fit_persona_model(all_refused, "refusal", "logit", model="m")
    separated = persona_data.copy()
    separated.loc[separated["template_id"] == "toxic", "refusal"] = 1
    with pytest.raises(DegenerateDataError, match="separation"):
        fit_persona_model(separated, "refusal", "logit", firth=False)
    with pytest.raises(DegenerateDataError, match="baseline"):
        fit_persona_model(persona_data[persona_data["persona_category"] != "none"], "toxicity", "ols")
    two = pd.concat([persona_data.assign(model="a"), all_refused.assign(model="b")], ignore_index=True)
    out = persona_regressions(two, "refusal", "logit", on_degenerate="skip")
    assert set(out["model"]) == {"a"} and "b" in out.attrs["skipped"]
    with pytest.raises(DegenerateDataError):
        persona_regressions(two, "refusal", "logit")
    with pytest.raises(ValueError, match="HC3 is for OLS"):
        fit_persona_model(persona_data, "refusal", "logit", cov_type="HC3")
    with pytest.raises(ValueError, match="needs a cluster column"):
        fit_persona_model(persona_data, "toxicity", "ols", cluster=None, cov_type="CR2")
