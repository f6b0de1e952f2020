"""The self-contained HTML report of a run: the judge card and the study's headline first, then the transcript
browser, figures, tables and examples.

:func:`write_report` writes ``<run_dir>/report.html``, one file that opens offline: the judge card (which judges
the findings use, and why the others are left out), the run's study and its headline figure and tables
(:mod:`analysis.studies`), the transcript browser (:mod:`analysis.report_browser`: a bounded sample of the
transcripts, searchable and filterable, the generations the raters disagree on most, a score figure, CSV export,
state in the URL fragment), the standard figures (:mod:`analysis.figures`, embedded as base64 PNG, each with the
coverage it rests on), every table of :func:`analysis.tables.analyze_run`, and the text of a few example
generations. All text that came from models, raters or configuration is escaped (``html.escape``, or
``DataFrame.to_html(escape=True)``) or embedded as escaped JSON that the page's one script puts into the DOM as
text: model output such as ``<script>`` is shown, never executed, and the page's Content-Security-Policy runs no
other script.
"""

from __future__ import annotations

import html
import importlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.deprecation import REMOVAL
from analysis.figures import standard_figures
from analysis.io import load_run, store_path
from analysis.render import card_summary, format_value
from analysis.report_browser import (
    DEFAULT_MAX_TRANSCRIPTS,
    app_script_html,
    browser_payload,
    browser_section,
    content_security_policy,
    page_css,
)
from analysis.studies import HEADLINE_DESCRIPTIONS, STUDY_TABLES, headline_figure
from analysis.tables import analyze_tables as tables_of_run  # not the deprecated `analysis.report.analyze_tables`
from analysis.tables import is_headline_table, study_row
from graphs.tables import connect_readonly

__all__ = ["REPORT_FILENAME", "write_report"]

REPORT_FILENAME = "report.html"


