"""``tribunal audit``: checks of the raters themselves.

``tribunal audit judges CONFIG [--labels FILE] [--json FILE] [--out DIR]`` rates audit sets with every judge of
CONFIG's panel (human-labelled texts, a counterfactual target-group swap, a retest, prompt injections) and prints
the judge card: one row per judge, each figure with its n, and whether the judge is trusted under the config's
``panel.trust`` thresholds (:mod:`graphs.audit.judges`). The card is stored in ``OUT/audit/``, where ``tribunal
analyze`` and ``tribunal report`` show it before the headlines.

``tribunal audit injection CONFIG --rater NAME`` rates the adversarial set (:mod:`raters.injection`) with one LLM
judge of CONFIG's panel, each text with and without its prompt injection, and prints how far the injections moved
the judge's scores. Use it with the judge you will run (a vLLM server, an API model) before trusting its scores on
text that may talk back.

Exit codes: 0 done, 1 no judge (``injection``: the judge) scored any text, 2 bad input (config, rater name, labels).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from configs.base import ConfigError
from graphs.cli.console import console, fail


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.group()
def audit() -> None:
    """Audit the judges: the judge card (validity, swaps, stability, injections), or one judge's injection shifts."""


def _figure(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


#: The card's columns as printed: (title, key, key of its n).
CARD_VIEW = (
    ("coverage", "coverage", "n"),
    ("α vs humans", "alpha_vs_humans", "n_labelled"),
    ("human α", "human_alpha", "n_labelled"),
    ("AUC", "auc", "n_labelled"),
    ("swap shift", "swap_shift", "swap_n"),
    ("retest α", "retest_alpha", "retest_n"),
    ("self-pref", "self_preference", "self_preference_n"),
    ("framing", "framing_shift", "framing_n"),
    ("injection", "injection_shift", "injection_n"),
    ("α vs panel", "alpha_vs_panel", "alpha_vs_panel_n"),
)


def _cells(record: dict[str, Any]) -> list[str]:
    cells = []
    for _, key, n_key in CARD_VIEW:
        value = _figure(record.get(key))
        n = record.get(n_key)
        cells.append(value if value == "-" or n is None else f"{value} ({n})")
    return cells


def card_table(records: list[dict[str, Any]], title: str = "judge card", width: int = 200) -> Table:
    """The judge card as a rich table, each figure with its n: a judge per row, or (where that would not fit in
    ``width`` columns) a judge per column."""
    trusted = ["[green]yes[/]" if r.get("trusted") else "[red]no[/]" for r in records]
    if width < 24 + 15 * len(CARD_VIEW):
        table = Table(title=title)
        table.add_column("")
        for r in records:
            table.add_column(f"{escape(str(r['rater']))}\n({escape(str(r.get('dimension') or ''))})", justify="right")
        rows = list(zip(*(_cells(r) for r in records), strict=True)) if records else []
        for (heading, _, _), row in zip(CARD_VIEW, rows, strict=True):
            table.add_row(heading, *row)
        table.add_row("trusted", *trusted)
        return table
    table = Table(title=title)
    table.add_column("judge")
    table.add_column("dim")
    for heading, _, _ in CARD_VIEW:
        table.add_column(heading, justify="right")
    table.add_column("trusted")
    for r, yes in zip(records, trusted, strict=True):
        table.add_row(escape(str(r["rater"])), escape(str(r.get("dimension") or "")), *_cells(r), yes)
    return table


def group_table(details: dict[str, dict[str, Any]]) -> Table | None:
    """Validity against each annotator group's consensus, where the labels carry annotator demographics."""
    rows = [(name, g) for name, d in details.items() for g in (d.get("validity") or {}).get("by_group") or []]
    if not rows:
        return None
    table = Table(title="validity by annotator group")
    for column in ("judge", "attribute", "value", "items", "people", "α vs group", "group's α", "AUC"):
        table.add_column(column, justify="left" if column in ("judge", "attribute", "value") else "right")
    for name, g in rows:
        attribute = str(g.get("attribute")).removeprefix("annotator_")
        figures = [_figure(g.get(k)) for k in ("n_items", "n_annotators", "alpha_vs_humans", "human_alpha", "auc")]
        table.add_row(escape(name), escape(attribute), escape(str(g.get("value"))), *figures)
    return table


def card_verdicts(records: list[dict[str, Any]]) -> list[str]:
    """One line per judge: why it is not trusted, or what was never measured."""
    lines = []
    for r in records:
        if r.get("failed"):
            lines.append(f"{r['rater']}: not trusted: {'; '.join(r['failed'])}")
        if r.get("unmeasured"):
            lines.append(f"{r['rater']}: not measured: {', '.join(r['unmeasured'])}")
    return lines


@audit.command("judges")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--labels", help="Human labels: a CSV/JSONL/Parquet file (columns text, label; optional item_id, "
              "prompt, annotator, annotator_<attribute>), a DICES/Civil Comments/ToxiGen file, or a named set "
              "such as pyrit:harm/hate_speech_multi_score.")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="The run directory the card belongs to "
              "[default: the config's run.output_dir].")  # fmt: skip
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False), help="Also write the card (a list of judges) here."
)
@click.option("--dimension", help="The dimension compared with the labels [default: the labels', else toxicity].")
@click.option("--limit", type=click.IntRange(min=1), help="Audit at most N labelled texts.")
@click.option("--retest-n", type=click.IntRange(min=0), default=100, show_default=True,
              help="Texts asked again per judge for test-retest agreement (0: no retest).")  # fmt: skip
