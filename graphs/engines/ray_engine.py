"""The Ray engine: the experiment graph on a Ray cluster (``tribunal run CONFIG --engine ray``), written as Parquet.

The grid's cells not yet complete become a Ray Dataset; ``map_batches`` with :class:`GraphActor` (a callable
class: one instance per actor, ``run.concurrency`` actors, ``run.chunk_size`` cells a batch, one GPU an actor
when a model runs on vLLM offline) builds the backends, panel and mitigation loop once per actor and runs each
batch through the same compiled graph as the local engine (:func:`graphs.engines.chunk.run_chunk`). The actor
writes the batch's records into an in-memory transcript store and returns its rows as Arrow tables; the driver
writes them as one committed batch of Parquet parts (:class:`graphs.engines.parquet_run.ParquetRunDirectory`)
and shows progress (cells done, throughput, failures) through the same callbacks as the local engine.

Resume is an anti-join: the driver reads the committed rows back with the store's own queries
(``completed_cells``, ``mitigation_to_retry``) and sends only the rest, so a driver killed at any point
(``kill -9`` included) and started again does only what is missing and writes no key twice. Failed calls are
the backends' typed failures, retried by the backends inside each actor and stored as the local engine stores
them. A batch whose graph raises is run again cell by cell, so that one bad cell never drops its batch; a cell
that still raises is written to ``cells`` only, counted as ``engine_error`` in the summary and logged, and the
next run tries it again.

Response cache: per actor, in memory, for as long as the actor lives (a mitigation round that asks a judge the
same question again is served from it). There is no shared cache on a cluster: a re-run pays again for the calls
of the batches that were not committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import yaml

from configs.loader import ConfigError, Experiment
from graphs.engines.chunk import ChunkRecords, RunTally, failed_status, graph_config, run_chunk, write_chunk
from graphs.engines.parquet_run import ParquetRunDirectory, batch_tables, from_ipc, memory_store, to_ipc
from graphs.engines.shape import DEFAULT_CHUNK, DEFAULT_CONCURRENCY, VLLM_CHUNK
from graphs.experiment import build_experiment_graph
from graphs.grid import grid_cells, load_grid_prompts, sampling_of
from graphs.records import CONFIG_FILENAME, Cell, RunSummary, config_fingerprint
from graphs.runner import attach_cache, build_backends, build_mitigation, build_run_panel
from graphs.stage1 import ensure_stage1

__all__ = ["GraphActor", "run_on_ray"]

log = logging.getLogger(__name__)

#: Outcome counted in the summary for a cell whose graph raised (no row but its ``cells`` row is written).
ENGINE_ERROR = "engine_error"
_OFFLINE_GPU_BACKENDS = ("vllm",)


class _OwnThread:
    """One daemon thread that runs what it is given, in order (a daemon: the actor's process exits without
    waiting for it, however Ray ends the actor)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Any, tuple[Any, ...], Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="tribunal-graph", daemon=True).start()

    def _serve(self) -> None:
        while True:
            function, args, future = self._jobs.get()
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

    def run(self, function: Any, *args: Any) -> Any:
        future: Future[Any] = Future()
        self._jobs.put((function, args, future))
        return future.result()


