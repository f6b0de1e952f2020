"""The runner: expand the grid, skip what the run directory already holds, push chunks through the graph.

Up to ``run.concurrency`` chunks are in flight at once; each backend bounds its own requests. Each chunk's
results (generations and the panel's ratings) are written in one transaction as soon as they arrive, so a run
stopped at any point (Ctrl-C, SIGTERM, kill -9) resumes where it stopped when the same command runs again, with
no duplicate rows.

:func:`rate_run` re-judges a finished run's stored generations with a panel (``tribunal rate``), without
regenerating: ratings already stored under the same key are skipped, timeouts and server errors asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.base import Backend, create_backend
from agents.cached import CachedBackend
from configs.loader import ConfigError, Experiment, read_yaml, validate_as
from configs.schema import ExperimentConfig, stage1_dir
from graphs.datasets import DatasetError
from graphs.experiment import build_experiment_graph
from graphs.files import atomic_write_text
from graphs.grid import expand_grid, load_grid_prompts, sampling_of
from graphs.judging import build_judging_graph, item_for
from graphs.mitigation import Mitigation
from graphs.records import CONFIG_FILENAME, STORE_FILENAME, Cell
from graphs.stage1 import Stage1Progress, Stage1Result, benchmark_is_complete, ensure_stage1
from graphs.store import StoreError, TranscriptStore
from raters.panel import Panel, PanelError, build_panel
from raters.types import Rating

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_dir: str
    cells_total: int
    cells_already_done: int
    cells_generated: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    status: str = "completed"
    ratings: dict[str, int] = field(default_factory=dict)
    stop_reasons: dict[str, int] = field(default_factory=dict)
    rewrites: int = 0
    critiques: int = 0
    cache_hits: int = 0
    rating_count: int = 0
    cost_usd: float | None = None

    @property
    def cells_per_s(self) -> float:
        return self.cells_generated / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cells_per_s": round(self.cells_per_s, 3)}


ProgressCallback = Callable[[int, "RunSummary"], None]


def build_backends(experiment: Experiment) -> dict[str, Backend]:
    """One backend per configured model; resolves ``${ENV}`` references (raising ConfigError when unset)."""
    backends = {}
    for index, spec in enumerate(experiment.config.models):
        backend = create_backend(spec, config_path=experiment.path, field_path=f"models[{index}]")
        backends[spec.name] = CachedBackend(backend)
    return backends


def build_mitigation(experiment: Experiment, backends: dict[str, Backend]) -> Mitigation | None:
    """The configured critique-rewrite loop, or None; the critic may be a configured model or one written inline."""
    config = experiment.config.mitigation
    if config is None or not config.enabled:
        return None
    if isinstance(config.critic, str):
        critic, critic_name = backends[config.critic], config.critic
    else:
        backend = create_backend(config.critic, config_path=experiment.path, field_path="mitigation.critic")
        critic, critic_name = CachedBackend(backend), config.critic.name
    rewriter = backends[config.rewriter] if config.rewriter else None
    return Mitigation(config=config, critic=critic, critic_name=critic_name, rewriter=rewriter)


def build_run_panel(
    config: ExperimentConfig,
    backends: dict[str, Backend],
    config_path: str | Path,
    only: Sequence[str] | None = None,
) -> Panel:
    """The config's panel (or the raters named in ``only``); problems become a one-line :class:`ConfigError`."""
    try:
        return build_panel(config.panel, backends, only=only, config_path=config_path)
    except PanelError as exc:
        raise ConfigError(config_path, exc.field_path, exc.problem) from None


def write_config_snapshot(run_dir: Path, experiment: Experiment) -> None:
    """Write the resolved config atomically (API keys stay ``${ENV}`` references)."""
    text = yaml.safe_dump(experiment.snapshot(), allow_unicode=True, sort_keys=False)
    atomic_write_text(run_dir / CONFIG_FILENAME, text)


async def _stage1(
    experiment: Experiment,
    run_dir: Path,
    progress: Stage1Progress | None,
    on_done: Callable[[Stage1Result, bool], None] | None,
) -> None:
    reused = benchmark_is_complete(stage1_dir(experiment.config, run_dir))
    try:
        result = await ensure_stage1(experiment, run_dir, progress=progress)
    except DatasetError as exc:
        raise ConfigError(experiment.path, "stage1.prompts", str(exc)) from None
    if on_done is not None and result is not None:
        on_done(result, reused)


def _chunks(cells: Sequence[Cell], size: int) -> list[list[Cell]]:
    ordered = sorted(cells, key=lambda c: c.model)  # homogeneous chunks batch best
    return [list(ordered[i : i + size]) for i in range(0, len(ordered), size)]


