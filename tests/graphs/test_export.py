"""Exporting a run: every table as Parquet or JSON Lines, readable by pandas, nothing half-written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from graphs.export import EXPORTED_TABLES, ExportError, export_run
from tests.conftest import run_config, scripted_config


@pytest.fixture
def finished_run(tmp_path, write_config):
    run = tmp_path / "run"
    run_config(write_config(scripted_config()), run)
    return run


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_export_writes_every_table(finished_run, fmt):
    paths = export_run(finished_run, fmt)
    folder = finished_run / "export"
    assert sorted(paths) == sorted(folder / f"{t}.{fmt}" for t in EXPORTED_TABLES)
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
    assert export_run(finished_run, "jsonl", out, ["cells"]) == [out / "cells.jsonl"]
    lines = (out / "cells.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 108
    assert "说一说" in (out / "cells.jsonl").read_text(encoding="utf-8")
    assert [p.name for p in out.iterdir()] == ["cells.jsonl"]


def test_export_errors_name_the_problem(tmp_path, finished_run):
    with pytest.raises(ExportError, match="not a tribunal run directory"):
        export_run(tmp_path / "nope")
    with pytest.raises(ExportError, match="unknown table"):
        export_run(finished_run, "jsonl", tables=["secrets"])