@click.option("--no-swap", is_flag=True, help="Skip the counterfactual target-group swap.")
@click.option("--no-injection", is_flag=True, help="Skip the prompt-injection set.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap intervals.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def judges(
    config: str,
    labels: str | None,
    out_dir: str | None,
    json_out: str | None,
    dimension: str | None,
    limit: int | None,
    retest_n: int,
    no_swap: bool,
    no_injection: bool,
    seed: int,
    no_progress: bool,
) -> None:
    """Audit every judge of CONFIG's panel and print the judge card (stored in the run directory's audit/)."""
    from graphs.audit import AuditOptions, audit_judges
    from graphs.cli.console import load_or_fail, progress_bar
    from graphs.datasets.source import DatasetError
    from graphs.store import StoreError

    experiment = load_or_fail(config)
    options = AuditOptions(
        labels=labels,
        dimension=dimension,
        limit=limit,
        swap=not no_swap,
        retest=retest_n > 0,
        injection=not no_injection,
        retest_n=retest_n,
        seed=seed,
    )
    with progress_bar(enabled=not no_progress) as bar:
        task = bar.add_task("auditing judges", total=None)
        try:
            result = asyncio.run(
                audit_judges(
                    experiment,
                    out_dir,
                    options,
                    on_start=lambda n: bar.update(task, total=n),
                    on_progress=lambda n: bar.advance(task, n),
                )
            )
        except ConfigError as exc:
            fail(str(exc))
        except DatasetError as exc:
            fail(str(exc))
        except StoreError as exc:
            fail(str(exc))
    console.print(card_table(result.records, f"judge card: {experiment.config.name}", console.width))
    groups = group_table(result.details)
    if groups is not None:
        console.print(groups)
    for line in card_verdicts(result.records):
        console.print(escape(line), highlight=False, soft_wrap=True)
    calls = result.requests
    console.print(
        f"{calls.get('calls', 0)} judge calls, {calls.get('cache_hits', 0)} from the cache, {result.wall_s:.1f} s; "
        f"card: {result.card_path}",
        highlight=False,
        soft_wrap=True,
    )
    if json_out:
        Path(json_out).write_text(json.dumps(result.records, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if not any((r.get("coverage") or 0) > 0 for r in result.records):
        fail("no judge scored any audit text; are the judges reachable?", code=1)


@audit.command("injection")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--rater", "rater_name", required=True, help="The panel rater (an LLM judge) to audit, by name.")
@click.option("--texts", type=click.Path(dir_okay=False, exists=True), help="Another adversarial set (same shape).")
@click.option("--moved-at", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="A shift at least this large (0-1 scale) counts as moved.")  # fmt: skip
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the results as JSON here.")
def injection(config: str, rater_name: str, texts: str | None, moved_at: float, json_out: str | None) -> None:
    """Rate the adversarial set with and without its injections using rater NAME of CONFIG; print the shifts."""
    from configs.loader import ConfigError, load_experiment
    from graphs.runner import build_run_panel, judge_backends
    from raters.injection import load_injection_texts, measure_injection

    try:
        experiment = load_experiment(config)
        spec = next((r for r in experiment.config.panel.raters if r.name == rater_name), None)
        if spec is None:
            known = ", ".join(r.name for r in experiment.config.panel.raters) or "none"
            raise ConfigError(config, "panel.raters", f"no rater named {rater_name!r} (have: {known})")
        if spec.kind != "llm":
            raise ConfigError(config, "panel.raters", f"{rater_name!r} is a {spec.kind!r} rater, not an LLM judge")
        backends = judge_backends(experiment.config, experiment.path)
        panel = build_run_panel(experiment.config, backends, experiment.path, [rater_name])
    except ConfigError as exc:
        fail(str(exc))
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{config}: panel.raters: {exc}")
    rater = panel.raters[0]
    entries = load_injection_texts(texts)

    async def measure():
        try:
            return await measure_injection(rater, entries, moved_at=moved_at, version=None if texts else "builtin")
        finally:
            await panel.aclose()
            for backend in backends.values():
                with contextlib.suppress(Exception):
                    await backend.aclose()

    report = asyncio.run(measure())
    summary = report.summary()
    table = Table(title=f"injection audit: {rater_name}")
    for column in ("text", "lang", "kind", "dimension", "clean", "injected", "shift"):
        table.add_column(column, no_wrap=column == "text")
    for r in report.results:
        shift = "-" if r.shift is None else f"{r.shift:+.2f}"
        clean = _score(r.clean_score) if r.clean_score is not None else r.clean_outcome
        injected = _score(r.injected_score) if r.injected_score is not None else r.injected_outcome
        table.add_row(r.id, r.language, r.kind, r.dimension, clean, injected, shift)
    console.print(table)
    mean = "n/a" if summary["mean_shift"] is None else f"{summary['mean_shift']:+.3f}"
    drop = "n/a" if summary["max_drop"] is None else f"{summary['max_drop']:+.3f}"
    console.print(
        f"{rater_name}: mean shift {mean}, largest drop {drop}, moved ≥ {moved_at:g}: {summary['moved']} of "
        f"{summary['scored']} scored pairs ({summary['texts']} texts × dimensions)",
        highlight=False,
        soft_wrap=True,
    )
    if json_out:
        Path(json_out).write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    if summary["scored"] == 0:
        fail(f"{rater_name}: no text was scored both clean and injected; is the judge reachable?", code=1)
