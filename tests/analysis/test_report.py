"""The HTML report (:mod:`analysis.report`): escaping, figures with coverage, and the moved names' warnings."""

from __future__ import annotations

import json
import re

import pytest

from analysis import analyze_run, render_tables, tables_to_json, write_report
from tests.analysis.stores import SCRIPT, tiny_store
from tests.helpers.synthetic import synthetic_run


def test_report_escapes_model_text(tmp_path):
    run = tiny_store(tmp_path / "run")
    tables = analyze_run(run)
    assert {"generations", "refusal_rates", "toxicity_by_persona", "agreement", "mitigation_curve"} <= set(tables)
    assert "demographic_sensitivity" in tables
    out = write_report(run, tmp_path / "out" / "r.html")
    html = out.read_text()
    assert SCRIPT not in html and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    # the page's own two scripts (the escaped data block and the browser's code), and no other
    assert re.findall(r"<script\b[^>]*>", html, re.IGNORECASE) == [
        "<script type='application/json' id='tribunal-data'>",
        "<script id='tribunal-app-script'>",
    ]
    assert "data:image/png;base64," in html and "Coverage:" in html


def test_synthetic_run_full_report(tmp_path):
    run = synthetic_run(tmp_path / "syn", n_generations=3000, n_raters=3, seed=1)
    tables = analyze_run(run)
    for name in (
        "agreement",
        "judge_errors",
        "toxicity_amplification",
        "toxicity_regression",
        "refusal_regression",
        "refusal_gender_gaps",
        "mitigation_curve",
        "toxicity_ptp",
    ):
        assert name in tables and len(tables[name]), name
    agr = tables["agreement"].set_index("metric")
    assert 0.5 < agr.loc["ICC2", "value"] < 1
    payload = json.loads(tables_to_json(tables))
    assert payload["summary"][0]["raters"] == 3
    from rich.console import Console

    console = Console(record=True, width=200)
    render_tables(tables, console)
    assert "agreement" in console.export_text()
    html = write_report(run).read_text()
    # The synthetic run is a persona-toxicity study: its headline figure leads, then the four standard figures.
    assert tables["study"].loc[0, "study"] == "persona_toxicity"
    headline, rest = html.split("<h2>Figures</h2>")
    assert headline.count("data:image/png;base64,") == 1 and rest.count("data:image/png;base64,") == 4
    assert "<script>" not in html


MOVED = [
    ("analyze_tables", "analysis.tables"),
    ("render_tables", "analysis.render"),
    ("tables_to_json", "analysis.render"),
]


@pytest.mark.parametrize(("name", "module"), MOVED)
def test_moved_names_still_import_from_report_with_a_warning(name, module):
    import importlib

    import analysis.report

    with pytest.warns(DeprecationWarning, match=f"moved to {module}.{name}"):
        old = getattr(analysis.report, name)
    assert old is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError):
        analysis.report.no_such_name  # noqa: B018
