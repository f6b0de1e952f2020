"""The four study configs: every full config validates, and every tiny twin runs end to end on the embedded model
with `tribunal report` leading with the study's headline figures."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from graphs.cli import main
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"
STUDIES = {
    "persona_toxicity_zh": (
        "persona_toxicity",
        ["headline_toxicity_amplification", "headline_toxicity_amplification_by_persona"],
    ),
    "value_inertia": ("value_inertia", ["headline_value_inertia"]),
    "ptp_multilingual": ("ptp_multilingual", ["headline_ptp_by_language", "headline_ptp_by_resource"]),
    "demo_safetybench": ("demo_safetybench", ["headline_agreement", "headline_demographic_sensitivity"]),
}


@pytest.mark.parametrize("name", sorted(STUDIES))
@pytest.mark.parametrize("suffix", ["", "_tiny"])
def test_study_config_validates(name, suffix):
    path = CONFIGS / f"{name}{suffix}.yaml"
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok {path}")
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# "), "each study config opens with a header saying what it reproduces"


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STUDIES))
def test_tiny_twin_runs_and_reports_its_headline(name, tmp_path):
    study, headline_tables = STUDIES[name]
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(CONFIGS / f"{name}_tiny.yaml"), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output

    with sqlite3.connect(out / "transcripts.sqlite") as conn:
        generations = conn.execute("SELECT count(*) FROM generations WHERE outcome = 'ok'").fetchone()[0]
        scored = conn.execute("SELECT count(*) FROM ratings WHERE outcome = 'scored'").fetchone()[0]
    assert generations > 0 and scored > 0

    tables_file = tmp_path / "tables.json"
    result = runner.invoke(main, ["analyze", str(out), "--json", str(tables_file)])
    assert result.exit_code == 0, result.output
    tables = json.loads(tables_file.read_text(encoding="utf-8"))
    assert tables["study"][0]["study"] == study
    first = [name for name in tables if name not in ("study", "judge_card", "judges_used")][: len(headline_tables)]
    assert list(tables)[1:3] == ["judge_card", "judges_used"], "the judge card comes before the headline"
    assert first == headline_tables, "the analysis leads with the study's headline tables"
    for table in headline_tables:
        assert tables[table], f"{table} is empty"

    result = runner.invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "id='headline'" in html and html.index("id='headline'") < html.index("<h2>Figures</h2>")
    if study == "persona_toxicity":
        from tests.analysis.studies.test_persona_toxicity import check_tiny_twin_headline

        check_tiny_twin_headline(tables, html)
    if study == "value_inertia":
        from tests.analysis.studies.value_rows import check_value_inertia_tiny_rows

        check_value_inertia_tiny_rows(out, tables, html)
    if study == "ptp_multilingual":
        from tests.analysis.studies.ptp_rows import assert_ptp_tiny_rows

        assert_ptp_tiny_rows(tables)
    if study == "demo_safetybench":
        assert (out / "stage1" / "stage1.json").is_file() and (out / "stage1" / "benchmark.jsonl").is_file()
