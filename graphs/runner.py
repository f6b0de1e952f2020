"""The runner: expand the grid, skip what the run directory already holds, push chunks through the graph.

Up to ``run.concurrency`` chunks are in flight at once (both chosen from the models' backends when the config
leaves them out: :mod:`graphs.engines.shape`); each server bounds its own requests, and a reply's judges leave as
it returns (:class:`graphs.judging.Relay`), so the requests in flight stay at the servers' limits. Each chunk's
results (generations and the panel's ratings) are written in one transaction as soon as they arrive, so a run
stopped at any point (Ctrl-C, SIGTERM, kill -9) resumes where it stopped when the same command runs again, with
no duplicate rows. Cells whose generation failed, and cells whose mitigation loop stopped on a failed critique or
rewrite call, are run again (their finished calls come back from the cache).

The run directory is one experiment: the runner holds its lock while it writes, and compares the config's
fingerprint (:func:`graphs.records.config_fingerprint`) with the one the directory was made with. A resume under
another config is refused with the changed fields, unless the caller allows those changes or asks for a fresh
sibling directory.

:func:`rate_run` re-judges a finished run's stored generations with a panel (``tribunal rate``), without
regenerating: ratings already stored under the same key are skipped, timeouts and server errors asked again.
It leaves critiques and rewrites alone (``tribunal run`` retries those).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from agents.base import Backend, create_backend
from agents.cached import CachedBackend
from configs.loader import ConfigError, Experiment, read_yaml, validate_as
from configs.schema import ExperimentConfig, stage1_dir
from graphs.datasets import DatasetError
from graphs.engines.chunk import RunTally, failed_status, graph_config, run_chunk, write_chunk
from graphs.engines.parquet_run import ParquetRunDirectory, is_parquet_run
from graphs.engines.shape import run_shape
from graphs.experiment import build_experiment_graph
from graphs.files import atomic_write_text
from graphs.grid import grid_cells, load_grid_prompts, sampling_of
from graphs.judging import build_judging_graph, item_for
from graphs.mitigation import Mitigation
from graphs.records import (
    CONFIG_FILENAME,
    GIVEN_MODEL,
    STORE_FILENAME,
    Cell,
    RateSummary,
    RunSummary,
    config_fingerprint,
)
from graphs.rundir import RunDirectoryLock, open_run_directory
from graphs.stage1 import Stage1Progress, Stage1Result, benchmark_is_complete, benchmark_profiles, ensure_stage1
from graphs.store import StoreError, TranscriptStore
from raters.panel import Panel, PanelError, build_panel
from raters.types import Rating

log = logging.getLogger(__name__)


ProgressCallback = Callable[[int, "RunSummary"], None]


def build_backends(experiment: Experiment) -> dict[str, Backend]:
    """One backend per configured model; resolves ``${ENV}`` references (raising ConfigError when unset)."""
    backends = {}
    for index, spec in enumerate(experiment.config.models):
        backend = create_backend(spec, config_path=experiment.path, field_path=f"models[{index}]")
        backends[spec.name] = CachedBackend(backend)
    return backends


def _cached(backend: Backend) -> CachedBackend:
    return backend if isinstance(backend, CachedBackend) else CachedBackend(backend)


def attach_cache(
    store: TranscriptStore, backends: dict[str, Backend], panel: Panel, mitigation: Mitigation | None
) -> tuple[dict[str, CachedBackend], Mitigation | None, list[CachedBackend]]:
    """Give the run's cached backends (generators, judges, critic) the store as their response cache, and wrap
    the others (prebuilt by a caller) so that their tokens count too.

    Returns:
        the generators by name as the graph calls them, the loop with its critic and rewriter as called, and
        every distinct backend that counts tokens.
    """
    meters: dict[int, CachedBackend] = {}

    def counting(backend: Backend) -> CachedBackend:
        if isinstance(backend, CachedBackend):
            backend.cache = store
            return meters.setdefault(id(backend), backend)
        wrapper = meters.get(id(backend))  # keyed by the wrapped backend too, so that one wrapper serves all
        if wrapper is None:
            wrapper = meters[id(backend)] = CachedBackend(backend)
        return wrapper

    counted = {name: counting(b) for name, b in backends.items()}
    for rater in panel.raters:
        if rater.backend is not None:
            rater.backend = counting(rater.backend)
    if mitigation is not None:
        rewriter = mitigation.rewriter
        mitigation = replace(
            mitigation,
            critic=counting(mitigation.critic),
            rewriter=None if rewriter is None else counting(rewriter),
        )
    return counted, mitigation, list({id(b): b for b in meters.values()}.values())


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
    """The config's panel (or the raters named in ``only``); problems become a one-line :class:`ConfigError`.

    A judge model written inline gets the response cache too (and counts its tokens), like configured models.
    """
    try:
        panel = build_panel(config.panel, backends, only=only, config_path=config_path)
    except PanelError as exc:
        raise ConfigError(config_path, exc.field_path, exc.problem) from None
    for rater in panel.raters:
        if rater.owns_backend and rater.backend is not None:
            rater.backend = _cached(rater.backend)
    return panel


def write_config_snapshot(run_dir: Path, experiment: Experiment) -> None:
    """Write the resolved config atomically (API keys stay ``${ENV}`` references)."""
    # libyaml's dumper where it is built in: a 100,000-persona snapshot takes seconds instead of a minute
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(experiment.snapshot(), Dumper=dumper, allow_unicode=True, sort_keys=False)
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
    new_run_dir: bool = False,
    allow_config_change: Sequence[str] = (),
    on_run_dir: Callable[[Path, list[str]], None] | None = None,
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
        new_run_dir: when another config made ``run_dir``, write into the first sibling ``RUN_DIR-2``,
            ``RUN_DIR-3``, … that is new or was made by this config, instead of refusing.
        allow_config_change: fingerprint fields (or their parents, such as ``panel.raters``) that may differ
            from the run directory's; the directory then records the new fingerprint.
        on_run_dir: called with (the directory written, the fields that made ``run_dir`` refuse) when the run
            went to a sibling directory.

    Returns:
        The run summary, also stored in the ``runs`` table.

    Raises:
        RunDirectoryError: another process writes the directory; another config or an older tribunal made it
            (nothing is written).
        DatasetError: the grid's prompts cannot be read (before anything is written).
        ConfigError: stage I's prompts cannot be read, or one of its models cannot be built.
    """
    config = experiment.config
    asked = Path(run_dir or config.run.output_dir)
    # prompts that do not come from stage I are read before the run directory is touched
    prompts = load_grid_prompts(experiment, asked) if config.grid.prompts is not None and not config.stage1 else None
    opened = open_run_directory(
        asked, config_fingerprint(experiment.snapshot()), new_run_dir=new_run_dir, allow=allow_config_change
    )
    run_dir, bad_input = opened.path, False
    try:
        if opened.moved_from is not None and on_run_dir is not None:
            on_run_dir(run_dir, opened.refused_changes)
        if config.stage1 is not None:
            await _stage1(experiment, run_dir, stage1_progress, on_stage1)
            prompts = load_grid_prompts(experiment, run_dir) if config.grid.prompts is not None else None
        cells = grid_cells(experiment, prompts, limit=limit)
        summary = RunSummary(
            run_dir=str(run_dir),
            cells_total=len(cells),
            cells_already_done=0,
            moved_from=str(opened.moved_from) if opened.moved_from else None,
            config_changes=opened.allowed_changes,
        )
        return await _run(
            experiment, opened.store, cells, summary, backends=backends, on_start=on_start,
            on_progress=on_progress, panel=panel, mitigation=mitigation,
        )  # fmt: skip
    except (ConfigError, DatasetError):
        bad_input = True
        raise
    finally:
        opened.close(remove=bad_input)  # bad input leaves nothing behind, not even a directory it created


