"""The ``tribunal`` command line: parse, call a library function, print.

Exit codes: 0 success, 1 a run-time failure, 2 bad input (config, catalog, arguments), 130 interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from configs.loader import ConfigError, load_experiment
from graphs.cli.audit import audit
from graphs.cli.stage1 import bench

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(code)


def _load(config: str) -> Any:
    try:
        return load_experiment(config)
    except ConfigError as exc:
        fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="tribunal")
def main(verbose: int) -> None:
    """tribunal: persona-driven generation, judge panels, mitigation and rater-agreement audits."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    # HTTP libraries log every header at debug level; a server echoing the API key must not put it in a log
    for name in ("httpcore", "httpx", "openai"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def validate(config: str) -> None:
    """Check CONFIG and its catalogs without running anything."""
    from graphs.grid import cells_per_question, count_cells

    experiment = _load(config)
    cfg = experiment.config
    personas = f"{len(experiment.personas)} persona(s){' + baseline' if cfg.grid.baseline else ''}"
    source = cfg.grid.prompts
    if source is None:
        shape = (
            f"{len(experiment.targets)} target group(s), {len(experiment.templates)} template(s), "
            f"{len(cfg.grid.languages)} language(s), {cfg.grid.repeats} repeat(s) → {count_cells(experiment)} cells"
        )
    elif source.kind == "moral_probes":
        shape = (
            f"{len(experiment.probes.probes)} moral probe(s) × {len(cfg.grid.languages)} language(s), "
            f"{cfg.grid.repeats} repeat(s) → {count_cells(experiment)} cells"
        )
    else:
        where = "the stage I benchmark" if source.kind == "stage1" else f"{source.kind} prompts"
        per_prompt = cells_per_question(experiment)
        shape = f"{where} (read at run time), {cfg.grid.repeats} repeat(s) → {per_prompt} cells per prompt"
    stage1 = " Stage I (Demo-SafetyBench) runs first." if cfg.stage1 is not None else ""
    console.print(
        f"[green]ok[/] {config}: {len(cfg.models)} model(s), {personas}, {shape}.{stage1}",
        highlight=False,
        soft_wrap=True,
    )


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), help="Run directory (default: run.output_dir).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cells of the grid.")
@click.option("--progress/--no-progress", default=True, help="Show a live progress bar.")
def run(config: str, out: str | None, limit: int | None, progress: bool) -> None:
    """Generate every cell of CONFIG into a resumable run directory."""
    from graphs.cli.stage1 import build_stage1
    from graphs.datasets import DatasetError
    from graphs.runner import build_backends, build_run_panel, run_experiment
    from graphs.store import StoreError

    experiment = _load(config)
    if experiment.config.stage1 is not None:
        build_stage1(experiment, config, Path(out or experiment.config.run.output_dir), progress)
    try:
        backends = build_backends(experiment)
    except ConfigError as exc:
        fail(str(exc))
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"{config}: models: {exc}")
    try:
        panel = build_run_panel(experiment.config, backends, config)
    except ConfigError as exc:
        fail(str(exc))

    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=errors,
        disable=not progress,
        transient=False,
    )
    task_id = bar.add_task("cells", total=None, rate="")

    def on_start(todo: int, total: int) -> None:
        bar.update(task_id, total=todo)
        if todo < total:
            errors.print(f"resuming: {total - todo} of {total} cells already done", highlight=False)

    def on_progress(n: int, summary: Any = None) -> None:
        bar.advance(task_id, n)
        task = bar.tasks[0]
        parts = [f"{task.speed:.1f} cells/s"] if task.speed else []
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
        bar.update(task_id, rate="  ".join(parts))

    try:
        with bar:
            summary = asyncio.run(
                run_experiment(
                    experiment,
                    Path(out) if out else None,
                    limit=limit,
                    backends=backends,
                    on_start=on_start,
                    on_progress=on_progress,
                    panel=panel,
                )
            )
    except KeyboardInterrupt:
        errors.print("interrupted: finished chunks are saved; run the same command again to resume")
        sys.exit(130)
    except asyncio.CancelledError:
        errors.print("terminated: finished chunks are saved; run the same command again to resume")
        sys.exit(143)
    except StoreError as exc:
        fail(str(exc), code=1)
    except ConfigError as exc:
        fail(str(exc))
    except DatasetError as exc:
        fail(f"{config}: grid.prompts: {exc}")

    table = Table(title=f"run {summary.run_dir}", show_header=False)
    table.add_row("cells in grid", str(summary.cells_total))
    table.add_row("already done", str(summary.cells_already_done))
    table.add_row("generated now", str(summary.cells_generated))
    for outcome, count in sorted(summary.outcomes.items()):
        table.add_row(f"  outcome {outcome}", str(count))
    table.add_row("tokens (prompt / completion)", f"{summary.prompt_tokens} / {summary.completion_tokens}")
    for outcome, count in sorted(summary.ratings.items()):
        table.add_row(f"  ratings {outcome}", str(count))
    if summary.stop_reasons:
        table.add_row("mitigation: critiques / rewrites", f"{summary.critiques} / {summary.rewrites}")
        table.add_row("mitigation stop reasons", ", ".join(f"{k} {v}" for k, v in sorted(summary.stop_reasons.items())))
    if summary.cache_hits:
        table.add_row("calls served from cache", str(summary.cache_hits))
    if summary.cost_usd is not None:
        table.add_row("estimated cost (calls made now)", f"${summary.cost_usd:.4f}")
    table.add_row("wall time", f"{summary.wall_s:.1f} s ({summary.cells_per_s:.2f} cells/s)")
    console.print(table)
    failures = sum(v for k, v in summary.outcomes.items() if k not in ("ok", "content_filter"))
    if failures:
        errors.print(f"{failures} cell(s) failed; they are stored with their failure type and retried on the next run")


