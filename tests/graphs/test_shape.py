"""The run's chunking when the config leaves it out: chosen from the backends it calls."""

from __future__ import annotations

import pytest

from agents.base import create_backend
from agents.cached import CachedBackend
from configs.schema import ModelSpec, RunConfig
from graphs.engines.shape import run_shape, server_capacity


def spec(name: str, backend: str = "openai", url: str | None = "http://a/v1", limit: int = 16) -> ModelSpec:
    options = {"default": "ok"} if backend == "scripted" else {}
    return ModelSpec(name=name, backend=backend, model=name, base_url=url, max_concurrency=limit, options=options)


def backends(*specs: ModelSpec) -> list[CachedBackend]:
    return [CachedBackend(create_backend(s)) for s in specs]


def test_a_server_counts_its_largest_model_once_and_servers_add_up():
    specs = [spec("gen", limit=8), spec("judge", limit=32), spec("other", url="http://b/v1", limit=4)]
    assert server_capacity(specs) == 32 + 4


@pytest.mark.parametrize(
    ("limits", "concurrency"),
    [((8, 8), 4), ((64,), 8), ((128, 16), 16), ((1000,), 125)],
)
def test_servers_only_admit_twice_their_capacity_in_chunks_of_16(limits, concurrency):
    shape = run_shape(RunConfig(), backends(*(spec(f"m{i}", limit=n) for i, n in enumerate(limits))))
    assert (shape.chunk_size, shape.concurrency) == (16, concurrency)
    assert shape.chunk_size * shape.concurrency >= 2 * max(limits)
    assert shape.reason.startswith("auto (servers only")


def test_a_local_model_among_them_keeps_the_local_default():
    shape = run_shape(RunConfig(), backends(spec("gen"), spec("script", backend="scripted", url=None)))
    assert (shape.chunk_size, shape.concurrency) == (64, 4)


def test_what_the_config_sets_is_kept_and_the_rest_chosen():
    both = run_shape(RunConfig(chunk_size=3, concurrency=2), backends(spec("gen", limit=128)))
    assert (both.chunk_size, both.concurrency, both.reason) == (3, 2, "config")
    chunk_only = run_shape(RunConfig(chunk_size=64), backends(spec("gen", limit=128)))
    assert (chunk_only.chunk_size, chunk_only.concurrency) == (64, 4)
    concurrency_only = run_shape(RunConfig(concurrency=1), backends(spec("gen", limit=128)))
    assert (concurrency_only.chunk_size, concurrency_only.concurrency) == (16, 1)
