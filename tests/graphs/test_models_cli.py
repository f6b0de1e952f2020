"""`tribunal models list` and `tribunal models try`."""

from __future__ import annotations

from click.testing import CliRunner

from graphs.cli import main
from tests.conftest import scripted_config


def test_models_list_names_every_backend():
    result = CliRunner().invoke(main, ["models", "list"], terminal_width=200)
    assert result.exit_code == 0
    for kind in ("embedded", "openai", "vllm", "langchain", "scripted"):
        assert kind in result.output


def test_models_try_prints_one_reply(write_config):
    ad_hoc = CliRunner().invoke(main, ["models", "try", "scripted", "hello there"])
    assert ad_hoc.exit_code == 0 and ad_hoc.stdout.strip() == "OK."
    path = write_config(scripted_config())
    named = CliRunner().invoke(main, ["models", "try", "script", "Say something negative", "--config", str(path)])
    assert named.exit_code == 0 and named.stdout.strip() == "They are often misunderstood."


def test_models_try_rejects_unknown_models(write_config):
    unknown = CliRunner().invoke(main, ["models", "try", "nope", "x"])
    assert unknown.exit_code == 2 and "unknown backend 'nope'" in unknown.stderr
    missing = CliRunner().invoke(main, ["models", "try", "gpt", "x", "--config", str(write_config(scripted_config()))])
    assert missing.exit_code == 2 and "no model named 'gpt'" in missing.stderr
