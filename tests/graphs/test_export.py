"""`tribunal export`: every table as Parquet or JSON Lines, readable by pandas, nothing half-written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from graphs.cli import main
from graphs.export import EXPORTED_TABLES
from tests.conftest import scripted_config


@pytest.fixture
def finished_run(tmp_path, write_config):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(write_config(scripted_config())), "--out", str(run), "--no-progress"])
    assert result.exit_code == 0
    return run


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_export_writes_every_table(finished_run, fmt):
    result = CliRunner().invoke(main, ["export", str(finished_run), "--format", fmt])
    assert result.exit_code == 0, result.stderr
    folder = finished_run / "export"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.{fmt}" for t in EXPORTED_TABLES)
    path = folder / f"generations.{fmt}"
    frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_json(path, lines=True)
    assert len(frame) == 108
    assert {"generation_key", "cell_key", "round", "text", "outcome", "messages"} <= set(frame.columns)
    assert json.loads(frame["messages"].iloc[0])[-1]["role"] == "user"
    cells = pd.read_parquet(folder / "cells.parquet") if fmt == "parquet" else None
    if cells is not None:
        assert set(cells["persona_id"]) == {"good_person", "talk_show_host", "none"}


def test_export_selected_table_to_a_folder(finished_run, tmp_path):
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(
        main, ["export", str(finished_run), "--format", "jsonl", "--out", str(out), "--table", "cells"]
    )
    assert result.exit_code == 0
    lines = (out / "cells.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 108
    assert "说一说" in (out / "cells.jsonl").read_text(encoding="utf-8")
    assert [p.name for p in out.iterdir()] == ["cells.jsonl"]


def test_export_errors_are_one_line(tmp_path, finished_run):
    missing = CliRunner().invoke(main, ["export", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a tribunal run directory" in missing.stderr
    table = CliRunner().invoke(main, ["export", str(finished_run), "--table", "secrets"])
    assert table.exit_code == 2 and "unknown table(s) secrets" in table.stderr
