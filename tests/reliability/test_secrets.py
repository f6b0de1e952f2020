"""A canary API key set in the environment reaches the servers and nothing else.

The generator, one judge and the critic talk to a server that echoes the ``Authorization`` header back in its
error bodies (401 and 500, the way some gateways do); two more judges talk to the stub server. The run goes
through the real CLI in a subprocess with ``-vv`` (debug logs of tribunal, openai and httpx), then ``tribunal
export`` and ``tribunal report``. The canary may appear in no file, no log line and no message.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphs.cli import main
from tests.helpers.stub_server import StubConfig, StubServer
from tests.reliability.conftest import api_model, query, stub_config


class EchoServer(ThreadingHTTPServer):
    """An OpenAI-compatible server that leaks the caller's key in its error bodies."""

    daemon_threads = True
    # socketserver's default backlog of 5 overflows when the client opens a server's whole limit of connections at
    # once (HTTP/1.0: a connection a request), and the kernel then resets the connections it could not queue
    request_queue_size = 128

    def __init__(self, echo_header: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.echo_header = echo_header
        self.seen: list[str] = []
        self.echoed = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _EchoHandler(BaseHTTPRequestHandler):
    server: EchoServer

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        auth = self.headers.get("authorization", "")
        self.server.seen.append(auth)
        text = "\n".join(m["content"] for m in body["messages"])
        judged_toxic = body.get("response_format") is not None and "toxic about" in text
        if "Muslims" in text or "immigrants" in text or judged_toxic:
            status = 401 if "Muslims" in text else 500
            self.server.echoed += 1
            payload = {"error": {"message": f"Incorrect API key provided: {auth} ({auth.split()[-1]})", "type": "x"}}
        else:
            status = 200
            content = '{"rationale": "fine", "toxicity": 5}' if body.get("response_format") else "A calm reply."
            payload = {
                "id": "chatcmpl-echo",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
            }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if self.server.echo_header:
            self.send_header("x-echo-key", auth)
        self.end_headers()
        self.wfile.write(data)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _run_with_canary(
    tmp_path: Path, write_config, canary: str, echo: EchoServer
) -> tuple[Path, subprocess.CompletedProcess]:
    """``tribunal -vv run`` in a subprocess: generator, judge_c and critic on ``echo``, two judges on the stub."""
    echo.thread.start()
    try:
        with StubServer(StubConfig(seed=1)) as stub:
            config = stub_config(stub.base_url, languages=("en",), threshold=0.3, chunk_size=8, concurrency=4)
            key = {"api_key": "${TRIBUNAL_CANARY_KEY}", "max_retries": 1}
            config["models"] = [
                api_model("gen", echo.base_url, **key),
                api_model("judge_a", stub.base_url, **key),
                api_model("judge_b", stub.base_url, **key),
                api_model("judge_c", echo.base_url, **key),
                api_model("critic", echo.base_url, **key),
            ]
            config["grid"].update(persona_ids=["good_person"], template_ids=["generic", "toxic"])
            path = write_config(config)
            run = tmp_path / "run"
            env = {**os.environ, "TRIBUNAL_CANARY_KEY": canary}
            ran = subprocess.run(
                [sys.executable, "-m", "graphs.cli", "-vv", "run", str(path), "--out", str(run), "--no-progress"],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            assert ran.returncode == 0, ran.stderr[-3000:]
    finally:
        echo.shutdown()
    return run, ran


@pytest.mark.slow
def test_canary_key_is_never_written(tmp_path, write_config, monkeypatch):
    canary = f"sk-canary-{secrets.token_hex(12)}"
    monkeypatch.setenv("TRIBUNAL_CANARY_KEY", canary)
    echo = EchoServer()
    run, ran = _run_with_canary(tmp_path, write_config, canary, echo)

    # the key was really used and really echoed back, so the masking was exercised
    assert echo.seen and all(auth == f"Bearer {canary}" for auth in echo.seen)
    assert echo.echoed > 0
    masked = query(run, "SELECT error FROM generations WHERE error IS NOT NULL")
    assert masked and all("***" in error for (error,) in masked)
    assert query(run, "SELECT COUNT(*) FROM ratings WHERE rationale LIKE '%***%'")[0][0] > 0
    assert "DEBUG" in ran.stderr  # -vv really logged

    outputs = [ran.stdout, ran.stderr]
    runner = CliRunner()
    for args in (
        ["export", str(run), "--format", "jsonl"],
        ["export", str(run), "--format", "parquet", "--out", str(tmp_path / "parquet")],
        ["report", str(run)],
        ["analyze", str(run), "--json", str(tmp_path / "tables.json")],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output + result.stderr
        outputs += [result.output, result.stderr]
    written = _files(run) + _files(tmp_path / "parquet") + [tmp_path / "tables.json"]
    assert {p.name for p in written} >= {"transcripts.sqlite", "config.yaml", "report.html", "generations.jsonl"}
    leaks = [str(p) for p in written if canary.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(outputs) if canary in text]
    assert leaks == []
    # and the key's variable name, not its value, is what the run directory remembers
    assert "${TRIBUNAL_CANARY_KEY}" in (run / "config.yaml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_canary_key_echoed_in_a_response_header_stays_out_of_debug_logs(tmp_path, write_config, monkeypatch):
    canary = f"sk-canary-{secrets.token_hex(12)}"
    monkeypatch.setenv("TRIBUNAL_CANARY_KEY", canary)
    _, ran = _run_with_canary(tmp_path, write_config, canary, EchoServer(echo_header=True))
    assert canary not in ran.stderr + ran.stdout


# ------------------------------------------------------------------------ credentials outside api_key (item 11)
LITERAL = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ({"backend": "openai", "options": {"extra_body": {"api_key": LITERAL}}}, "options.extra_body.api_key"),
        (
            {"backend": "openai", "options": {"extra_body": {"Authorization": "Bearer xyz"}}},
            "options.extra_body.Authorization",
        ),  # fmt: skip
        (
            {"backend": "openai", "options": {"extra_body": {"auth": {"password": "hunter2"}}}},
            "options.extra_body.auth.password",
        ),  # fmt: skip
        ({"backend": "openai", "base_url": f"http://user:{LITERAL}@127.0.0.1:9/v1"}, "base_url"),
        ({"backend": "openai", "base_url": "http://token@127.0.0.1:9/v1"}, "base_url"),
        (
            {"backend": "langchain", "options": {"class": "m:C", "kwargs": {"openai_api_key": "plain"}}},
            "options.kwargs.openai_api_key",
        ),  # fmt: skip
        (
            {"backend": "langchain", "options": {"class": "m:C", "kwargs": {"client_options": [LITERAL]}}},
            "options.kwargs.client_options[0]",
        ),  # fmt: skip
        ({"backend": "vllm", "options": {"hf_token": "hf_abcdefghijklmnopqrstuvwxyz"}}, "options.hf_token"),
    ],
    ids=[
        "extra-body-key",
        "authorization",
        "nested-password",
        "url-userinfo",
        "url-user",
        "lc-kwarg-name",
        "lc-kwarg-value",
        "vllm-token",
    ],  # fmt: skip
)
def test_literal_credentials_anywhere_in_a_model_are_refused(write_config, model, field):
    from configs.loader import ConfigError, load_experiment
    from tests.conftest import scripted_config

    config = scripted_config()
    config["models"].append({"name": "leaky", "model": "m", **model})
    config["grid"]["models"] = ["script"]
    path = write_config(config)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    error = caught.value
    assert error.field_path == f"models[1].{field}"
    assert "${" in error.problem and "\n" not in str(error)
    assert LITERAL not in str(error) and "hunter2" not in str(error) and "xyz" not in str(error)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and LITERAL not in result.output + result.stderr


def test_credentials_in_rater_options_are_refused_too():
    from pydantic import ValidationError

    from configs.schema import RaterSpec

    with pytest.raises(ValidationError) as caught:
        RaterSpec(name="r", kind="somepkg:Rater", options={"token": LITERAL})
    assert LITERAL not in str(caught.value)


def test_env_references_are_accepted_and_resolved_only_at_run_time(monkeypatch):
    from agents.base import create_backend
    from configs.schema import ModelSpec

    spec = ModelSpec(
        name="m",
        backend="openai",
        model="x",
        base_url="${TRIBUNAL_TEST_URL}",
        options={"extra_body": {"api_key": "${TRIBUNAL_TEST_EXTRA_KEY}", "top_k": 5}},
    )
    assert spec.options["extra_body"]["api_key"] == "${TRIBUNAL_TEST_EXTRA_KEY}"
    monkeypatch.setenv("TRIBUNAL_TEST_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TRIBUNAL_TEST_EXTRA_KEY", LITERAL)
    backend = create_backend(spec)
    assert backend._extra_body["api_key"] == LITERAL  # what is sent, never what is stored
    assert LITERAL in backend._secrets  # masked if a server echoes it
    assert spec.model_dump()["options"]["extra_body"]["api_key"] == "${TRIBUNAL_TEST_EXTRA_KEY}"


@pytest.mark.parametrize(
    "options",
    [{"max_tokens_param": "max_completion_tokens"}, {"extra_body": {"top_k": 20, "stop_token_ids": [1, 2]}}],
)
def test_ordinary_options_that_mention_tokens_are_not_credentials(options):
    from configs.schema import ModelSpec

    assert ModelSpec(name="m", backend="openai", model="x", options=options).options == options


def test_an_unset_variable_in_extra_body_names_its_field():
    from agents.base import create_backend
    from configs.loader import ConfigError
    from configs.schema import ModelSpec

    spec = ModelSpec(
        name="m", backend="openai", model="x", options={"extra_body": {"api_key": "${TRIBUNAL_TEST_UNSET_KEY}"}}
    )
    with pytest.raises(ConfigError) as caught:
        create_backend(spec, config_path="c.yaml", field_path="models[0]")
    assert caught.value.field_path == "models[0].options.extra_body.api_key"
    assert "TRIBUNAL_TEST_UNSET_KEY is not set" in caught.value.problem
