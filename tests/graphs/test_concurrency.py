"""The runner keeps an API server busy: hundreds of requests in flight against the loopback stub server."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from configs.loader import load_experiment
from graphs.runner import run_experiment
from tests.conftest import scripted_config
from tests.helpers.stub_server import Latency, StubConfig, StubServer


def test_runner_drives_200_concurrent_requests_without_errors(tmp_path, write_config):
    with StubServer(StubConfig(latency=Latency(kind="fixed", a=0.5), default_reply="A measured reply.")) as server:
        config = scripted_config()
        config["models"] = [
            {
                "name": "api",
                "backend": "openai",
                "model": "stub-model",
                "base_url": server.base_url,
                "max_concurrency": 256,
                "max_retries": 0,
                "timeout_s": 30,
                "price": {"prompt": 1.5, "completion": 6.0},
            }
        ]
        config["grid"]["repeats"] = 4  # 3 personas (with baseline) × 3 × 3 × 2 languages × 4 = 216 cells
        config["run"] = {"chunk_size": 1, "concurrency": 256}
        started = time.perf_counter()
        summary = asyncio.run(run_experiment(load_experiment(write_config(config)), tmp_path / "run"))
        elapsed = time.perf_counter() - started
        stats = server.stats

    assert summary.cells_generated == 216
    assert summary.outcomes == {"ok": 216}
    assert stats["chat_completions"] == 216
    assert stats["peak_open_connections"] >= 200, stats
    # 216 requests of 0.5 s each: in flight together they take a few seconds, one after another 108 s
    assert elapsed < 30, elapsed
    with sqlite3.connect(tmp_path / "run" / "transcripts.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM generations").fetchone() == (216, 216)
        prompt, completion = db.execute("SELECT SUM(prompt_tokens), SUM(completion_tokens) FROM generations").fetchone()
    # the cost estimate is the configured price times the tokens the server reported
    assert prompt > 0 and completion > 0
    assert summary.cost_usd == pytest.approx((prompt * 1.5 + completion * 6.0) / 1e6)
