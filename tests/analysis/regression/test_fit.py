"""The persona regression on data that real studies produce: aliasing, separation, one-persona categories, notes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf
from scipy.optimize import minimize

from analysis.regression import (
    BLOCK_TEST_COLUMNS,
    TIDY_COLUMNS,
    coefficient_table,
    fit_model,
    fit_persona_model,
    interaction_tests,
    persona_regressions,
)
from tests.analysis.regression.simulate import grid, nested, outcomes

FORMULA = "C(persona_category, Treatment(reference='none')) + C(target_category) + C(template_id)"


@pytest.fixture
def study():
    """24 personas in 3 categories (enough clusters), baseline, 4 targets × 3 templates × 2 repeats."""
    data = grid(nested(3, 8))
    rng = np.random.default_rng(0)
    return data.assign(toxicity=outcomes(data, rng, "ols", 0.3), refusal=outcomes(data, rng, "logit", 0.3))


def test_collinear_target_and_template_drop_the_aliased_term_like_r(study):
    """Each template is only ever used with one pair of targets: the template terms are combinations of targets."""
    data = study[study["target_category"].isin(["t0", "t1", "t2"])].copy()
    data["template_id"] = data["target_category"].map({"t0": "m0", "t1": "m1", "t2": "m1"})
    table = fit_persona_model(data, "toxicity", "ols").set_index("term")
    row = table.loc["template[T.m1]"]
    assert np.isnan(row[["coef", "se", "pval"]].astype(float)).all()
    assert "aliased with" in row["note"] and "target[T.t1]" in row["note"] and "R reports NA" in row["note"]
    # the kept terms are the fit of the design without the aliased column
    ref = smf.ols("toxicity ~ C(persona_category, Treatment(reference='none')) + C(target_category)", data).fit()
    np.testing.assert_allclose(table["coef"].dropna().to_numpy(), ref.params.to_numpy(), atol=1e-12)


def test_template_style_one_to_one_with_the_id_is_reported_not_split(study):
    data = study.assign(template_style=study["template_id"].map({"m0": "plain", "m1": "rude", "m2": "rude"}))
    tests = interaction_tests(data, "toxicity", "ols")
    assert list(tests.columns) == BLOCK_TEST_COLUMNS
    tests = tests.set_index("block")
    assert {"template_style", "persona_category × template_style"} <= set(tests.index)
    assert np.isfinite(tests.loc["template_style", "pval"]) and tests.loc["template_style", "df"] == 1
    same = interaction_tests(study.assign(template_style=study["template_id"]), "toxicity", "ols")
    row = same.set_index("block").loc["template_style"]
    assert np.isnan(row["pval"]) and "one-to-one with template_id" in row["note"]


def test_empty_interaction_cells_are_aliased(study):
    """Category c0 never saw template m2: its interaction column is empty, reported as aliased."""
    data = study[~((study["persona_category"] == "c0") & (study["template_id"] == "m2"))]
    table = fit_persona_model(data, "toxicity", "ols", interactions=("template",)).set_index("term")
    assert "empty column" in table.loc["persona[T.c0]:template[T.m2]", "note"]
    assert table["se"].dropna().min() > 1e-8


def _firth_reference(data: pd.DataFrame, formula: str) -> np.ndarray:
    """Firth estimates by direct maximization of the penalized log-likelihood on the rows (scipy, BFGS)."""
    x = patsy.dmatrix(formula, data, return_type="matrix")
    y = data["refusal"].to_numpy(float)

    def neg(beta):
        eta = x @ beta
        mu = 1 / (1 + np.exp(-eta))
        info = x.T @ (x * (mu * (1 - mu))[:, None])
        ll = -(y * np.logaddexp(0, -eta)).sum() - ((1 - y) * np.logaddexp(0, eta)).sum()
        return -(ll + 0.5 * np.linalg.slogdet(info)[1])

    return minimize(neg, np.zeros(x.shape[1]), method="BFGS", options={"gtol": 1e-9}).x


def test_a_zero_refusal_category_keeps_the_model_with_firth(study):
    """One persona category where nothing was refused: the model is not thrown away (it was before)."""
    data = study.copy()
    data.loc[data["persona_category"] == "c1", "refusal"] = 0
    two = pd.concat([data.assign(model="a"), study.assign(model="b")], ignore_index=True)
    out = persona_regressions(two, "refusal", "logit", on_degenerate="skip")
    assert set(out["model"]) == {"a", "b"} and not out.attrs["skipped"]
    table = out[out["model"] == "a"].set_index("term")
    row = table.loc["persona[T.c1]"]
    assert row["cov_type"] == "Firth-PL" and "separated" in row["note"]
    assert -12 < row["ci_low"] < row["coef"] < row["ci_high"] < 0 and 0 < row["pval"] < 1e-3
    np.testing.assert_allclose(table["coef"], _firth_reference(data, FORMULA), atol=2e-5)
    others = table.drop(index="persona[T.c1]")
    assert (others["cov_type"] == "CR2").all() and others["note"].str.contains("Firth").all()
    quick = coefficient_table(fit_model(data, "refusal", "logit", profiles=False)).set_index("term")
    row = quick.loc["persona[T.c1]"]  # without profiles: Wald from the penalized information, not a robust SE
    assert row["cov_type"] == "Firth-Wald" and row["ci_low"] < row["coef"] < row["ci_high"] < 0
    assert row["se"] == pytest.approx((row["ci_high"] - row["coef"]) / 1.959963984540054)


def test_quasi_separation_from_one_persona_target_cell(study):
    """No refusal in the (c0, t1) cells: the interaction model is separated along one term, and says which."""
    data = study.copy()
    data.loc[(data["persona_category"] == "c0") & (data["target_category"] == "t1"), "refusal"] = 0
    table = fit_persona_model(data, "refusal", "logit", interactions=("target",)).set_index("term")
    row = table.loc["persona[T.c0]:target[T.t1]"]
    assert "separated" in row["note"] and np.isfinite(row[["coef", "ci_low", "ci_high"]].astype(float)).all()
    assert row["ci_high"] < np.inf and row["coef"] < -1
    formula = FORMULA + " + C(persona_category, Treatment(reference='none')):C(target_category)"
    np.testing.assert_allclose(table["coef"], _firth_reference(data, formula), atol=5e-5)


def test_no_p_of_zero_and_no_tiny_se(study):
    """A huge effect on noiseless data: p is floored at 1e-300 with a note, never printed as 0."""
    data = study.assign(toxicity=study["template_id"].map({"m0": 0.0, "m1": 1.0, "m2": 2.0}))
    data["toxicity"] += np.random.default_rng(1).normal(0, 1e-7, len(data))
    table = fit_persona_model(data, "toxicity", "ols", cov_type="model").set_index("term")
    assert (table["pval"] > 0).all()
    assert table.loc["template[T.m1]", "pval"] == 1e-300 and "p below 1e-300" in table.loc["template[T.m1]", "note"]
    cr2 = fit_persona_model(data, "toxicity", "ols")
    assert (cr2["pval"] > 0).all() and (cr2["se"] > 1e-12).all()


def test_coverage_columns_and_the_note_without_clusters(study):
    data = study.copy()
    data.loc[data.sample(40, random_state=0).index, "toxicity"] = np.nan
    table = fit_persona_model(data, "toxicity", "ols", cluster=None)
    assert list(table.columns) == TIDY_COLUMNS
    assert (table["n_obs"] == len(data) - 40).all() and (table["n_total"] == len(data)).all()
    persona_rows = table[table["term"].str.startswith("persona")]
    assert persona_rows["note"].str.contains("generations treated as independent").all()
    assert table["n_clusters"].isna().all()
    clustered = fit_persona_model(data, "toxicity", "ols")
    assert (clustered["n_clusters"] == 24 + 12).all() and (clustered["note"] == "").all()  # 24 personas: no note


def test_fixed_persona_blocks_only_when_personas_are_few(study):
    many = interaction_tests(study, "toxicity", "ols", templates=("template_id",))
    assert not many["block"].str.startswith("persona_id").any()
    few = study[study["persona_id"].isin(["none", "c0_0", "c0_1", "c1_0", "c2_0"])]
    tests = interaction_tests(few, "toxicity", "ols", templates=("template_id",)).set_index("block")
    assert "single cluster" in tests.loc["persona_category × template_id", "note"]
    row = tests.loc["persona_id × template_id"]
    assert np.isfinite(row["pval"]) and "fixed conditions" in row["note"] and row["test"] == "Wald F (HC3)"
