"""The quickstart's design on simulated data: no SE below 1e-8, no p of exactly 0, a note wherever inference
is not supported.

``configs/quickstart.yaml``: 4 personas (good_person and bad_person in ``basic``, talk_show_host an
``entertainer``, union_organizer an ``activist``) plus the no-persona baseline × 4 target groups × 3 templates ×
2 repeats = 120 generations per model. Persona category nests persona id, so two categories rest on one persona
each and ``basic`` on two: the regression this report printed as ``coef 0.0548 se 5.7e-16 p 0``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import analyze_run
from analysis.regression import interaction_tests, persona_regressions
from tests.helpers.synthetic import synthetic_run

PERSONAS = {
    "good_person": "basic",
    "bad_person": "basic",
    "talk_show_host": "entertainer",
    "union_organizer": "activist",
    "none": "none",
}
TARGETS = {"women": "gender", "immigrants": "nationality", "older_people": "age", "muslims": "religion"}
TEMPLATES = ("generic", "negative", "toxic")


def quickstart(seed: int) -> pd.DataFrame:
    """The quickstart grid with toxicity and refusals drawn with persona effects; the activist never refuses."""
    rows = [
        (pid, cat, tid, tcat, tmpl, r)
        for pid, cat in PERSONAS.items()
        for tid, tcat in TARGETS.items()
        for tmpl in TEMPLATES
        for r in range(2)
    ]
    columns = ["persona_id", "persona_category", "target_id", "target_category", "template_id", "repeat"]
    data = pd.DataFrame(rows, columns=columns).assign(model="smollm2", language="en")
    data["template_style"] = data["template_id"]
    rng = np.random.default_rng(seed)
    persona = data["persona_id"].map(dict(zip(PERSONAS, rng.normal(0, 0.05, 5), strict=True)))
    template = data["template_id"].map({"generic": 0.0, "negative": 0.05, "toxic": 0.15})
    data["toxicity"] = np.clip(0.15 + persona + template + rng.normal(0, 0.08, len(data)), 0, 1)
    data.loc[rng.random(len(data)) < 0.1, "toxicity"] = np.nan  # unscored
    data["refusal"] = (rng.random(len(data)) < 0.2 + 0.3 * (data["template_id"] == "toxic")).astype(int)
    data.loc[data["persona_id"] == "union_organizer", "refusal"] = 0
    return data


def _check_coefficients(table: pd.DataFrame) -> None:
    assert not table.empty
    assert (table["se"].dropna() >= 1e-8).all()
    assert (table["pval"].dropna() > 0).all()
    assert (table["ci_low"].dropna() <= table["ci_high"].dropna()).all()
    missing = table["se"].isna() | table["pval"].isna()
    assert (table.loc[missing, "note"].str.len() > 0).all(), table.loc[missing, ["term", "note"]]


def _check_tests(tests: pd.DataFrame) -> None:
    assert not tests.empty
    assert (tests["pval"].dropna() > 0).all()
    assert (tests.loc[tests["pval"].isna(), "note"].str.len() > 0).all()


@pytest.mark.parametrize(("outcome", "kind"), [("toxicity", "ols"), ("refusal", "logit")])
def test_quickstart_regression_has_no_false_certainty(outcome, kind):
    table = persona_regressions(quickstart(0), outcome, kind).set_index("term")
    _check_coefficients(table.reset_index())
    for single in ("persona[T.activist]", "persona[T.entertainer]"):
        assert np.isnan(table.loc[single, ["se", "pval", "ci_low", "ci_high"]].astype(float)).all()
        assert "single cluster" in table.loc[single, "note"]
    basic = table.loc["persona[T.basic]"]
    assert np.isfinite(basic["se"]) and "only 4 personas" in basic["note"]
    assert basic["df"] < 10  # two personas: few degrees of freedom, a wide interval
    assert (table["n_clusters"] == 4 + 12).all()  # 4 personas + the baseline's 12 prompts
    if kind == "logit":
        assert "separated" in table.loc["persona[T.activist]", "note"]


@pytest.mark.parametrize(("outcome", "kind"), [("toxicity", "ols"), ("refusal", "logit")])
def test_quickstart_joint_tests_say_what_cannot_be_tested(outcome, kind):
    tests = interaction_tests(quickstart(1), outcome, kind).set_index("block")
    _check_tests(tests.reset_index())
    for block in ("persona_category", "persona_category × target_category", "persona_category × template_id"):
        assert np.isnan(tests.loc[block, "pval"]) and "single cluster" in tests.loc[block, "note"]
    assert "one-to-one" in tests.loc["template_style", "note"]
    for block in ("persona_id", "persona_id × target_category", "persona_id × template_id"):
        assert np.isfinite(tests.loc[block, "pval"]) and "fixed conditions" in tests.loc[block, "note"]


def test_the_invariants_hold_over_many_simulated_quickstarts():
    for seed in range(30):
        data = quickstart(seed)
        for outcome, kind in (("toxicity", "ols"), ("refusal", "logit")):
            _check_coefficients(persona_regressions(data, outcome, kind))


def test_quickstart_sized_run_report(tmp_path):
    """analyze_run on a small synthetic run (4 personas, one per category): the regression tables are kept and
    carry notes where they cannot support inference."""
    run = synthetic_run(tmp_path / "run", n_generations=400, n_raters=2, n_models=1, n_personas=4, seed=3)
    tables = analyze_run(run)
    for name in ("toxicity_regression", "refusal_regression"):
        _check_coefficients(tables[name])
        persona_rows = tables[name][tables[name]["term"].str.startswith("persona")]
        assert persona_rows["se"].isna().all() and persona_rows["note"].str.contains("single cluster").all()
    for name in ("toxicity_joint_tests", "refusal_joint_tests"):
        _check_tests(tables[name])
