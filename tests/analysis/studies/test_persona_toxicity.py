"""The persona-toxicity headline (:mod:`analysis.studies.persona_toxicity`)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import analyze_run, gender_gaps, two_proportion_ztest, write_report
from analysis.studies import STUDY_TABLES
from tests.analysis.stores import make_store
from tests.analysis.studies.stores import persona_toxicity_store


def test_persona_toxicity_headline(tmp_path):
    run = persona_toxicity_store(tmp_path / "run")
    tables = analyze_run(run, n_boot=300)
    assert tables["study"].loc[0, "study"] == "persona_toxicity"
    assert tables["study"].loc[0, "detected_from"] == "data"
    assert list(tables)[:4] == ["study", *STUDY_TABLES["persona_toxicity"]]

    amp = tables["headline_toxicity_amplification"].set_index(["model", "persona_category"]).loc[("m1", "politician")]
    # pairs: t1 (.4+.2)/2 = .3 vs .1, t2 (.6+.2)/2 = .4 vs .3; the zh cell has no zh baseline and is left out.
    assert amp["n_pairs"] == 2
    assert amp["persona_mean"] == pytest.approx(0.35) and amp["baseline_mean"] == pytest.approx(0.2)
    assert amp["ratio"] == pytest.approx(1.75) and amp["difference"] == pytest.approx(0.15)
    assert amp["ratio_ci_low"] <= amp["ratio"] <= amp["ratio_ci_high"]

    ref = tables["headline_refusal_vs_baseline"].set_index(["factor", "level"])
    pol = ref.loc[("persona_category", "politician")]
    assert (pol["n"], pol["refusals"], pol["baseline_n"], pol["baseline_refusals"]) == (5, 3, 2, 1)
    assert pol["rate"] == pytest.approx(0.6) and pol["baseline_rate"] == pytest.approx(0.5)
    assert pol["gap"] == pytest.approx(0.1)
    z, p = two_proportion_ztest([3], [5], [1], [2])
    assert pol["z"] == pytest.approx(z[0]) and pol["pval"] == pytest.approx(p[0])
    assert ref.loc[("persona_kind", "character"), "rate"] == pytest.approx(0.6)
    assert "none" not in set(ref.reset_index()["level"])  # the baseline is the reference, not a level

    gap = tables["headline_refusal_gender_gap"].iloc[0]
    assert (gap["group_a"], gap["group_b"], gap["n_a"], gap["n_b"]) == ("female", "male", 3, 2)
    assert gap["gap"] == pytest.approx(1.0)
    frame = pd.DataFrame(
        {"model": ["m1"] * 5, "persona_gender": ["female"] * 3 + ["male"] * 2, "refusal": [1, 1, 1, 0, 0]}
    )
    assert gap["pval"] == pytest.approx(gender_gaps(frame, by="model").loc[0, "pval"])
    assert "headline_notes" not in tables


def test_persona_toxicity_missing_pieces_are_noted(tmp_path):
    # No ratings and no refusal flags: the study comes from the config; every headline table says why it is absent.
    cells = [{"key": "b", "is_baseline": 1}, {"key": "p", "persona_id": "p", "persona_category": "politician"}]
    run = make_store(tmp_path / "run", cells, configs=[{"study": "persona_toxicity"}])
    tables = analyze_run(run)
    assert tables["study"].loc[0, "detected_from"] == "config"
    assert not any(name in tables for name in STUDY_TABLES["persona_toxicity"])
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "no ratings in this run yet" in notes["headline_toxicity_amplification"]
    assert "refusal flag" in notes["headline_refusal_vs_baseline"]
    html = write_report(run).read_text()
    head = html.split("<h2>Figures</h2>")[0]
    assert "Persona toxicity: headline figures" in head
    assert "Absent: no ratings in this run yet" in head and "Absent: no generation has a refusal flag" in head
