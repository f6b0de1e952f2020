"""The value-inertia headline (:mod:`analysis.studies.value_inertia`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import analyze_run, value_inertia
from analysis.studies import detect_study
from tests.analysis.stores import make_store
from tests.analysis.studies.stores import CARE, value_inertia_store


def test_value_inertia_headline(tmp_path):
    run = value_inertia_store(tmp_path / "run")
    assert detect_study(run) == "value_inertia"
    tables = analyze_run(run)
    vi = tables["headline_value_inertia"].set_index(["model", "dimension"])
    care = vi.loc[("m1", "care")]
    assert "eta_squared" not in vi.columns  # the share pooled over probes is not shown
    # Two-way persona + probe (care_0, care_1): persona means .8 .6 .3, probe means .5 .6333; residuals ±.0333,
    # ±.0667, ±.0333, so SS_persona = 2 Σ(m - .5667)² = .76/3 and SS_e = .04/3: partial eta² = .95 (F = 19 on 2, 2).
    assert care["persona_eta_squared"] == pytest.approx(0.95)  # the judge's constant 0.5 would make it NaN
    assert care["persona_f"] == pytest.approx(19.0) and (care["df_persona"], care["df_residual"]) == (2, 2)
    assert care["persona_eta_squared_ci_low"] == 0 and care["n_items"] == 2 and care["note"] == ""
    assert care["default_mean"] == pytest.approx(0.8) and care["share_same_side"] == pytest.approx(2 / 3)
    assert (care["n_answers"], care["n_default_answers"]) == (7, 1)
    assert care["scores_from"] == "moral-probe rater(s): probe"
    # fairness has no moral-probe rater: the two judges are averaged per generation (.3, .7, .9).
    fair = vi.loc[("m1", "fairness")]
    assert fair["default_mean"] == pytest.approx(0.3) and fair["persona_mean"] == pytest.approx(0.8)
    assert fair["share_same_side"] == 0 and np.isnan(fair["persona_eta_squared"])  # one answer per persona
    assert fair["note"].startswith("no residual degrees of freedom")
    assert fair["scores_from"] == "mean of rater(s): judge, judge2"
    notes = tables["headline_notes"]["reason"].tolist()
    assert (
        "m1 (fairness): no residual degrees of freedom (one answer per persona and item): no noise to compare with"
        in notes
    )
    # The same numbers as value_inertia() on the long data.
    ref = value_inertia(
        pd.DataFrame(
            {
                "dimension": "care",
                "persona_id": [p for p, s in CARE.items() for _ in s],
                "score": sum(CARE.values(), []),
            }
        )
    ).iloc[0]
    assert care["persona_sd"] == pytest.approx(ref["persona_sd"])
    assert list(vi.reset_index()["dimension"]) == ["care", "fairness"]  # foundation order


def test_value_inertia_without_foundation_ratings(tmp_path):
    cells = [{"key": "a", "template_id": "moral_probes", "is_baseline": 1}, {"key": "b", "persona_id": "p"}]
    ratings = [{"cell": "a", "rater": "tox", "kind": "hf-classifier", "dimension": "toxicity", "score": 0.1}]
    run = make_store(tmp_path / "run", cells, ratings, configs=[{"study": "value_inertia"}])
    tables = analyze_run(run)
    assert "headline_value_inertia" not in tables
    reason = tables["headline_notes"].set_index("table").loc["headline_value_inertia", "reason"]
    assert "no rating on a moral foundation" in reason and "toxicity" in reason


def test_value_inertia_undefined_figures_are_noted(tmp_path):
    # loyalty: two personas answering 0 alike and no baseline answer: no default mean, no persona effect.
    cells = [
        {
            "key": k,
            "persona_id": p,
            "persona_category": "randomized",
            "target_category": "loyalty",
            "template_id": "moral_probes",
        }
        for k, p in (("a", "p1"), ("b", "p2"))
    ]
    ratings = [{"cell": k, "rater": "self", "kind": "moral-probe", "dimension": "loyalty", "score": 0.0} for k in "ab"]
    tables = analyze_run(make_store(tmp_path / "run", cells, ratings))
    row = tables["headline_value_inertia"].iloc[0]
    assert np.isnan(row["default_mean"]) and np.isnan(row["persona_eta_squared"]) and row["persona_mean"] == 0
    reasons = tables["headline_notes"]["reason"].tolist()
    assert any(r.startswith("m1 (loyalty): no scored no-persona answer") for r in reasons)
    assert any(r.startswith("m1 (loyalty): no residual degrees of freedom") for r in reasons)


def _probe_store(run_dir, persona_effects, probe_effects, language_shift, noise, rng):
    """Personas × probes × languages × 2 repeats on the care foundation, scores from a known additive model.

    Returns the run and the answers as a long frame (``persona_id, item, language, score``)."""
    cells, ratings, answers = [], [], []
    for p, alpha in enumerate(persona_effects):
        for j, beta in enumerate(probe_effects):
            for lang, shift in (("en", 0.0), ("zh", language_shift)):
                for r in range(2):
                    key = f"p{p}-{j}-{lang}-{r}"
                    cells.append(
                        {
                            "key": key,
                            "persona_id": f"p{p}",
                            "persona_category": "randomized",
                            "target_id": f"care_{j}",
                            "target_category": "care",
                            "template_id": "moral_probes",
                            "language": lang,
                            "repeat": r,
                        }
                    )
                    score = 0.5 + alpha + beta + shift + rng.normal(0, noise)
                    ratings.append(
                        {"cell": key, "rater": "self", "kind": "moral-probe", "dimension": "care", "score": score}
                    )
                    answers.append({"persona_id": f"p{p}", "item": f"care_{j}", "language": lang, "score": score})
    run = make_store(run_dir, cells, ratings, configs=[{"study": "value_inertia"}])
    return run, pd.DataFrame(answers).assign(dimension="care")


def test_value_inertia_headline_removes_probe_and_language_effects(tmp_path):
    # 12 personas whose effects have variance .02 (error variance .01: a true partial eta² of 2/3), probes spread
    # over ±.3 and Chinese answers .2 higher. Pooled over probes and languages the persona share reads as small.
    rng = np.random.default_rng(7)
    alpha = rng.normal(size=12)
    alpha = (alpha - alpha.mean()) / alpha.std() * np.sqrt(0.02)
    run, answers = _probe_store(tmp_path / "run", alpha, [-0.3, -0.1, 0.1, 0.3], 0.2, 0.1, rng)
    row = analyze_run(run)["headline_value_inertia"].iloc[0]
    assert (row["n_items"], row["n_answers"], row["df_persona"], row["df_residual"]) == (8, 192, 11, 192 - 12 - 7)
    assert row["persona_eta_squared_ci_low"] < 2 / 3 < row["persona_eta_squared_ci_high"]
    assert row["persona_omega_squared"] == pytest.approx(2 / 3, abs=0.12)
    same = value_inertia(answers).iloc[0]  # the headline is value_inertia() with the probe and language as items
    assert row["persona_eta_squared"] == pytest.approx(same["persona_eta_squared"])
    assert same["eta_squared"] < 0.3  # the old pooled figure


def test_value_headline_leads_with_the_corrected_effect_for_values_and_higher_order_values(tmp_path):
    # Known truth: persona effects of variance .02 on benevolence and universalism (so on self-transcendence,
    # which pools them), none on power; error SD .1. Two items per value, two languages, two repeats, 15 personas.
    from analysis.studies.value_inertia import LEAD_COLUMNS

    rng = np.random.default_rng(31)
    alpha = rng.normal(size=15)
    alpha = (alpha - alpha.mean()) / alpha.std() * np.sqrt(0.02)
    cells, ratings, answers = [], [], []
    for value, effect in (("benevolence", alpha), ("universalism", alpha), ("power", 0 * alpha)):
        for p in [*range(15), None]:
            for j, beta in enumerate((-0.2, 0.1)):
                for lang in ("en", "zh"):
                    for r in range(2):
                        key = f"{value}-{p}-{j}-{lang}-{r}"
                        persona = "none" if p is None else f"p{p}"
                        cells.append(
                            {
                                "key": key,
                                "persona_id": persona,
                                "persona_category": "none" if p is None else "randomized",
                                "is_baseline": int(p is None),
                                "target_id": f"{value}_{j}",
                                "target_category": value,
                                "template_id": "moral_probes",
                                "language": lang,
                                "repeat": r,
                            }
                        )
                        score = 0.6 + (0 if p is None else effect[p]) + beta + rng.normal(0, 0.1)
                        ratings.append(
                            {
                                "cell": key,
                                "rater": "self-values",
                                "kind": "value-probe",
                                "dimension": value,
                                "score": score,
                            }
                        )
                        answers.append(
                            {
                                "persona_id": persona,
                                "item": f"{value}_{j}",
                                "language": lang,
                                "value": value,
                                "score": score,
                            }
                        )
    run = make_store(tmp_path / "run", cells, ratings, configs=[{"study": "value_inertia"}])
    vi = analyze_run(run)["headline_value_inertia"]
    assert tuple(vi.columns[: len(LEAD_COLUMNS)]) == LEAD_COLUMNS
    assert list(zip(vi["instrument"], vi["dimension"], strict=True)) == [
        ("schwartz_values", "power"),
        ("schwartz_values", "benevolence"),
        ("schwartz_values", "universalism"),
        ("schwartz_higher_order", "self_enhancement"),
        ("schwartz_higher_order", "self_transcendence"),
    ]
    row = vi.set_index("dimension")
    share = 0.02 / (0.02 + 0.01)  # the population partial eta² of the persona effects
    for dim in ("benevolence", "universalism", "self_transcendence"):
        assert row.loc[dim, "persona_omega_squared"] == pytest.approx(share, abs=0.1), dim
        assert row.loc[dim, "persona_eta_squared_ci_low"] > 0.4 and row.loc[dim, "persona_eta_squared_ci_high"] < 0.9
        assert row.loc[dim, "persona_p"] < 1e-6 and row.loc[dim, "note"] == ""
        assert row.loc[dim, "persona_eta_squared"] > row.loc[dim, "persona_eta_squared_null"]
    assert row.loc["power", "persona_eta_squared_ci_low"] == 0 and row.loc["power", "persona_p"] > 0.001
    assert row.loc["power", "persona_omega_squared"] < 0.2
    assert row.loc["self_transcendence", "scores_from"] == "pooled from benevolence, universalism"
    # the higher-order row is value_inertia() over its values' answers pooled, each item its own effect
    frame = pd.DataFrame(answers)
    pooled = value_inertia(frame[frame["value"] != "power"].assign(dimension="self_transcendence")).iloc[0]
    for column in ("persona_omega_squared", "persona_eta_squared_ci_high", "persona_eta_squared_null", "persona_p"):
        assert row.loc["self_transcendence", column] == pytest.approx(pooled[column], rel=1e-9)
    assert row.loc["self_transcendence", "n_items"] == 8  # 4 items × 2 languages