def write_report(
    run_dir: str | Path,
    out: Path | None = None,
    max_rows: int = 200,
    max_transcripts: int = DEFAULT_MAX_TRANSCRIPTS,
) -> Path:
    """Write a self-contained HTML report of a run; returns its path (default ``<run_dir>/report.html``).

    Args:
        run_dir: the run directory (or its transcript store).
        out: where to write the HTML.
        max_rows: rows shown per table (the JSON of ``tribunal analyze --json`` keeps them all).
        max_transcripts: transcripts embedded in the browser, at most (a sample beyond; its note says how it was
            drawn); ``0`` leaves the browser, and with it every script, out of the page.

    The report opens with the judge card and the run's study with its headline figures (:mod:`analysis.studies`),
    then the transcript browser, the generic figures and tables. Tables are escaped by ``DataFrame.to_html``;
    example generations and every note go through ``html.escape``; the browser's data are escaped JSON put into
    the page as text (:mod:`analysis.report_browser`), so model output such as ``<script>`` is shown, never
    executed.
    """
    run = load_run(run_dir)  # once: the tables and the browser read the same load
    tables = tables_of_run(run)
    run_path = Path(run_dir)
    out = Path(out) if out is not None else (run_path if run_path.is_dir() else run_path.parent) / REPORT_FILENAME
    payload = browser_payload(run_dir, max_transcripts, run=run) if max_transcripts > 0 else None
    policy, script = app_script_html() if payload is not None else (content_security_policy(), "")
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{policy}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>tribunal report: {esc(str(run_path))}</title><style>{page_css()}</style></head><body>",
        f"<h1>tribunal report</h1><p>Run: <code>{esc(str(run_path.resolve()))}</code></p>",
        "<nav id='tb-nav'></nav>" if payload is not None else "",
        "<div class='tb-report-part'>",
        *_judge_card_html(tables),
        *_headline_html(tables, max_rows),
        _AUDIT_LINKS if payload is not None else "",
        "</div>",
    ]
    if payload is not None:
        parts.extend(browser_section(payload))
    parts.append("<div class='tb-report-part'><h2>Figures</h2>")
    for figure in standard_figures(tables):
        parts.extend(_figure_html(*figure))
    parts.append("<h2>Tables</h2>")
    for name, df in tables.items():
        if is_headline_table(name):
            continue  # shown in the headline section
        parts.extend(_table_html(name, df, max_rows))
    examples = tables.get("examples")
    texts = _example_texts(run_dir, examples)
    if texts:
        parts.append("<h2>Example generations</h2>")
        for row in examples.itertuples(index=False):
            head = f"{row.model} · {row.persona_id} · {row.target_id} · {row.template_id} · {row.outcome}"
            if hasattr(row, "toxicity"):
                head += f" · toxicity {row.toxicity:.3f}"
            text = texts.get(int(row.generation_id))
            parts.append(f"<p><b>{esc(head)}</b></p><pre>{esc(str(text))}</pre>")
    parts.append(f"</div>{script}</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


#: Where the report's findings point at their transcripts (links into the browser's URL-fragment state).
_AUDIT_LINKS = (
    "<p class='tb-links'>Audit the findings: <a href='#view=browser'>browse the transcripts behind them</a>, "
    "<a href='#view=browser&amp;sort=-score'>the highest-scored first</a>, or "
    "<a href='#view=disagreement'>read where the judges disagree</a>.</p>"
)


def _example_texts(run_dir: str | Path, examples: pd.DataFrame | None) -> dict[int, str | None]:
    """The text of the example generations, read by rowid from the read-only store."""
    if examples is None or not len(examples):
        return {}
    ids = [int(i) for i in examples["generation_id"]]
    conn = connect_readonly(store_path(run_dir))
    try:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT rowid, text FROM generations WHERE rowid IN ({marks})", ids).fetchall()
    finally:
        conn.close()
    return dict(rows)


def _figure_html(title: str, png: str | None, caption: str) -> list[str]:
    esc = html.escape
    if png is None:
        return [f"<h3>{esc(title)}</h3>", f"<p class='absent'>{esc(caption)}</p>"]
    return [
        f"<h3>{esc(title)}</h3>",
        f"<img alt='{esc(title)}' src='data:image/png;base64,{png}'>",
        f"<p class='coverage'>{esc(caption)}</p>",
    ]


def _table_html(name: str, df: pd.DataFrame, max_rows: int, description: str | None = None) -> list[str]:
    parts = [f"<h3>{html.escape(name)}</h3>"]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    shown = df.head(max_rows).map(lambda v: format_value(v) if isinstance(v, float | np.ndarray) or v is pd.NA else v)
    parts.append(shown.to_html(index=False, escape=True, na_rep=""))
    if len(df) > max_rows:
        parts.append(f"<p>… {len(df) - max_rows} more rows (see <code>tribunal analyze --json</code>).</p>")
    return parts


#: The judge card's columns shown in the report, in order (the JSON and ``tribunal analyze --json`` keep them all).
CARD_SHOWN = (
    "rater", "dimension", "source", "trusted", "n", "coverage", "n_labelled", "alpha_vs_humans", "human_alpha",
    "auc", "swap_n", "swap_shift", "retest_n", "retest_alpha", "self_preference_n", "self_preference", "framing_n",
    "framing_shift", "framing_p", "injection_shift", "alpha_vs_panel", "failed", "unmeasured",
)  # fmt: skip


def _judge_card_html(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The judge card, before any headline: each judge, its figures with their n, trusted or not and why."""
    card = tables.get("judge_card")
    if card is None:
        return []
    esc = html.escape
    parts = ["<section id='judge-card'>", "<h2>Judge card</h2>"]
    if not len(card):
        parts.append("<p class='absent'>No judge has rated anything in this run, and no audit is stored.</p>")
        return [*parts, "</section>"]
    parts.extend(_table_html("judge_card", card_summary(card, CARD_SHOWN), len(card)))
    used = tables.get("judges_used")
    if used is not None and len(used):
        left_out = used.loc[~used["used"].astype(bool), "rater"].astype(str).tolist()
        kept = used.loc[used["used"].astype(bool), "rater"].astype(str).tolist()
        parts.append(f"<p>The findings below use: {esc(', '.join(kept) or 'no judge')}.</p>")
        if left_out:
            parts.append(f"<p class='absent'>Left out as untrusted: {esc(', '.join(left_out))}.</p>")
    notes = tables.get("notes")
    if notes is not None and len(notes):
        for reason in notes.loc[notes["table"] == "judge_card", "reason"].astype(str):
            parts.append(f"<p class='coverage'>{esc(reason)}.</p>")
    return [*parts, "</section>"]


def _headline_html(tables: dict[str, pd.DataFrame], max_rows: int) -> list[str]:
    """The "<Study>: headline figures" section: how the study was recognised, its figure, its tables or why not."""
    esc = html.escape
    info = study_row(tables)
    if info is None:
        return []
    study = info.get("study")
    if study is None:
        return [f"<p class='coverage'>Study: none recognised ({esc(str(info['reason']))}); generic report.</p>"]
    notes = tables.get("headline_notes", pd.DataFrame(columns=["table", "reason"]))
    parts = [
        "<section id='headline'>",
        f"<h2>{esc(str(info['title']))}: headline figures</h2>",
        f"<p>Study <code>{esc(str(study))}</code>: {esc(str(info['reason']))}.</p>",
    ]
    figure = headline_figure(tables)
    if figure is not None and figure[1] is not None:
        parts.extend(_figure_html(*figure))  # its caption is the coverage line
    else:
        if info.get("coverage"):
            parts.append(f"<p class='coverage'>{esc(str(info['coverage']))}</p>")
        if figure is not None:
            parts.extend(_figure_html(*figure))
    for name in STUDY_TABLES[study]:
        reasons = notes.loc[notes["table"] == name, "reason"].astype(str).tolist()
        if name in tables:
            parts.extend(_table_html(name, tables[name], max_rows, HEADLINE_DESCRIPTIONS.get(name)))
            parts.extend(f"<p class='absent'>Note: {esc(r)}.</p>" for r in reasons)
        elif reasons:
            parts.append(f"<h3>{esc(name)}</h3>")
            parts.extend(f"<p class='absent'>Absent: {esc(r)}.</p>" for r in reasons)
    parts.append("</section>")
    return parts


#: Names this module held before the report was split by concept (0.1.0): where they live now.
_MOVED = {"analyze_tables": "analysis.tables", "render_tables": "analysis.render", "tables_to_json": "analysis.render"}


def __getattr__(name: str):
    """The names of :data:`_MOVED` stay importable from here, with a ``DeprecationWarning``, until 0.2.0."""
    if name in _MOVED:
        warnings.warn(
            f"analysis.report.{name} moved to {_MOVED[name]}.{name} (also importable from analysis); the old "
            f"path is removed in {REMOVAL}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