@main.command()
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
    from graphs.store import StoreError

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

    bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=errors, disable=not progress)  # fmt: skip
    task_id = bar.add_task("generations", total=None)
    try:
        with bar:
            summary = asyncio.run(
                rate_run(
                    Path(run_dir),
                    cfg,
                    cfg_path,
                    panel=panel,
                    backends=backends,
                    on_start=lambda n: bar.update(task_id, total=n),
                    on_progress=lambda n: bar.advance(task_id, n),
                )
            )
    except KeyboardInterrupt:
        errors.print("interrupted: judged chunks are saved; run the same command again to resume")
        sys.exit(130)
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


@main.group()
def raters() -> None:
    """Judges and rubrics."""


@raters.command("list")
@click.option("--config", type=click.Path(dir_okay=False), help="Also show this config's panel.")
def raters_list(config: str | None) -> None:
    """Show the rater kinds, the built-in rubrics and (with --config) a panel, with their dimensions."""
    from raters.registry import available_raters, rater_class
    from raters.rubric import builtin_rubrics, load_rubric

    table = Table("kind", "description", "dimensions", "source", title="rater kinds")
    for kind, source in sorted(available_raters().items()):
        try:
            cls = rater_class(kind)
            dims = f"rubric (default {cls.default_rubric})" if cls.default_rubric else ", ".join(cls.default_dimensions)
            table.add_row(kind, cls.description, dims or "from options", source)
        except Exception as exc:  # a rater whose dependencies are missing is still listed
            table.add_row(kind, f"[red]unavailable: {exc}[/]", "", source)
    console.print(table)
    rubrics = Table("rubric", "version", "kind", "dimensions", title="rubrics")
    for name in builtin_rubrics():
        rubric = load_rubric(name)
        rubrics.add_row(rubric.id, rubric.version, rubric.kind, ", ".join(rubric.dimension_ids))
    console.print(rubrics)
    if config:
        from graphs.runner import build_run_panel

        experiment = _load(config)
        try:
            # judge models are not loaded by listing: backends are built but never called
            from graphs.runner import judge_backends

            panel = build_run_panel(experiment.config, judge_backends(experiment.config, config), config)
        except ConfigError as exc:
            fail(str(exc))
        members = Table("name", "identity", "dimensions", title=f"panel of {config} ({panel.method})")
        for rater in panel.raters:
            members.add_row(rater.name, str(rater.identity()), ", ".join(rater.dimensions))
        console.print(members, soft_wrap=True)


