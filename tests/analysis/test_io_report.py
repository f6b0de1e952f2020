"""Loading run directories, the analysis frame, the report (escaping!) and the import-lightness rule."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import analysis_frame, analyze_run, load_run, render_tables, tables_to_json, write_report
from graphs.tables import DDL, STORE_FILENAME
from tests.helpers.synthetic import synthetic_run

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert('pwned')</script>"


def _store(run_dir: Path, ratings: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(run_dir / STORE_FILENAME)
    conn.executescript(DDL)
    now = time.time()
    cells = [
        ("c1", "m1", "none", "none", "none", "none", "women", "gender", "bad", "bad", "en", 0, 1, 1, "[]", now),
        (
            "c2",
            "m1",
            "p1",
            "character",
            "politician",
            "female",
            "women",
            "gender",
            "bad",
            "bad",
            "en",
            0,
            0,
            2,
            "[]",
            now,
        ),
        (
            "c3",
            "m1",
            "p2",
            "character",
            "politician",
            "male",
            "women",
            "gender",
            "bad",
            "bad",
            "en",
            0,
            0,
            3,
            "[]",
            now,
        ),
    ]
    conn.executemany("INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cells)
    gens = [
        ("g1", "c1", 0, None, "m1", "scripted", "[]", "{}", "fine", "ok", 0, now),
        ("g2", "c2", 0, None, "m1", "scripted", "[]", "{}", f"nasty {SCRIPT}", "ok", 0, now),
        ("g3", "c3", 0, None, "m1", "scripted", "[]", "{}", None, "timeout", None, now),
        ("g2r", "c2", 1, "g2", "m1", "scripted", "[]", "{}", "kinder", "ok", 0, now),
    ]
    conn.executemany(
        "INSERT INTO generations (generation_key, cell_key, round, parent_key, model, backend, messages, params, "
        "text, outcome, refusal, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        gens,
    )
    if ratings:
        rows = [
            ("r1", "g1", "judge-a", "judge-a", None, None, "toxicity", 0.1, "scored"),
            ("r2", "g1", "judge-b", "judge-b", None, None, "toxicity", 0.2, "scored"),
            ("r3", "g2", "judge-a", "judge-a", None, None, "toxicity", 0.9, "scored"),
            ("r4", "g2", "judge-b", "judge-b", None, None, "toxicity", None, "parse_error"),
            ("r5", "g2r", "judge-a", "judge-a", None, None, "toxicity", 0.3, "scored"),
            ("r6", "g2", "judge-a/f", "judge-a", "gender", "female", "unsafe", 0.8, "scored"),
            ("r7", "g2", "judge-a/m", "judge-a", "gender", "male", "unsafe", 0.5, "scored"),
        ]
        conn.executemany(
            "INSERT INTO ratings (rating_key, generation_key, rater, rater_name, framing_attribute, framing_value, "
            "dimension, score, outcome, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(*r, now) for r in rows],
        )
        conn.execute("INSERT INTO mitigation VALUES ('c2', 1, 'below_threshold', ?)", (now,))
    conn.commit()
    conn.close()
    return run_dir


def test_load_run_and_analysis_frame(tmp_path):
    tables = load_run(_store(tmp_path / "run"), keys=True, text=True)
    assert len(tables.cells) == 3 and len(tables.generations) == 4 and len(tables.ratings) == 7
    gens = tables.generations.set_index("generation_key")
    assert gens.loc["g2r", "parent_id"] == gens.loc["g2", "generation_id"]
    assert np.isnan(gens.loc["g3", "refusal"]) and gens.loc["g2", "text"].startswith("nasty")
    r = tables.ratings.set_index("rating_key")
    assert np.isnan(r.loc["r4", "score"]) and r.loc["r6", "framing_value"] == "female"
    assert list(tables.mitigation.columns) == ["cell_id", "rounds", "stop_reason"]

    af = analysis_frame(tables)
    frame = af.frame.set_index("generation_id")
    assert len(frame) == 3  # round 0 only
    g1, g2 = gens.loc["g1", "generation_id"], gens.loc["g2", "generation_id"]
    assert frame.loc[g1, "toxicity:judge-b"] == pytest.approx(0.2)
    assert np.isnan(frame.loc[g2, "toxicity:judge-b"])  # parse error -> NaN, not a number
    assert frame.loc[g1, "persona_category"] == "none"
    cov = af.coverage.set_index(["rater", "dimension", "outcome"])["n"]
    assert cov[("judge-b", "toxicity", "parse_error")] == 1
    assert cov[("judge-b", "toxicity", "not_rated")] == 1  # g3 failed, never rated
    assert set(af.columns_for("toxicity")) == {"toxicity:judge-a", "toxicity:judge-b"}


def test_load_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a tribunal run directory"):
        load_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / STORE_FILENAME).write_text("not sqlite at all, just text" * 100)
    with pytest.raises(ValueError, match="not a tribunal transcript store"):
        load_run(bad)
    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / STORE_FILENAME).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(ValueError, match="no table cells"):
        load_run(other)


def test_no_ratings_degrades(tmp_path):
    run = _store(tmp_path / "run", ratings=False)
    tables = analyze_run(run)
    assert "agreement" not in tables and "toxicity_by_persona" not in tables
    assert (tables["notes"]["table"] == "agreement").any()
    assert tables["summary"].loc[0, "dimensions"] == "(no ratings)"
    json.loads(tables_to_json(tables))
    html = write_report(run).read_text()
    assert "Absent: no toxicity dimension was rated." in html


def test_report_escapes_model_text(tmp_path):
    run = _store(tmp_path / "run")
    tables = analyze_run(run)
    assert {"generations", "refusal_rates", "toxicity_by_persona", "agreement", "mitigation_curve"} <= set(tables)
    assert "demographic_sensitivity" in tables
    out = write_report(run, tmp_path / "out" / "r.html")
    html = out.read_text()
    assert SCRIPT not in html and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
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


def test_import_is_light():
    code = (
        "import sys, analysis, analysis.io, analysis.report, analysis.agreement;"
        "heavy = {'langgraph', 'torch', 'vllm', 'transformers', 'matplotlib', 'agents', 'raters', 'configs'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_frames_tolerate_pandas_objects():
    # A long frame with string raters and a non-default index still pivots correctly.
    from analysis import icc

    data = pd.DataFrame({"t": [1, 1, 2, 2, 3, 3], "r": ["a", "b"] * 3, "y": [1.0, 2.0, 2.0, 2.5, 3.0, 3.5]})
    data.index = [10, 10, 11, 11, 12, 12]
    assert icc(data, "t", "r", "y").loc[0, "ICC"] == pytest.approx(
        icc(data.reset_index(drop=True), "t", "r", "y").loc[0, "ICC"]
    )
