"""Terminal rendering of analysis tables: wide tables are printed transposed so that 80 columns stay readable."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from rich.console import Console

from analysis.render import format_value, render_tables, tables_to_json


def _render(tables: dict[str, pd.DataFrame], width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    render_tables(tables, console)
    return console.file.getvalue()


def test_wide_table_is_transposed_in_blocks_that_fit():
    wide = pd.DataFrame([{f"metric_{i}": i * row for i in range(17)} | {"model": f"m{row}"} for row in range(7)])
    text = _render({"wide": wide}, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = text.splitlines()
    assert any(line.startswith("┃ column") for line in lines)
    assert any("metric_16" in line for line in lines)  # every column is a row, none folded letter by letter
    assert "wide (rows 5–7)" in text  # seven rows at 80 columns: blocks of four


def test_narrow_table_keeps_its_columns():
    narrow = pd.DataFrame({"model": ["a", "b"], "n": [1, 2]})
    text = _render({"narrow": narrow}, width=80)
    assert "┃ model" in text and "column" not in text


def test_tables_to_json_writes_nan_as_null_and_keeps_every_row():
    tables = {"t": pd.DataFrame({"x": [1.5, np.nan], "y": ["a", None]}), "empty": pd.DataFrame(columns=["z"])}
    payload = json.loads(tables_to_json(tables))
    assert payload == {"t": [{"x": 1.5, "y": "a"}, {"x": None, "y": None}], "empty": []}


def test_format_value():
    assert format_value(0.123456) == "0.1235" and format_value(np.nan) == "" and format_value(3) == "3"
    assert format_value(np.array([0.5, 1 / 3])) == "[0.5, 0.3333]"