async def _run(
    experiment: Experiment,
    store: TranscriptStore,
    cells: list[Cell],
    summary: RunSummary,
    *,
    backends: dict[str, Backend] | None,
    on_start: Callable[[int, int], None] | None,
    on_progress: ProgressCallback | None,
    panel: Panel | None,
    mitigation: Mitigation | None,
) -> RunSummary:
    """Generate and judge the ``cells`` not yet complete in the (locked, checked) run directory's ``store``."""
    config = experiment.config
    run_dir = Path(summary.run_dir)
    backends = backends if backends is not None else build_backends(experiment)
    panel = panel if panel is not None else build_run_panel(config, backends, experiment.path)
    mitigation = mitigation if mitigation is not None else build_mitigation(experiment, backends)
    counted, mitigation, meters = attach_cache(store, backends, panel, mitigation)

    write_config_snapshot(run_dir, experiment)
    run_id = store.begin_run("run", experiment.snapshot()["config"])
    store.add_cells(cells)
    done = store.completed_cells()
    redo = store.mitigation_to_retry()
    todo = [c for c in cells if c.key not in done]
    summary.cells_already_done = len(cells) - len(todo)
    if on_start:
        on_start(len(todo), len(cells))

    graph = build_experiment_graph(counted, sampling_of(experiment), panel, mitigation)
    invocation = graph_config(mitigation)
    kinds = {name: backend.kind for name, backend in backends.items()}
    shape = run_shape(config.run, meters)
    log.info("chunks of %d cells, %d in flight (%s)", shape.chunk_size, shape.concurrency, shape.reason)
    tally = RunTally()
    started = time.perf_counter()

    def count_tokens() -> None:
        summary.prompt_tokens = sum(b.prompt_tokens for b in meters)
        summary.completion_tokens = sum(b.completion_tokens for b in meters)
        if any(b.spec.price for b in meters):
            summary.cost_usd = sum(b.cost_usd for b in meters)

    chunks = iter(_chunks(todo, shape.chunk_size))
    # what exists now (the imported libraries, the config, the backends and the graph) lives as long as the run:
    # out of the collector's way (until the run ends), a full collection walks only what the chunks make
    # (~45 -> ~12 µs a cell on the scripted backend)
    gc.freeze()

    async def worker() -> None:
        """Takes the next chunk whenever its last one is stored: ``shape.concurrency`` of them keep the servers
        fed without a task per chunk waiting on a gate."""
        for chunk in chunks:
            records = await run_chunk(graph, chunk, panel, invocation)
            retried = [c.key for c in chunk if c.key in redo]
            write_chunk(store, records, kinds, redo=retried)
            tally.add(records, len(retried))
            tally.into(summary)
            count_tokens()
            if on_progress:
                on_progress(len(chunk), summary)

    tasks = [asyncio.ensure_future(worker()) for _ in range(shape.concurrency)]
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        if current is not None:
            loop.add_signal_handler(signal.SIGTERM, current.cancel)
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
        if failed_status(summary, config.run.max_failed_share):
            summary.status = "failed"
    except BaseException:
        summary.status = "interrupted"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        gc.unfreeze()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
        tally.into(summary)
        summary.cache_hits = sum(b.hits for b in meters)
        count_tokens()
        summary.wall_s = time.perf_counter() - started
        with contextlib.suppress(StoreError):  # never mask the error that stopped the run
            store.finish_run(run_id, summary.status, summary.as_dict())
        await panel.aclose()
        for backend in backends.values():
            with contextlib.suppress(Exception):
                await backend.aclose()
    log.info("run summary: %s", json.dumps(summary.as_dict()))
    return summary


