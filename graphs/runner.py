"""The runner: expand the grid, skip what the run directory already holds, push chunks through the graph.

Up to ``run.concurrency`` chunks are in flight at once; each backend bounds its own requests. Each chunk's
results are written in one transaction as soon as they arrive, so a run stopped at any point (Ctrl-C, SIGTERM,
kill -9) resumes where it stopped when the same command runs again, with no duplicate rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.base import Backend, create_backend
from configs.loader import Experiment
from graphs.generation import build_generation_graph
from graphs.grid import Cell, expand_grid, sampling_of
from graphs.store import TranscriptStore
from graphs.transcript import CONFIG_FILENAME

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

    @property
    def cells_per_s(self) -> float:
        return self.cells_generated / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cells_per_s": round(self.cells_per_s, 3)}


ProgressCallback = Callable[[int], None]


def build_backends(experiment: Experiment) -> dict[str, Backend]:
    """One backend per configured model; resolves ``${ENV}`` references (raising ConfigError when unset)."""
    backends = {}
    for index, spec in enumerate(experiment.config.models):
        kwargs: dict[str, Any] = {}
        if spec.backend == "openai":
            kwargs = {"config_path": str(experiment.path), "field_path": f"models[{index}]"}
        backends[spec.name] = create_backend(spec, **kwargs)
    return backends


def write_config_snapshot(run_dir: Path, experiment: Experiment) -> None:
    """Write the resolved config atomically (API keys stay ``${ENV}`` references)."""
    text = yaml.safe_dump(experiment.snapshot(), allow_unicode=True, sort_keys=False)
    handle, tmp = tempfile.mkstemp(dir=run_dir, prefix=".config-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(tmp, run_dir / CONFIG_FILENAME)


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
) -> RunSummary:
    """Generate every cell of ``experiment`` not yet in ``run_dir``.

    Args:
        experiment: a loaded experiment.
        run_dir: the run directory; the config's ``run.output_dir`` when omitted.
        limit: only the first ``limit`` cells of the grid.
        backends: prebuilt backends by model name (tests, notebooks); built from the config when omitted.
        on_start: called with (cells to generate, cells in the grid) before the first chunk.
        on_progress: called with the number of cells finished after each chunk.

    Returns:
        The run summary, also stored in the ``runs`` table.
    """
    config = experiment.config
    run_dir = Path(run_dir or config.run.output_dir)
    cells = list(expand_grid(experiment))
    if limit is not None:
        cells = cells[:limit]
    backends = backends if backends is not None else build_backends(experiment)

    store = TranscriptStore.open(run_dir)
    write_config_snapshot(run_dir, experiment)
    run_id = store.begin_run("run", experiment.snapshot()["config"])
    store.add_cells(cells)
    done = store.completed_cells()
    todo = [c for c in cells if c.key not in done]
    summary = RunSummary(run_dir=str(run_dir), cells_total=len(cells), cells_already_done=len(cells) - len(todo))
    if on_start:
        on_start(len(todo), len(cells))

    graph = build_generation_graph(backends, sampling_of(experiment))
    kinds = {name: backend.kind for name, backend in backends.items()}
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(config.run.concurrency)
    started = time.perf_counter()

    async def process(chunk: list[Cell]) -> None:
        async with gate:
            state = await graph.ainvoke({"cells": chunk})
            store.write_generations(chunk, state["requests"], state["results"], kinds)
        for result in state["results"]:
            outcomes[result.outcome] += 1
            usage = getattr(result, "usage", None)
            if usage is not None:
                summary.prompt_tokens += usage.prompt_tokens or 0
                summary.completion_tokens += usage.completion_tokens or 0
        summary.cells_generated += len(chunk)
        if on_progress:
            on_progress(len(chunk))

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
        summary.wall_s = time.perf_counter() - started
        store.finish_run(run_id, summary.status, summary.as_dict())
        store.close()
        for backend in backends.values():
            with contextlib.suppress(Exception):
                await backend.aclose()
    log.info("run summary: %s", json.dumps(summary.as_dict()))
    return summary