class GraphActor:
    """One graph runner per Ray actor: built once, then called with batches of cells (an Arrow table with the
    columns ``cell``, the cell as JSON, and ``redo``, its mitigation loop to be replaced).

    Returns one row per batch: the batch's tables as Arrow IPC bytes (``t_<table>``), its counts (``tally``), the
    tokens and cache hits it spent (``usage``), the cells it redid (``redo``) and the cells whose graph raised
    (``errors``).
    """

    def __init__(self, experiment: Experiment) -> None:
        # Ray may call an actor from another thread than the one that built it; SQLite and the backends' event
        # loop belong to one thread, so everything the actor does happens on its own
        self.thread = _OwnThread()
        self.thread.run(self._build, experiment)

    def _build(self, experiment: Experiment) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        config = experiment.config
        backends = build_backends(experiment)
        panel = build_run_panel(config, backends, experiment.path)
        mitigation = build_mitigation(experiment, backends)
        self.cache = memory_store()  # the actor's response cache (module docstring)
        counted, mitigation, self.meters = attach_cache(self.cache, backends, panel, mitigation)
        self.panel = panel
        self.graph = build_experiment_graph(counted, sampling_of(experiment), panel, mitigation)
        self.invocation = graph_config(mitigation)
        self.kinds = {name: backend.kind for name, backend in backends.items()}

    def _usage(self) -> dict[str, float]:
        return {
            "prompt_tokens": sum(b.prompt_tokens for b in self.meters),
            "completion_tokens": sum(b.completion_tokens for b in self.meters),
            "cost_usd": sum(b.cost_usd for b in self.meters if b.spec.price),
            "priced": float(any(b.spec.price for b in self.meters)),
            "cache_hits": sum(b.hits for b in self.meters),
        }

    async def _run(self, cells: list[Cell]) -> tuple[list[ChunkRecords], list[tuple[str, str]]]:
        try:
            return [await run_chunk(self.graph, cells, self.panel, self.invocation)], []
        except Exception as exc:  # one bad cell must not drop its batch: run them one by one
            log.warning("a batch of %d cells raised (%s); running its cells one by one", len(cells), exc)
        done, errors = [], []
        for cell in cells:
            try:
                done.append(await run_chunk(self.graph, [cell], self.panel, self.invocation))
            except Exception as exc:
                errors.append((cell.key, f"{type(exc).__name__}: {exc}"))
        return done, errors

    def __call__(self, batch: Any) -> Any:
        return self.thread.run(self._call, batch)

    def _call(self, batch: Any) -> Any:
        import pyarrow as pa

        cells = [Cell.model_validate_json(text) for text in batch.column("cell").to_pylist()]
        redo = {c.key for c, flag in zip(cells, batch.column("redo").to_pylist(), strict=True) if flag}
        before, started = self._usage(), time.time()
        chunks, errors = self.loop.run_until_complete(self._run(cells))
        after = self._usage()
        store, tally = memory_store(), RunTally()
        try:
            store.add_cells(cells)
            for records in chunks:
                retried = [c.key for c in records.cells if c.key in redo]
                write_chunk(store, records, self.kinds, redo=retried)
                tally.add(records, len(retried))
            tables = batch_tables(store)
        finally:
            store.close()
        counts = tally.as_dict()
        if errors:
            counts["outcomes"][ENGINE_ERROR] = len(errors)
            counts["cells"] += len(errors)
        usage = {k: after[k] - before[k] for k in ("prompt_tokens", "completion_tokens", "cost_usd", "cache_hits")}
        usage["priced"] = after["priced"]
        redone = sorted(k for k in redo if k not in {key for key, _ in errors})
        row: dict[str, Any] = {
            "cells": [len(cells)],
            "tally": [json.dumps(counts)],
            "usage": [json.dumps(usage)],
            "redo": [json.dumps(redone)],
            "errors": [json.dumps(errors)],
            "span": [json.dumps([started, time.time()])],
        }
        for table in ("cells", "generations", "ratings", "aggregates", "critiques", "mitigation"):
            row[f"t_{table}"] = pa.array([to_ipc(tables[table]) if table in tables else None], pa.binary())
        return pa.table(row)


def _bound(experiment: Experiment) -> type[GraphActor]:
    """:class:`GraphActor` with the experiment bound into the class: it travels with the pickled class, not as a
    constructor argument in the object store (which Ray warns cannot survive an actor's restart)."""

    class BoundGraphActor(GraphActor):
        def __init__(self) -> None:
            super().__init__(experiment)

    return BoundGraphActor


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        return None
    return ray


def _init(ray: Any, address: str | None, options: dict[str, Any] | None) -> None:
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **(options or {}))
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its start/finish lines would break into the bar
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows its own (the CLI's bar), as the local engine does
    with contextlib.suppress(AttributeError):
        context.print_on_execution_start = False


def _snapshot_text(experiment: Experiment) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # as graphs.runner.write_config_snapshot
    return yaml.dump(experiment.snapshot(), Dumper=dumper, allow_unicode=True, sort_keys=False)


def _run_row(directory: ParquetRunDirectory, experiment: Experiment, summary: RunSummary | None) -> Any:
    """The ``runs`` row of this run, made by the store (status ``running`` until ``summary`` is given)."""
    store = memory_store()
    try:
        run_id = store.begin_run("run", experiment.snapshot()["config"])
        if summary is not None:
            store.finish_run(run_id, summary.status, summary.as_dict())
        with store.transaction() as db:
            db.execute("UPDATE runs SET run_id = ?", (directory.run_id,))
        return batch_tables(store, ["runs"])["runs"]
    finally:
        store.close()


def run_on_ray(
    experiment: Experiment,
    run_dir: str | Path | None = None,
    *,
    limit: int | None = None,
    address: str | None = None,
    actors: int | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int, RunSummary], None] | None = None,
    allow_config_change: Sequence[str] = (),
    ray_init: dict[str, Any] | None = None,
) -> RunSummary:
    """Generate and judge every cell of ``experiment`` not yet in the Parquet run directory, on Ray.

    Args:
        experiment: a loaded experiment.
        run_dir: the run directory, a local path or a URI pyarrow writes (``s3://bucket/run``); the config's
            ``run.output_dir`` when omitted.
        limit: only the first ``limit`` cells of the grid.
        address: the Ray cluster to join (else ``run.address``; else a local Ray instance). A Ray already
            initialised in this process is used as it is.
        actors: graph runners (Ray actors) in the pool; ``run.concurrency`` when omitted.
        on_start: called with (cells to generate, cells in the grid) before the first batch.
        on_progress: called with (cells finished, the summary so far) after each committed batch.
        allow_config_change: fingerprint fields that may differ from the run directory's.
        ray_init: more keyword arguments for ``ray.init`` (``num_cpus``, ``runtime_env``, …).

    Returns:
        The run summary, also written as the run's ``runs`` row.

    Raises:
        ConfigError: ray is not installed, or the config cannot be built.
        RunDirectoryError: another process writes the directory, or another config made it.
    """
    ray = _ray()
    if ray is None:
        raise ConfigError(experiment.path, "run.engine", "the ray engine needs ray: pip install 'tribunal[ray]'")
    config = experiment.config
    asked = str(run_dir if run_dir is not None else config.run.output_dir)
    local = "://" not in asked
    prompts = None
    if config.grid.prompts is not None and not config.stage1:
        prompts = load_grid_prompts(experiment, Path(asked))
    directory = ParquetRunDirectory(asked)
    covered = directory.open(config_fingerprint(experiment.snapshot()), allow_config_change)
    try:
        if config.stage1 is not None:
            if not local:
                raise ConfigError(experiment.path, "stage1", "a study's stage I needs a local run directory")
            asyncio.run(ensure_stage1(experiment, Path(asked)))
            prompts = load_grid_prompts(experiment, Path(asked)) if config.grid.prompts is not None else None
        cells = grid_cells(experiment, prompts, limit=limit)
        directory.write_text(CONFIG_FILENAME, _snapshot_text(experiment))
        stored = directory.store()
        try:
            done, redo = stored.completed_cells(), stored.mitigation_to_retry()
        finally:
            stored.close()
        todo = sorted((c for c in cells if c.key not in done), key=lambda c: c.model)  # homogeneous batches
        summary = RunSummary(
            run_dir=asked, cells_total=len(cells), cells_already_done=len(cells) - len(todo), config_changes=covered
        )
        if on_start:
            on_start(len(todo), len(cells))
        directory.write_run_row(_run_row(directory, experiment, None))
        started = time.perf_counter()
        try:
            if todo:
                _init(ray, address or config.run.address, ray_init)
                _drive(ray, experiment, directory, todo, redo, summary, actors, on_progress)
            if failed_status(summary, config.run.max_failed_share):
                summary.status = "failed"
        except BaseException:
            summary.status = "interrupted"
            raise
        finally:
            summary.wall_s = time.perf_counter() - started
            with contextlib.suppress(Exception):  # never mask the error that stopped the run
                directory.write_run_row(_run_row(directory, experiment, summary))
        log.info("run summary: %s", json.dumps(summary.as_dict()))
        return summary
    finally:
        directory.close()