@main.command()
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


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the HTML (default RUN/report.html).")
def report(run_dir: str, out: str | None) -> None:
    """Write a self-contained report.html for a run."""
    from analysis import write_report

    try:
        path = write_report(run_dir, Path(out) if out else None)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    console.print(f"report written to {path}")


@main.command("export")
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


@main.group()
def models() -> None:
    """Model backends."""


@models.command("list")
def models_list() -> None:
    """Show the available backends."""
    from agents.base import available_backends, backend_class

    table = Table("backend", "description", "json schema", "logprobs", "source")
    for kind, source in sorted(available_backends().items()):
        try:
            cls = backend_class(kind)
            table.add_row(kind, cls.description, _yes(cls.supports_json_schema), _yes(cls.supports_logprobs), source)
        except Exception as exc:  # a backend whose dependencies are missing is still listed
            table.add_row(kind, f"[red]unavailable: {exc}[/]", "", "", source)
    console.print(table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


@models.command("try")
@click.argument("model")
@click.argument("prompt")
@click.option("--config", type=click.Path(dir_okay=False), help="Take MODEL by name from this config's models.")
@click.option("--base-url", help="For an ad-hoc openai backend: the server's base URL.")
@click.option("--api-key-env", help="For an ad-hoc openai backend: the variable holding the API key.")
@click.option("--system", help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(1, 32768), default=128, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
def models_try(
    model: str,
    prompt: str,
    config: str | None,
    base_url: str | None,
    api_key_env: str | None,
    system: str | None,
    max_tokens: int,
    temperature: float,
) -> None:
    """Print one reply of MODEL to PROMPT.

    MODEL is a model name from --config, or BACKEND[:MODEL_ID] such as 'embedded', 'openai:gpt-4o-mini' or
    'vllm:Qwen/Qwen2.5-7B-Instruct'.
    """
    from pydantic import ValidationError

    from agents.base import create_backend
    from agents.types import GenerationRequest, Message, Sampling
    from configs.schema import ModelSpec

    if config:
        experiment = _load(config)
        specs = {m.name: m for m in experiment.config.models}
        if model not in specs:
            fail(f"{config}: models: no model named {model!r} (have: {', '.join(specs)})")
        spec = specs[model]
    else:
        backend, _, model_id = model.partition(":")
        try:
            spec = ModelSpec(
                name="try",
                backend=backend,
                model=model_id or None,
                base_url=base_url,
                api_key=f"${{{api_key_env}}}" if api_key_env else None,
            )
        except ValidationError as exc:
            fail(f"{model}: {exc.errors(include_url=False)[0]['msg'].removeprefix('Value error, ')}")
    messages = [Message(role="user", content=prompt)]
    if system:
        messages.insert(0, Message(role="system", content=system))
    request = GenerationRequest(
        messages=tuple(messages), sampling=Sampling(max_tokens=max_tokens, temperature=temperature, seed=0)
    )

    async def once() -> Any:
        instance = create_backend(spec)
        try:
            return (await instance.generate([request]))[0]
        finally:
            await instance.aclose()

    try:
        result = asyncio.run(once())
    except ConfigError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}", code=1)
    if result.kind == "failure":
        fail(f"{result.failure.value}: {result.message}", code=1)
    console.print(result.text, markup=False, highlight=False)
    errors.print(
        f"[dim]finish={result.finish_reason} tokens={result.usage.prompt_tokens}+{result.usage.completion_tokens} "
        f"latency={result.latency_s:.2f}s[/]"
    )


main.add_command(bench)
main.add_command(audit)