async def run_experiment(
    experiment: Experiment,
    run_dir: Path | None = None,
    *,
    limit: int | None = None,
    backends: dict[str, Backend] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: ProgressCallback | None = None,
    panel: Panel | None = None,
    mitigation: Mitigation | None = None,
    stage1_progress: Stage1Progress | None = None,
    on_stage1: Callable[[Stage1Result, bool], None] | None = None,
) -> RunSummary:
    """Generate every cell of ``experiment`` not yet in ``run_dir`` and judge the replies with the panel.

    A study config with a ``stage1`` section (Demo-SafetyBench) builds its benchmark into ``RUN_DIR/stage1``
    first, unless a finished one is there (:func:`graphs.stage1.ensure_stage1`); its grid then asks those prompts.

    Args:
        experiment: a loaded experiment.
        run_dir: the run directory; the config's ``run.output_dir`` when omitted.
        limit: only the first ``limit`` cells of the grid.
        backends: prebuilt backends by model name (tests, notebooks); built from the config when omitted.
        on_start: called with (cells to generate, cells in the grid) before the first chunk.
        on_progress: called with the number of cells finished after each chunk.
        panel: a prebuilt panel; built from the config's ``panel`` section when omitted.
        mitigation: a prebuilt loop; built from the config's ``mitigation`` section when omitted.
        stage1_progress: receives stage I's stages and advances (logged at INFO when omitted).
        on_stage1: called with stage I's result and whether it was already built, before the first cell.

    Returns:
        The run summary, also stored in the ``runs`` table.

    Raises:
        DatasetError: the grid's prompts cannot be read (before anything is written).
        ConfigError: stage I's prompts cannot be read, or one of its models cannot be built.
    """
    config = experiment.config
    run_dir = Path(run_dir or config.run.output_dir)
    if config.stage1 is not None:
        await _stage1(experiment, run_dir, stage1_progress, on_stage1)
    prompts = load_grid_prompts(experiment, run_dir) if config.grid.prompts is not None else None
    cells = list(expand_grid(experiment, prompts))
    if limit is not None:
        cells = cells[:limit]
    backends = backends if backends is not None else build_backends(experiment)
    panel = panel if panel is not None else build_run_panel(config, backends, experiment.path)
    mitigation = mitigation if mitigation is not None else build_mitigation(experiment, backends)

    store = TranscriptStore.open(run_dir)
    cached = [b for b in backends.values() if isinstance(b, CachedBackend)]
    if mitigation is not None and isinstance(mitigation.critic, CachedBackend):
        cached.append(mitigation.critic)
    for backend in cached:
        backend.cache = store
    write_config_snapshot(run_dir, experiment)
    run_id = store.begin_run("run", experiment.snapshot()["config"])
    store.add_cells(cells)
    done = store.completed_cells()
    todo = [c for c in cells if c.key not in done]
    summary = RunSummary(run_dir=str(run_dir), cells_total=len(cells), cells_already_done=len(cells) - len(todo))
    if on_start:
        on_start(len(todo), len(cells))

    graph = build_experiment_graph(backends, sampling_of(experiment), panel, mitigation)
    # every mitigation round is four graph steps (critique, rewrite, judge, decide)
    graph_config = {"recursion_limit": 16 + 4 * (mitigation.config.max_rounds if mitigation else 0)}
    stop_reasons: Counter[str] = Counter()
    kinds = {name: backend.kind for name, backend in backends.items()}
    outcomes: Counter[str] = Counter()
    rating_outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(config.run.concurrency)
    started = time.perf_counter()

    async def process(chunk: list[Cell]) -> None:
        async with gate:
            state = await graph.ainvoke({"cells": chunk}, config=graph_config)
            ratings: list[Rating] = state.get("ratings", [])
            store.write_generations(
                chunk,
                state["requests"],
                state["results"],
                kinds,
                ratings=ratings,
                refusals=panel.refusal_flags(ratings),
                rewrites=state.get("rewrites", []),
                critiques=state.get("critiques", []),
                stops=state.get("stops", []),
                aggregates=state.get("aggregates", []),
            )
        stop_reasons.update(stop.reason for stop in state.get("stops", []))
        summary.rewrites += len(state.get("rewrites", []))
        summary.critiques += len(state.get("critiques", []))
        rating_outcomes.update(r.outcome.value for r in ratings)
        for result in state["results"]:
            outcomes[result.outcome] += 1
            usage = getattr(result, "usage", None)
            if usage is not None:
                summary.prompt_tokens += usage.prompt_tokens or 0
                summary.completion_tokens += usage.completion_tokens or 0
        summary.cells_generated += len(chunk)
        summary.rating_count += len(ratings)
        summary.outcomes = dict(outcomes)
        if any(b.spec.price for b in cached):
            summary.cost_usd = sum(b.cost_usd for b in cached)
        if on_progress:
            on_progress(len(chunk), summary)

    tasks = [asyncio.ensure_future(process(chunk)) for chunk in _chunks(todo, config.run.chunk_size)]
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        if current is not None:
            loop.add_signal_handler(signal.SIGTERM, current.cancel)
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    except BaseException:
        summary.status = "interrupted"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
        summary.outcomes = dict(outcomes)
        summary.ratings = dict(rating_outcomes)
        summary.stop_reasons = dict(stop_reasons)
        summary.cache_hits = sum(b.hits for b in cached)
        summary.wall_s = time.perf_counter() - started
        with contextlib.suppress(StoreError):  # never mask the error that stopped the run
            store.finish_run(run_id, summary.status, summary.as_dict())
        store.close()
        await panel.aclose()
        for backend in backends.values():
            with contextlib.suppress(Exception):
                await backend.aclose()
    log.info("run summary: %s", json.dumps(summary.as_dict()))
    return summary