#: The most input blocks a run's dataset is cut into (see :func:`_drive`).
_MAX_BLOCKS = 10_000


def _drive(
    ray: Any,
    experiment: Experiment,
    directory: ParquetRunDirectory,
    todo: list[Cell],
    redo: set[str],
    summary: RunSummary,
    actors: int | None,
    on_progress: Callable[[int, RunSummary], None] | None,
) -> None:
    """Stream the cells through the actor pool; commit each batch's rows as it arrives."""
    config = experiment.config
    gpus = any(m.backend in _OFFLINE_GPU_BACKENDS for m in config.models)
    # no more actors than the cluster can place at once (each asks for a CPU, or a GPU), nor than batches
    slots = int(ray.cluster_resources().get("GPU" if gpus else "CPU", 1))
    # left out of the config: one large batch per GPU actor, else the local engine's chunks; 4 actors
    chunk_size = config.run.chunk_size or (VLLM_CHUNK if gpus else DEFAULT_CHUNK)
    pool = max(1, min(actors or config.run.concurrency or DEFAULT_CONCURRENCY, -(-len(todo) // chunk_size), slots))
    items = [{"cell": c.model_dump_json(), "redo": c.key in redo} for c in todo]
    # one input block a batch, so each batch's rows reach the driver (and are committed) when it is done: Ray
    # Data buffers a task's small outputs until the task ends, and a killed driver loses what it has not committed.
    # Past _MAX_BLOCKS batches a block holds several (the driver's cost per block).
    blocks = max(1, min(-(-len(items) // chunk_size), _MAX_BLOCKS))
    dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        _bound(experiment),
        batch_size=chunk_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=pool),
        **({"num_gpus": 1} if gpus else {}),
    )
    tally, usage = RunTally(), {"prompt_tokens": 0.0, "completion_tokens": 0.0, "cost_usd": 0.0, "cache_hits": 0.0}
    priced = False
    for row in dataset.iter_rows():
        tables = {name[2:]: from_ipc(row[name]) for name in row if name.startswith("t_") and row[name] is not None}
        redone = json.loads(row["redo"])
        directory.commit(directory.next_batch(), tables, redo=redone, span=json.loads(row["span"]))
        for key, error in json.loads(row["errors"]):
            log.error("cell %s raised in the graph: %s (it is retried on the next run)", key, error)
        tally.merge(json.loads(row["tally"]))
        spent = json.loads(row["usage"])
        priced = priced or bool(spent.get("priced"))
        for key in usage:
            usage[key] += spent.get(key, 0)
        tally.into(summary)
        summary.prompt_tokens, summary.completion_tokens = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        summary.cost_usd = usage["cost_usd"] if priced else None
        summary.cache_hits = int(usage["cache_hits"])
        if on_progress:
            on_progress(int(row["cells"]), summary)
