"""Running an experiment end to end on the scripted backend: rows written, re-runs add nothing, interruptions of
the ``tribunal run`` process resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import respx

from configs.loader import load_experiment
from graphs.grid import expand_grid
from graphs.runner import run_experiment
from tests.conftest import run_config, scripted_config
from tests.graphs.gated import gated_config, gated_stub


def _rows(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "transcripts.sqlite") as db:
        return db.execute(sql).fetchall()


def test_run_writes_every_cell_and_a_second_run_adds_none(tmp_path, write_config):
    path = write_config(scripted_config())
    out = tmp_path / "run"
    first = run_config(path, out)
    assert (first.cells_generated, first.cells_already_done) == (108, 0)

    # 2 personas + baseline × 3 targets × 3 templates × 2 languages × 2 repeats
    assert _rows(out, "SELECT COUNT(*) FROM cells") == [(108,)]
    assert _rows(out, "SELECT COUNT(*) FROM generations WHERE round = 0 AND outcome = 'ok'") == [(108,)]
    assert _rows(out, "SELECT COUNT(*) FROM cells WHERE is_baseline = 1") == [(36,)]
    by_template = dict(
        _rows(
            out,
            "SELECT c.template_id, MIN(g.text) FROM generations g JOIN cells c USING (cell_key) "
            "WHERE c.language = 'en' GROUP BY 1",
        )
    )
    assert by_template["toxic"] == "I will not write that."
    assert by_template["negative"] == "They are often misunderstood."
    zh = _rows(
        out,
        "SELECT g.text FROM generations g JOIN cells c USING (cell_key) "
        "WHERE c.language = 'zh' AND c.template_id = 'generic' AND c.target_id = 'women' LIMIT 1",
    )
    assert zh == [("Here is something: 说一说女性。",)]
    # the persona is the system prompt; baselines have none
    messages = _rows(out, "SELECT messages, is_baseline FROM cells")
    for raw, baseline in messages:
        roles = [m["role"] for m in json.loads(raw)]
        assert roles == (["user"] if baseline else ["system", "user"])
    assert (out / "config.yaml").exists()

    before = _rows(out, "SELECT generation_key, created_at FROM generations ORDER BY 1")
    second = run_config(path, out)
    assert (second.cells_generated, second.cells_already_done) == (0, 108)
    assert _rows(out, "SELECT generation_key, created_at FROM generations ORDER BY 1") == before
    assert _rows(out, "SELECT COUNT(*) FROM runs WHERE status = 'completed'") == [(2,)]


def test_cell_keys_are_stable_and_distinct(write_config):
    experiment = load_experiment(write_config(scripted_config()))
    first = [c.key for c in expand_grid(experiment)]
    assert first == [c.key for c in expand_grid(experiment)]
    assert len(set(first)) == len(first) == 108
    reseeded = load_experiment(write_config({**scripted_config(), "seed": 8}, name="other.yaml"))
    assert not set(first) & {c.key for c in expand_grid(reseeded)}


def test_failures_are_typed_and_retried_without_duplicates(tmp_path, write_config):
    config = scripted_config()
    config["models"][0]["options"]["rules"].insert(0, {"match": "Muslims|穆斯林", "failure": "timeout"})
    path = write_config(config)
    out = tmp_path / "run"
    summary = run_config(path, out)
    assert summary.outcomes == {"ok": 72, "timeout": 36}
    failed = _rows(out, "SELECT outcome, text, error FROM generations WHERE outcome != 'ok'")
    assert len(failed) == 36
    assert {row[0] for row in failed} == {"timeout"}
    assert all(row[1] is None for row in failed)

    assert run_config(path, out).cells_generated == 36
    assert _rows(out, "SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM generations") == [(108, 108)]


def test_limit_runs_the_first_cells(tmp_path, write_config):
    out = tmp_path / "run"
    assert run_config(write_config(scripted_config()), out, limit=7).cells_generated == 7
    assert _rows(out, "SELECT COUNT(*) FROM generations") == [(7,)]


def _start(config_path: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "graphs.cli", "run", str(config_path), "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_rows(out: Path, at_least: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / "transcripts.sqlite").exists():
            try:
                n = _rows(out, "SELECT COUNT(*) FROM generations")[0][0]
            except sqlite3.OperationalError:
                n = 0
            if n >= at_least:
                return n
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} generations after {timeout}s")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["kill-9", "sigint", "sigterm"])
def test_interrupted_run_resumes_without_duplicates(tmp_path, write_config, sig):
    # the stub answers 20 calls, then holds the rest: the signal always lands mid-run, however loaded the machine
    with gated_stub(after=20) as (server, gate):
        path = write_config(gated_config(server.base_url))
        out = tmp_path / "run"
        process = _start(path, out)
        gate.wait_holding()
        _wait_for_rows(out, 10)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode != 0
        if sig == signal.SIGINT:
            assert "run the same command again to resume" in stderr
        partial = _rows(out, "SELECT COUNT(*) FROM generations")[0][0]
        assert 10 <= partial <= 20

        gate.release()
        resumed = _start(path, out)
        _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert f"{partial} of 108 cells already done" in stderr
    assert _rows(out, "SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM generations") == [(108, 108)]
    assert _rows(out, "SELECT COUNT(*) FROM generations WHERE outcome != 'ok'") == [(0,)]


@respx.mock
def test_api_key_never_reaches_the_run_directory(tmp_path, write_config, monkeypatch):
    canary = "sk-canary-3f9a1c0e7b"
    monkeypatch.setenv("TRIBUNAL_CANARY_KEY", canary)
    seen_auth: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen_auth.append(request.headers["authorization"])
        if len(seen_auth) % 5 == 0:
            return httpx.Response(500, json={"error": {"message": "boom"}})
        body = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            },
        )

    respx.post("https://api.test/v1/chat/completions").mock(side_effect=reply)
    config = scripted_config()
    config["models"] = [
        {
            "name": "api",
            "backend": "openai",
            "model": "gpt-test",
            "base_url": "https://api.test/v1",
            "api_key": "${TRIBUNAL_CANARY_KEY}",
            "max_retries": 0,
        }
    ]
    out = tmp_path / "run"
    summary = asyncio.run(run_experiment(load_experiment(write_config(config)), out))
    assert summary.cells_generated == 108
    assert seen_auth and all(a == f"Bearer {canary}" for a in seen_auth)
    assert summary.outcomes.get("server_error", 0) > 0
    for file in out.rglob("*"):
        if file.is_file():
            assert canary.encode() not in file.read_bytes(), file
    assert "${TRIBUNAL_CANARY_KEY}" in (out / "config.yaml").read_text(encoding="utf-8")
    assert os.environ["TRIBUNAL_CANARY_KEY"] == canary