# ------------------------------------------------------------------------------------------------ rate
@dataclass
class RateSummary:
    run_dir: str
    raters: list[str]
    generations: int
    ratings_written: int = 0
    ratings_skipped: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    status: str = "completed"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_config(run_dir: Path) -> tuple[ExperimentConfig, Path]:
    """The experiment config a run directory was made with (its ``config.yaml`` snapshot)."""
    path = Path(run_dir) / CONFIG_FILENAME
    snapshot = read_yaml(path)
    if not isinstance(snapshot, dict) or "config" not in snapshot:
        raise ConfigError(path, "config", "not a tribunal run snapshot (no 'config' section)")
    return validate_as(ExperimentConfig, snapshot["config"], path), path


def judge_backends(config: ExperimentConfig, config_path: str | Path) -> dict[str, Backend]:
    """Backends for the configured models that panel raters name (rating needs no generator)."""
    wanted = {r.model for r in config.panel.raters if isinstance(r.model, str)}
    backends = {}
    for index, spec in enumerate(config.models):
        if spec.name in wanted:
            backends[spec.name] = create_backend(spec, config_path=config_path, field_path=f"models[{index}]")
    return backends


async def rate_run(
    run_dir: Path,
    config: ExperimentConfig,
    config_path: str | Path,
    *,
    only: Sequence[str] | None = None,
    panel: Panel | None = None,
    backends: dict[str, Backend] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RateSummary:
    """Judge the stored generations of ``run_dir`` with a panel, skipping ratings already stored.

    Generations are never regenerated or rewritten; ``generations.refusal`` is filled only where it is NULL.

    Args:
        run_dir: a run directory made by ``tribunal run``.
        config: the config whose panel judges (the run's own snapshot, or another config with new raters).
        config_path: the config's file, for error messages.
        only: judge with these raters only, by name (see :func:`raters.panel.build_panel`).
        panel: a prebuilt panel (tests, notebooks); built from ``config`` when omitted.
        backends: prebuilt backends by model name; built for the models the raters name when omitted.
        on_start: called with the number of generations before the first chunk.
        on_progress: called with the number of generations judged after each chunk.
    """
    if not (Path(run_dir) / STORE_FILENAME).exists():
        raise StoreError(f"{run_dir}: not a tribunal run directory (no {STORE_FILENAME})")
    store = TranscriptStore.open(Path(run_dir))
    if panel is None:
        backends = backends if backends is not None else judge_backends(config, config_path)
        panel = build_run_panel(config, backends, config_path, only)
    run_id = store.begin_run("rate", config.model_dump(mode="json"))
    rows = store.judgeable_generations()
    done = frozenset(store.final_rating_keys())
    items = [item_for(r["generation_key"], r["text"], json.loads(r["messages"]), r["language"]) for r in rows]
    summary = RateSummary(
        run_dir=str(run_dir), raters=[str(r.identity()) for r in panel.raters], generations=len(items)
    )
    if on_start:
        on_start(len(items))
    graph = build_judging_graph(panel)
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(config.run.concurrency)
    size = config.run.chunk_size
    started = time.perf_counter()

    async def process(chunk: list[Any]) -> None:
        async with gate:
            state = await graph.ainvoke({"pending": chunk, "skip": done})
            ratings: list[Rating] = state.get("ratings", [])
            store.write_ratings(ratings, panel.refusal_flags(ratings))
        outcomes.update(r.outcome.value for r in ratings)
        summary.ratings_written += len(ratings)
        if on_progress:
            on_progress(len(chunk))

    try:
        await asyncio.gather(*(process(items[i : i + size]) for i in range(0, len(items), size)))
    except BaseException:
        summary.status = "interrupted"
        raise
    finally:
        expected = len(items) * sum(len(r.dimensions) for r in panel.raters)
        summary.ratings_skipped = max(0, expected - summary.ratings_written)
        summary.outcomes = dict(outcomes)
        summary.wall_s = time.perf_counter() - started
        with contextlib.suppress(StoreError):  # never mask the error that stopped the run
            store.finish_run(run_id, summary.status, summary.as_dict())
        store.close()
        await panel.aclose()
        for backend in (backends or {}).values():
            with contextlib.suppress(Exception):
                await backend.aclose()
    return summary
