"""``tribunal audit``: checks of the raters themselves.

``tribunal audit injection CONFIG --rater NAME`` rates the adversarial set (:mod:`raters.injection`) with one LLM
judge of CONFIG's panel, each text with and without its prompt injection, and prints how far the injections moved
the judge's scores. Use it with the judge you will run (a vLLM server, an API model) before trusting its scores on
text that may talk back.

Exit codes: 0 done, 1 the judge could not be reached for any text, 2 bad input (config, rater name).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import click
from rich.table import Table

from graphs.cli.console import console, fail


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.group()
def audit() -> None:
    """Audit the raters: how far adversarial texts move an LLM judge."""


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
