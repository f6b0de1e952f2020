"""How many cells one graph invocation takes and how many chunks are in flight, when ``run`` leaves it to tribunal.

``run.chunk_size`` and ``run.concurrency`` are optional. What is left out is chosen from the models a run calls
(measured on the loopback stub and the embedded model; ``benchmarks/README.md``, "defaults"):

* **servers only** (``openai``, ``langchain``: every request its own call): chunks of 16, and enough of them in
  flight that twice the servers' capacity is admitted, ``max(4, ⌈2 × capacity / 16⌉)``, where a server's capacity
  is the largest ``max_concurrency`` among the models on it (same ``base_url``), summed over servers. The requests
  in flight are then bounded by the servers' own limits (one connection pool and one limiter per server,
  :mod:`agents.servers`), not by the chunks, and a reply's judges leave as it returns
  (:class:`graphs.judging.Relay`), so the number in flight stays at the servers' limits.
* **vLLM offline** among them: chunks of 512 (one batch for the engine, which schedules it on the GPU itself), one
  in flight. Not measured on a GPU yet: the README says so.
* **otherwise** (the embedded model, scripted, a batching backend): chunks of 64, 4 in flight. A chunk is one
  graph invocation, whose own bookkeeping costs about 2 ms whatever its size: at 16 cells that was a quarter of
  the scripted backend's cost per cell (``benchmarks/bench_scripted.py``: 1,705–1,827 cells/s at 16 × 4,
  2,106–2,514 at 64 × 4). A batching backend still cuts the chunk into its own batches (the embedded model's
  ``batch_size``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agents.base import Backend
from agents.openai_compat import server_address
from configs.schema import ModelSpec, RunConfig
from graphs.judging import answers_each_request

__all__ = ["RunShape", "run_shape", "server_capacity"]

#: cells per chunk for server backends (a chunk per 16 cells keeps the chunks' tails short)
DEFAULT_CHUNK = 16
DEFAULT_CONCURRENCY = 4
#: cells per chunk for local models (a graph invocation's own cost is spread over more cells)
LOCAL_CHUNK = 64
#: vLLM offline: one large batch at a time
VLLM_CHUNK = 512
VLLM_CONCURRENCY = 1
#: cells admitted per request a server can take at once
ADMIT_PER_SLOT = 2


@dataclass(frozen=True)
class RunShape:
    """The chunking a run uses, and why (``auto``: what was chosen and from what; ``config``: as configured)."""

    chunk_size: int
    concurrency: int
    reason: str


def server_capacity(specs: Iterable[ModelSpec]) -> int:
    """Requests the servers of ``specs`` take at once: per server, the largest ``max_concurrency`` of its models,
    summed over servers. OpenAI-compatible models share a server as :mod:`agents.servers` shares it (the resolved
    ``base_url`` and key, :func:`agents.openai_compat.server_address`); any other model is its own."""
    per_server: dict[object, int] = {}
    for spec in specs:
        key = server_address(spec) if spec.backend == "openai" else (spec.backend, spec.name)
        per_server[key] = max(per_server.get(key, 0), spec.max_concurrency)
    return sum(per_server.values())


def run_shape(run: RunConfig, backends: Iterable[Backend]) -> RunShape:
    """The chunk size and chunks in flight for a run calling ``backends`` (generators, judges, critic)."""
    backends = list({id(b): b for b in backends}.values())
    if run.chunk_size is not None and run.concurrency is not None:
        return RunShape(run.chunk_size, run.concurrency, "config")
    kinds = {b.kind for b in backends}
    if "vllm" in kinds:
        chunk, concurrency, why = VLLM_CHUNK, VLLM_CONCURRENCY, "vLLM offline: one large batch at a time"
    elif backends and all(answers_each_request(b) for b in backends):
        capacity = server_capacity(b.spec for b in backends)
        chunk = run.chunk_size or DEFAULT_CHUNK  # twice the capacity admitted in chunks of the size used
        concurrency = max(DEFAULT_CONCURRENCY, -(-ADMIT_PER_SLOT * capacity // chunk))
        why = f"servers only: {ADMIT_PER_SLOT} × their capacity of {capacity} requests admitted"
    else:
        chunk, concurrency, why = LOCAL_CHUNK, DEFAULT_CONCURRENCY, "local models"
    chunk = run.chunk_size or chunk
    concurrency = run.concurrency or concurrency
    return RunShape(chunk, concurrency, f"auto ({why})")
