"""``tribunal analyze``, ``tribunal report`` and ``tribunal export``: what a run directory's transcripts say."""

from __future__ import annotations

from pathlib import Path

import click

from graphs.cli.console import console, errors, fail


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the tables as JSON here.")
def analyze(run_dir: str, json_out: str | None) -> None:
    """Print the headline tables of a run (agreement, refusal, toxicity, mitigation)."""
    from analysis import analyze_run, render_tables, tables_to_json

    try:
        tables = analyze_run(run_dir)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    render_tables(tables, console)
    if json_out:
        Path(json_out).write_text(tables_to_json(tables), encoding="utf-8")
        errors.print(f"tables written to {json_out}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the HTML (default RUN/report.html).")
@click.option(
    "--max-transcripts",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Transcripts embedded in the page's browser, at most; above it a sample (the page says how it was "
    "drawn; the tables cover every generation). 0 leaves the browser out.",
)
def report(run_dir: str, out: str | None, max_transcripts: int) -> None:
    """Write a self-contained report.html for a run.

    One file that opens offline: the judge card, the headline, a transcript browser (filter, search, open a
    transcript with its ratings and mitigation rounds, the disagreement view, CSV export; its state is in the
    URL fragment, e.g. report.html#view=browser&q=word&open=17), figures and tables.
    """
    from analysis import write_report

    try:
        path = write_report(run_dir, Path(out) if out else None, max_transcripts=max_transcripts)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    console.print(f"report written to {path}")


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["parquet", "jsonl"]), default="parquet", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the files (default RUN/export).")
@click.option("--table", "tables", multiple=True, help="Only these tables (repeatable).")
def export(run_dir: str, fmt: str, out: str | None, tables: tuple[str, ...]) -> None:
    """Write a run's tables (cells, generations, ratings, critiques, mitigation, runs) as Parquet or JSON Lines."""
    from graphs.export import EXPORTED_TABLES, ExportError, export_run

    try:
        paths = export_run(run_dir, fmt, out, tables or EXPORTED_TABLES)
    except ExportError as exc:
        fail(str(exc))
    for path in paths:
        console.print(str(path), highlight=False)
