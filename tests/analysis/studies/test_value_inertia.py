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
    grand = np.mean([0.7, 0.9, 0.6, 0.6, 0.2, 0.4])
    ssb = 2 * sum((m - grand) ** 2 for m in (0.8, 0.6, 0.3))
    sst = sum((v - grand) ** 2 for v in (0.7, 0.9, 0.6, 0.6, 0.2, 0.4))
    assert care["eta_squared"] == pytest.approx(ssb / sst)  # the judge's constant 0.5 would make it NaN
    assert care["default_mean"] == pytest.approx(0.8) and care["share_same_side"] == pytest.approx(2 / 3)
    assert (care["n_answers"], care["n_default_answers"]) == (7, 1)
    assert care["scores_from"] == "moral-probe rater(s): probe"
    # fairness has no moral-probe rater: the two judges are averaged per generation (.3, .7, .9).
    fair = vi.loc[("m1", "fairness")]
    assert fair["default_mean"] == pytest.approx(0.3) and fair["persona_mean"] == pytest.approx(0.8)
    assert fair["eta_squared"] == pytest.approx(1.0) and fair["share_same_side"] == 0
    assert fair["scores_from"] == "mean of rater(s): judge, judge2"
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
    # loyalty: two personas answering 0 alike and no baseline answer: no default mean, no eta².
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
    assert np.isnan(row["default_mean"]) and np.isnan(row["eta_squared"]) and row["persona_mean"] == 0
    reasons = tables["headline_notes"]["reason"].tolist()
    assert any(r.startswith("m1 (loyalty): no scored no-persona answer") for r in reasons)
    assert any(r.startswith("m1 (loyalty): eta² is undefined") for r in reasons)
