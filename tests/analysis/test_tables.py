"""The tables of a run (:mod:`analysis.tables`): every section degrades to a note when its data are missing."""

from __future__ import annotations

import json

import pandas as pd

from analysis import analyze_run, tables_to_json, write_report
from analysis.tables import is_headline_table, study_row
from tests.analysis.stores import tiny_store
from tests.helpers.synthetic import synthetic_run


def test_no_ratings_degrades(tmp_path):
    run = tiny_store(tmp_path / "run", ratings=False)
    tables = analyze_run(run)
    assert "agreement" not in tables and "toxicity_by_persona" not in tables
    assert (tables["notes"]["table"] == "agreement").any()
    assert tables["summary"].loc[0, "dimensions"] == "(no ratings)"
    json.loads(tables_to_json(tables))
    html = write_report(run).read_text()
    assert "Absent: no toxicity dimension was rated." in html


def test_sections_come_in_order_and_notes_last(tmp_path):
    tables = analyze_run(tiny_store(tmp_path / "run"))
    names = list(tables)
    generic = [n for n in names if not is_headline_table(n)]
    assert generic[:3] == ["generations", "summary", "rating_coverage"] and generic[-2:] == ["examples", "notes"]
    for earlier, later in (("refusal_rates", "toxicity_by_persona"), ("toxicity_by_persona", "agreement"),
                           ("agreement", "mitigation_curve")):  # fmt: skip
        assert names.index(earlier) < names.index(later)
    assert study_row(tables)["study"] == "demo_safetybench" and study_row({}) is None  # framed ratings
    assert list(tables["notes"].columns) == ["table", "reason"]


def test_synthetic_run_tables(tmp_path):
    tables = analyze_run(synthetic_run(tmp_path / "syn", n_generations=600, n_raters=3, seed=2), n_boot=20)
    summary = tables["summary"].iloc[0]
    assert summary["raters"] == 3 and summary["generations_round0"] == tables["generations"]["n"].sum()
    by_persona = tables["toxicity_by_persona"]
    assert (by_persona["ci_low"] <= by_persona["mean"]).all() and (by_persona["n"] <= by_persona["n_generations"]).all()
    assert pd.api.types.is_integer_dtype(tables["generations"]["n"])
    json.loads(tables_to_json(tables))
