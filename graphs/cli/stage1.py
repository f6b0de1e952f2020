"""``tribunal bench``: Demo-SafetyBench commands. ``bench build CONFIG`` runs stage I (:mod:`graphs.stage1`).

Exit codes as for every tribunal command: 0 success, 1 a run-time failure, 2 bad input (config, prompt file),
130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click
from rich.progress import Progress
from rich.table import Table

from configs.loader import ConfigError
from graphs.cli.console import console, errors, fail, progress_bar


class Stage1Bar:
    """Stage I progress on a rich bar: one task whose description and size follow the current stage.

    The bar appears with the first stage, so that a config whose models cannot be built shows no bar, and a
    benchmark that is already built shows none either.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)
        self.started = False

    def stage(self, name: str, total: int | None) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        self.progress.reset(self.task, total=total, description=name)

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def stop(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False


def print_stage1(result: Any, reused: bool, bar: Stage1Bar | None = None) -> None:
    """What ``tribunal run`` prints about a study's stage I: the benchmark it reused, or the one it just built."""
    from graphs.stage1 import SUMMARY_FILE

    if bar is not None:
        bar.stop()
    if reused:
        errors.print(
            f"stage I: using the benchmark in {result.out_dir} (delete {SUMMARY_FILE} there to rebuild)",
            highlight=False,
        )
        return
    errors.print(f"stage I: built the benchmark in {result.out_dir}", highlight=False)
    _print_result(result)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Demo-SafetyBench: build a harm-domain-balanced prompt benchmark."""


@bench.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), help="Output folder (default: run.output_dir).")
@click.option("--progress/--no-progress", default=True, help="Show a live progress bar.")
def build(config: str, out: str | None, progress: bool) -> None:
    """Stage I: classify CONFIG's prompts into the 14 BeaverTails harm domains, expand the low-resource domains
    with generated prompts, drop near-duplicates, and write the benchmark with per-domain counts."""
    from graphs.stage1 import load_stage1_config, run_stage1

    try:
        cfg = load_stage1_config(config)
    except ConfigError as exc:
        fail(str(exc))
    result = _build(config, progress, lambda bar: run_stage1(cfg, out, config_path=config, progress=bar))
    _print_result(result)


def _build(config: str, progress: bool, build: Callable[[Stage1Bar], Awaitable[Any]]) -> Any:
    """Run ``build`` under a progress bar; a bad config or prompt source exits 2, an interruption 130."""
    from graphs.datasets import DatasetError

    shown = Stage1Bar(progress_bar(enabled=progress))
    try:
        try:
            return asyncio.run(build(shown))
        finally:
            shown.stop()
    except KeyboardInterrupt:
        errors.print("interrupted: completed model calls are cached; run the same command again to continue")
        sys.exit(130)
    except DatasetError as exc:
        fail(f"{config}: prompts: {exc}")
    except ConfigError as exc:
        fail(str(exc))


def _print_result(result: Any) -> None:
    summary = result.summary
    table = Table(title=f"Demo-SafetyBench stage I: {result.out_dir}")
    table.add_column("domain", overflow="fold")
    for column in ("low", "original", "generated", "dropped (dup.)", "final"):
        table.add_column(column, justify="right")
    for c in result.counts:
        low = "[yellow]yes[/]" if c.low_resource else ""
        table.add_row(c.domain, low, str(c.original), str(c.generated), str(c.dropped_duplicates), str(c.final))
    table.caption = "low: a low-resource domain (below expansion.min_count), expanded with generated prompts"
    console.print(table)
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    prompts = summary["prompts"]
    originals = summary["classification"]["originals"]
    generated = summary["classification"]["generated"]
    lines = [
        f"prompts: {prompts.get('used', 0)} distinct of {prompts.get('rows', 0)} rows "
        f"({prompts.get('exact_duplicates', 0)} exact repeats, {prompts.get('empty_skipped', 0)} empty)",
        f"classified: {originals['classified']} ({originals['unflagged']} in no domain); "
        f"threshold δ = {summary['threshold']}",
        f"near-duplicates dropped at Hamming ≤ {summary['max_hamming']}: {summary['dedup']['dropped']}",
        f"benchmark: {summary['benchmark']['prompts']} prompts "
        f"({summary['benchmark']['original']} original, {summary['benchmark']['generated']} generated)",
    ]
    if summary["expansion"]["requests"]:
        lines.insert(
            3,
            f"expansion: {summary['expansion']['rounds']} round(s), {summary['expansion']['requests']} request(s), "
            f"{summary['expansion']['parsed']} prompts parsed, {generated['accepted']} accepted, "
            f"{generated['off_target']} off target",
        )
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    failed = {k: originals["failed"].get(k, 0) + generated["failed"].get(k, 0) for k in
              {*originals["failed"], *generated["failed"]}}  # fmt: skip
    if failed:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(failed.items()))
        errors.print(
            f"{sum(failed.values())} prompt(s) could not be classified ({listed}); they are left out of the counts "
            "and listed in unclassified.jsonl",
            highlight=False,
            soft_wrap=True,
        )
    if summary.get("still_short"):
        errors.print(f"still below the target count: {', '.join(summary['still_short'])}", highlight=False)