# ------------------------------------------------------------------------------------------------ rate
def run_config(run_dir: Path) -> tuple[ExperimentConfig, Path]:
    """The experiment config a run directory was made with (its ``config.yaml`` snapshot)."""
    path = Path(run_dir) / CONFIG_FILENAME
    snapshot = read_yaml(path, kind="data")  # it holds every persona of the grid: a data-sized file
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
    if is_parquet_run(run_dir):  # the Ray engine's: rated on a local copy, new rows written back as Parquet parts
        directory = ParquetRunDirectory(run_dir)
        directory.open(None)
        try:
            store = directory.working_store()
            summary = await _rate(store, config, config_path, only, panel, backends, on_start, on_progress)
            summary.run_dir = str(run_dir)
            directory.commit_rated(store)
            return summary
        finally:
            directory.close()
    if not (Path(run_dir) / STORE_FILENAME).exists():
        raise StoreError(f"{run_dir}: not a tribunal run directory (no {STORE_FILENAME})")
    with RunDirectoryLock(Path(run_dir)):
        store = TranscriptStore.open(Path(run_dir))
        try:
            store.require_current_schema()
            return await _rate(store, config, config_path, only, panel, backends, on_start, on_progress)
        finally:
            store.close()


async def _rate(
    store: TranscriptStore,
    config: ExperimentConfig,
    config_path: str | Path,
    only: Sequence[str] | None,
    panel: Panel | None,
    backends: dict[str, Backend] | None,
    on_start: Callable[[int], None] | None,
    on_progress: Callable[[int], None] | None,
) -> RateSummary:
    run_dir = store.path.parent
    if panel is None:
        backends = backends if backends is not None else judge_backends(config, config_path)
        panel = build_run_panel(config, backends, config_path, only)
    for rater in panel.raters:  # judge calls that complete are kept, so that an interrupted rate pays once
        if rater.backend is not None:
            rater.backend = _cached(rater.backend)
            rater.backend.cache = store
    run_id = store.begin_run("rate", config.model_dump(mode="json"))
    rows = store.judgeable_generations()
    done = frozenset(store.final_rating_keys())
    # given texts rated under their sample's profile (`framing: profile`) get it back from the stage I benchmark
    profiles = benchmark_profiles(stage1_dir(config, run_dir)) if any(r["model"] == GIVEN_MODEL for r in rows) else {}
    items = [
        item_for(r["generation_key"], r["text"], json.loads(r["messages"]), r["language"], profiles.get(r["target_id"]))
        for r in rows
    ]
    summary = RateSummary(
        run_dir=str(run_dir), raters=[str(r.identity()) for r in panel.raters], generations=len(items)
    )
    if on_start:
        on_start(len(items))
    graph = build_judging_graph(panel)
    outcomes: Counter[str] = Counter()
    shape = run_shape(config.run, [r.backend for r in panel.raters if r.backend is not None])
    gate = asyncio.Semaphore(shape.concurrency)
    size = shape.chunk_size
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
        await panel.aclose()
        for backend in (backends or {}).values():
            with contextlib.suppress(Exception):
                await backend.aclose()
    return summary
