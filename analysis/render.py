"""The tables of :func:`analysis.tables.analyze_tables` for the terminal (rich) and as JSON.

:func:`render_tables` prints the study's headline tables first, under a rule naming the study, each with its
one-line meaning, then every other table; a table with more columns than fit the terminal is printed transposed,
in blocks of rows (like psql's ``\\x``). :func:`tables_to_json` writes every table in full, ``NaN`` as ``null``.
rich is imported only when printing.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.frames import jsonable
from analysis.studies import HEADLINE_DESCRIPTIONS
from analysis.tables import is_headline_table, study_row

__all__ = ["card_summary", "format_value", "render_tables", "tables_to_json"]

#: Narrowest readable column in the terminal; tables with more columns than fit are printed transposed.
_MIN_COLUMN = 9
#: The judge card's columns printed in the terminal (the JSON has them all, with their n and intervals).
CARD_SUMMARY = (
    "rater", "dimension", "source", "trusted", "n", "coverage", "alpha_vs_humans", "auc", "swap_shift",
    "retest_alpha", "self_preference", "framing_shift", "injection_shift", "alpha_vs_panel", "failed", "unmeasured",
)  # fmt: skip


def tables_to_json(tables: dict[str, pd.DataFrame]) -> str:
    """The tables as one JSON object: table name → list of row objects (``NaN`` → ``null``)."""
    payload = {}
    for name, df in tables.items():
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records") if len(df) else []
        payload[name] = jsonable(records)
    return json.dumps(payload, indent=2, ensure_ascii=False)


def card_summary(card: pd.DataFrame, columns: tuple[str, ...] = CARD_SUMMARY) -> pd.DataFrame:
    """The judge card's ``columns`` (those it has) for reading, its lists of failed and unmeasured checks joined."""
    shown = card[[c for c in columns if c in card.columns]].copy()
    for column in ("failed", "unmeasured"):
        if column in shown.columns:
            shown[column] = shown[column].map(lambda v: "; ".join(v) if isinstance(v, list | tuple) else v)
    return shown


def format_value(value: Any) -> str:
    """A table cell as text: floats to 4 significant digits (non-finite as empty), arrays as ``[a, b]``."""
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, np.ndarray):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if value is None or value is pd.NA:
        return ""
    return str(value)


def render_tables(tables: dict[str, pd.DataFrame], console, max_rows: int = 40) -> None:
    """Print the tables with rich (long tables are cut at ``max_rows`` with a line saying how many more).

    The judge card comes first under its own rule; then the study's headline tables under a rule naming the
    study, each with its one-line meaning (the ``study`` table itself is printed as that one line); then the rest.
    """
    info = study_row(tables)
    card = tables.get("judge_card")
    if card is not None:
        console.rule("Judge card")
        _print_table("judge_card", card_summary(card), console, max_rows)
        console.print("  (every column of the card: tribunal analyze RUN --json FILE)")
    has_headline = info is not None and info.get("study") is not None
    if has_headline:
        console.rule(f"{info['title']}: headline figures")
        console.print(f"Study: {info['study']} ({info['reason']}). {info.get('coverage') or ''}".strip())
    elif info is not None:
        console.print(f"Study: none recognised ({info['reason']}).")
    started_rest = False
    for name, df in tables.items():
        if name == "judge_card" or (name == "study" and info is not None):
            continue  # printed above (the JSON keeps the tables)
        if has_headline and not started_rest and not is_headline_table(name):
            console.rule("All tables")
            started_rest = True
        _print_table(name, df, console, max_rows)


def _print_table(name: str, df: pd.DataFrame, console, max_rows: int) -> None:
    from rich.table import Table

    caption = HEADLINE_DESCRIPTIONS.get(name)
    shown = df.head(max_rows)
    width = getattr(console, "width", 120) or 120
    if len(df.columns) * _MIN_COLUMN > width and len(shown):
        # too wide to read column-wise: one column per row of the table, in blocks that fit (like psql's \x)
        per_block = max(1, (width - 24) // 14)
        for start in range(0, len(shown), per_block):
            block = shown.iloc[start : start + per_block]
            title = name if start == 0 else f"{name} (rows {start + 1}–{start + len(block)})"
            last = start + per_block >= len(shown)
            table = Table(title=title, title_justify="left", caption=caption if last else None,
                          caption_justify="left")  # fmt: skip
            table.add_column("column", overflow="fold", style="bold")
            for index in range(len(block)):
                table.add_column(f"#{start + index + 1}", overflow="fold")
            for col in df.columns:
                table.add_row(str(col), *(format_value(v) for v in block[col].tolist()))
            console.print(table)
    else:
        table = Table(title=name, title_justify="left", show_lines=False, caption=caption, caption_justify="left")
        for col in df.columns:
            table.add_column(str(col), overflow="fold")
        for row in shown.itertuples(index=False):
            table.add_row(*(format_value(v) for v in row))
        console.print(table)
    if len(df) > max_rows:
        console.print(f"  … {len(df) - max_rows} more rows (use --json for all)")
