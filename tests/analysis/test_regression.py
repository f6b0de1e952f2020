"""Persona regressions against statsmodels' own fits and published coefficients."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from analysis import DegenerateDataError, fit_persona_model, persona_regressions, tidy_result


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
    assert list(tidy_result(res).columns[:7]) == ["term", "coef", "se", "ci_low", "ci_high", "pval", "model"]


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


@pytest.mark.parametrize("cluster", ["persona_id", None])
@pytest.mark.parametrize("interaction", [False, True])
def test_ols_matches_statsmodels_row_level(persona_data, cluster, interaction):
    ours = fit_persona_model(persona_data, "toxicity", "ols", cluster=cluster, interaction=interaction)
    formula = "toxicity ~ C(persona_category, Treatment(reference='none')) + C(target_category) + C(template_id)"
    if interaction:
        formula += " + C(persona_category, Treatment(reference='none')):C(template_id)"
    if cluster:
        groups = pd.factorize(persona_data["persona_id"])[0]
        ref = smf.ols(formula, persona_data).fit(cov_type="cluster", cov_kwds={"groups": groups})
    else:
        ref = smf.ols(formula, persona_data).fit(cov_type="HC3")
    np.testing.assert_allclose(ours["coef"], ref.params.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(ours["se"], ref.bse.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ours["pval"], ref.pvalues.to_numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours[["ci_low", "ci_high"]], ref.conf_int().to_numpy(), atol=1e-10)
    assert ours["term"].iloc[1] == "persona[T.athlete]"
    assert ours["cov_type"].iloc[0] == ("cluster" if cluster else "HC3")


def test_logit_aggregated_equals_row_level(persona_data):
    agg = fit_persona_model(persona_data, "refusal", "logit")
    rows = fit_persona_model(persona_data, "refusal", "logit", aggregate=False)
    np.testing.assert_allclose(agg["coef"], rows["coef"], atol=1e-8)
    np.testing.assert_allclose(agg["se"], rows["se"], rtol=1e-6)
    assert agg["n_obs"].iloc[0] == len(persona_data)
    ref = smf.logit(
        "refusal ~ C(persona_category, Treatment(reference='none')) + C(target_category) + C(template_id)",
        persona_data,
    ).fit(disp=0)
    np.testing.assert_allclose(agg["coef"], ref.params.to_numpy(), atol=1e-8)


def test_degenerate_data_is_a_clear_error(persona_data):
    all_refused = persona_data.assign(refusal=1)
    with pytest.raises(DegenerateDataError, match="constant"):
        fit_persona_model(all_refused, "refusal", "logit", model="m")
    separated = persona_data.copy()
    separated.loc[separated["template_id"] == "toxic", "refusal"] = 1
    with pytest.raises(DegenerateDataError, match="separation"):
        fit_persona_model(separated, "refusal", "logit")
    with pytest.raises(DegenerateDataError, match="baseline"):
        fit_persona_model(persona_data[persona_data["persona_category"] != "none"], "toxicity", "ols")
    two = pd.concat([persona_data.assign(model="a"), all_refused.assign(model="b")], ignore_index=True)
    out = persona_regressions(two, "refusal", "logit", on_degenerate="skip")
    assert set(out["model"]) == {"a"} and "b" in out.attrs["skipped"]
    with pytest.raises(DegenerateDataError):
        persona_regressions(two, "refusal", "logit")
