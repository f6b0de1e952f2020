"""``tribunal validate``, ``tribunal run`` and ``tribunal rate``: check a config, run it, re-judge a run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from configs.loader import ConfigError
from graphs.cli.console import console, errors, fail, load_or_fail, progress_bar


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
def validate(config: str) -> None:
    """Check CONFIG and its catalogs without running anything."""
    from graphs.grid import describe_grid

    experiment = load_or_fail(config)
    console.print(f"[green]ok[/] {config}: {describe_grid(experiment)}", highlight=False, soft_wrap=True)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), help="Run directory (default: run.output_dir).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cells of the grid.")
@click.option("--progress/--no-progress", default=True, help="Show a live progress bar.")
@click.option(
    "--new-run-dir",
    is_flag=True,
    help="When another config made the run directory, write into a fresh sibling (RUN-2, RUN-3, …) instead.",
)
@click.option(
    "--allow-config-change",
    "allow",
    multiple=True,
    metavar="FIELD",
    help="Resume although FIELD (e.g. mitigation.max_rounds, panel.raters) differs from the run directory's "
    "config (repeat for several).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="local: one process, SQLite store; ray: the same graph on Ray actors, the run written as Parquet "
    "(default: run.engine).",
)
@click.option("--address", help="The Ray cluster to join (auto, or HOST:PORT; default: run.address or a local Ray).")
@click.option(
    "--actors", type=click.IntRange(min=1), help="Ray engine: graph runners in the pool (default: run.concurrency)."
)
def run(
    config: str,
    out: str | None,
    limit: int | None,
    progress: bool,
    new_run_dir: bool,
    allow: tuple[str, ...],
    engine: str | None,
    address: str | None,
    actors: int | None,
) -> None:
    """Generate every cell of CONFIG into a resumable run directory (a study's stage I first, when it has one).

    The run directory holds one experiment: a resume under a config whose results would differ is refused with
    the fields that changed. One process writes a run directory at a time. With --engine ray the run directory
    (a local path or a URI such as s3://bucket/run) holds the tables as Parquet; every other command reads it.
    """
    from graphs.cli.stage1 import Stage1Bar, print_stage1
    from graphs.datasets import DatasetError
    from graphs.runner import build_backends, build_run_panel, run_experiment
    from graphs.store import RunDirectoryError, StoreError

    experiment = load_or_fail(config)
    try:
        backends = build_backends(experiment)
        panel = build_run_panel(experiment.config, backends, config)
    except ConfigError as exc:
        fail(str(exc))
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{config}: models: {exc}")

    bar = progress_bar(TextColumn("{task.fields[rate]}"), TextColumn("eta"), TimeRemainingColumn(), enabled=progress)
    shown = _CellProgress(bar)
    stage1_bar = Stage1Bar(progress_bar(enabled=progress))
    try:
        with bar:
            if (engine or experiment.config.run.engine) == "ray":
                from graphs.engines.ray_engine import run_on_ray

                if new_run_dir:
                    fail("--new-run-dir: not available with --engine ray; name a new directory with --out")
                summary = run_on_ray(
                    experiment, out, limit=limit, address=address, actors=actors, on_start=shown.start,
                    on_progress=shown.advance, allow_config_change=allow,
                )  # fmt: skip
            else:
                from graphs.engines.parquet_run import is_parquet_run

                target = out or experiment.config.run.output_dir
                if is_parquet_run(target):
                    fail(f"{target}: a run directory of the ray engine (Parquet); resume it with --engine ray")
                summary = asyncio.run(
                    run_experiment(
                        experiment,
                        Path(out) if out else None,
                        limit=limit,
                        backends=backends,
                        panel=panel,
                        on_start=shown.start,
                        on_progress=shown.advance,
                        stage1_progress=stage1_bar,
                        on_stage1=lambda result, reused: print_stage1(result, reused, stage1_bar),
                        new_run_dir=new_run_dir,
                        allow_config_change=allow,
                        on_run_dir=_moved,
                    )
                )
    except KeyboardInterrupt:
        errors.print("interrupted: finished chunks are saved; run the same command again to resume")
        sys.exit(130)
    except asyncio.CancelledError:
        errors.print("terminated: finished chunks are saved; run the same command again to resume")
        sys.exit(143)
    except RunDirectoryError as exc:
        fail(str(exc))
    except StoreError as exc:
        fail(str(exc), code=1)
    except ConfigError as exc:
        fail(str(exc))
    except DatasetError as exc:
        fail(f"{config}: grid.prompts: {exc}")
    finally:
        stage1_bar.stop()

    console.print(_run_table(summary))
    if summary.config_changes:
        errors.print(f"config changes allowed: {', '.join(summary.config_changes)}", highlight=False)
    failures = summary.cells_failed
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()) if k not in ("ok", "content_filter"))
    if summary.status == "failed":
        share = experiment.config.run.max_failed_share
        over = "" if failures == summary.cells_generated else f", more than run.max_failed_share ({share:g})"
        fail(
            f"{failures} of {summary.cells_generated} cells failed ({kinds}){over}; they are stored with their "
            "failure type and retried on the next run",
            code=1,
        )
    if failures:
        errors.print(f"{failures} cell(s) failed; they are stored with their failure type and retried on the next run")


def _moved(run_dir: Path, changed: list[str]) -> None:
    shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    errors.print(f"writing into {run_dir}: the run directory was made by another config (changed: {shown})")


class _CellProgress:
    """The run's bar: cells done of cells to do, with the running rate, tokens, ratings, rewrites and cost."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = bar.add_task("cells", total=None, rate="")

    def start(self, todo: int, total: int) -> None:
        self.bar.update(self.task, total=todo)
        if todo < total:
            errors.print(f"resuming: {total - todo} of {total} cells already done", highlight=False)

    def advance(self, n: int, summary: Any = None) -> None:
        self.bar.advance(self.task, n)
        speed = self.bar.tasks[0].speed
        parts = [f"{speed:.1f} cells/s"] if speed else []
        if summary is not None:
            parts.append(f"{summary.prompt_tokens + summary.completion_tokens} tok")
            if summary.rating_count:
                parts.append(f"{summary.rating_count} ratings")
            if summary.rewrites:
                parts.append(f"{summary.rewrites} rewrites")
            if summary.cost_usd is not None:
                parts.append(f"${summary.cost_usd:.4f}")
            failed = sum(v for k, v in summary.outcomes.items() if k not in ("ok", "content_filter"))
            if failed:
                parts.append(f"[red]{failed} failed[/]")
        self.bar.update(self.task, rate="  ".join(parts))


def _run_table(summary: Any) -> Table:
    table = Table(title=f"run {summary.run_dir}", show_header=False)
    if summary.moved_from:
        table.add_row("run directory asked for", f"{summary.moved_from} (made by another config)")
    table.add_row("cells in grid", str(summary.cells_total))
    table.add_row("already done", str(summary.cells_already_done))
    table.add_row("generated now", str(summary.cells_generated))
    for outcome, count in sorted(summary.outcomes.items()):
        table.add_row(f"  outcome {outcome}", str(count))
    table.add_row(
        "tokens of calls made now (prompt / completion)", f"{summary.prompt_tokens} / {summary.completion_tokens}"
    )
    for outcome, count in sorted(summary.ratings.items()):
        table.add_row(f"  ratings {outcome}", str(count))
    if summary.stop_reasons:
        table.add_row("mitigation: critiques / rewrites", f"{summary.critiques} / {summary.rewrites}")
        if summary.mitigation_retried:
            table.add_row("mitigation retried (failed critique or rewrite)", str(summary.mitigation_retried))
        table.add_row("mitigation stop reasons", ", ".join(f"{k} {v}" for k, v in sorted(summary.stop_reasons.items())))
    if summary.cache_hits:
        table.add_row("calls served from cache", str(summary.cache_hits))
    if summary.cost_usd is not None:
        table.add_row("estimated cost (calls made now)", f"${summary.cost_usd:.4f}")
    table.add_row("wall time", f"{summary.wall_s:.1f} s ({summary.cells_per_s:.2f} cells/s)")
    return table


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "--raters",
    "rater_names",
    multiple=True,
    help="Only these raters (repeat, or separate with commas): panel names, or a model-free kind such as "
    "profanity-check.",
)
@click.option("--config", type=click.Path(dir_okay=False), help="Take the panel from this config (default: the run's).")
@click.option("--progress/--no-progress", default=True, help="Show a live progress bar.")
def rate(run_dir: str, rater_names: tuple[str, ...], config: str | None, progress: bool) -> None:
    """Judge the stored generations of RUN_DIR with a panel, without regenerating; stored ratings are skipped."""
    from configs.loader import read_yaml, validate_as
    from configs.schema import ExperimentConfig
    from graphs.runner import build_run_panel, judge_backends, rate_run, run_config
    from graphs.store import RunDirectoryError, StoreError

    try:
        if config:
            cfg, cfg_path = validate_as(ExperimentConfig, read_yaml(Path(config)), Path(config)), Path(config)
        else:
            cfg, cfg_path = run_config(Path(run_dir))
        only = [n.strip() for names in rater_names for n in names.split(",") if n.strip()] or None
        backends = judge_backends(cfg, cfg_path)
        panel = build_run_panel(cfg, backends, cfg_path, only)
    except ConfigError as exc:
        fail(str(exc))
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{config or run_dir}: models: {exc}")
    if not panel:
        fail(f"{cfg_path}: panel.raters: no raters to judge with; add a panel or name raters with --raters")

    bar = progress_bar(enabled=progress)
    task = bar.add_task("generations", total=None)
    try:
        with bar:
            summary = asyncio.run(
                rate_run(
                    Path(run_dir),
                    cfg,
                    cfg_path,
                    panel=panel,
                    backends=backends,
                    on_start=lambda n: bar.update(task, total=n),
                    on_progress=lambda n: bar.advance(task, n),
                )
            )
    except KeyboardInterrupt:
        errors.print("interrupted: judged chunks are saved; run the same command again to resume")
        sys.exit(130)
    except RunDirectoryError as exc:
        fail(str(exc))
    except StoreError as exc:
        fail(str(exc), code=1)
    except ConfigError as exc:
        fail(str(exc))

    table = Table(title=f"rate {summary.run_dir}", show_header=False)
    table.add_row("generations", str(summary.generations))
    for rater in summary.raters:
        table.add_row("rater", rater)
    table.add_row("ratings written", str(summary.ratings_written))
    table.add_row("already stored (skipped)", str(summary.ratings_skipped))
    for outcome, count in sorted(summary.outcomes.items()):
        table.add_row(f"  outcome {outcome}", str(count))
    table.add_row("wall time", f"{summary.wall_s:.1f} s")
    console.print(table)
