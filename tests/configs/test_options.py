"""Backend and rater ``options`` are typed: each kind declares a pydantic model, checked when the config is
validated, so a bad option is the usual one-line ``FILE: FIELD: PROBLEM`` error (issue 17, item 10)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from agents.base import backend_class
from configs.loader import ConfigError, load_experiment
from configs.options import BACKEND_OPTIONS, RATER_OPTIONS
from configs.schema import ModelSpec, RaterSpec
from graphs.cli import main
from raters.registry import rater_class
from tests.conftest import scripted_config
from tests.reliability.conftest import api_model


def _with_judge(**rater: Any) -> dict[str, Any]:
    config = scripted_config()
    config["models"].append(api_model("judge", "http://127.0.0.1:9/v1"))
    config["panel"] = {"raters": [{"name": "j", "kind": "llm", "model": "judge", "rubric": "toxicity", **rater}]}
    return config


def _error(write_config, config: dict[str, Any]) -> ConfigError:
    path = write_config(config)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.path == str(path)
    assert "\n" not in str(caught.value)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert [line for line in result.stderr.splitlines() if line.strip()] == [f"error: {caught.value}"]
    return caught.value


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"temperature": float("nan")}, "temperature", "finite"),
        ({"temperature": -1}, "temperature", "greater than or equal to 0"),
        ({"mode": "vibes"}, "mode", "'json' or 'logprobs'"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"top_logprobs": "many"}, "top_logprobs", "integer"),
        ({"threshold": 2}, "threshold", "less than or equal to 1"),
        ({"temprature": 0.2}, "temprature", "unknown field"),
    ],
)
def test_llm_judge_options_are_checked_by_validate(write_config, options, field, words):
    error = _error(write_config, _with_judge(options=options))
    assert error.field_path == f"panel.raters[0].options.{field}"
    assert words in error.problem


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"retry_max_wait_s": -1}, "retry_max_wait_s", "greater than or equal to 0"),
        ({"retry_base_wait_s": float("inf")}, "retry_base_wait_s", "finite"),
        ({"max_tokens_param": "tokens"}, "max_tokens_param", "max_completion_tokens"),
        ({"extra_body": {"top_k": float("nan")}}, "extra_body.top_k", "finite"),
        ({"extra_body": "top_k=5"}, "extra_body", "dictionary"),
        ({"retries": 3}, "retries", "unknown field"),
    ],
)
def test_openai_model_options_are_checked_by_validate(write_config, options, field, words):
    config = _with_judge()
    config["models"][1]["options"] = options
    error = _error(write_config, config)
    assert error.field_path == f"models[1].options.{field}"
    assert words in error.problem


def test_an_infinite_price_is_refused(write_config):
    config = _with_judge()
    config["models"][1]["price"] = {"prompt": float("inf"), "completion": 1.0}
    error = _error(write_config, config)
    assert error.field_path == "models[1].price.prompt" and "finite" in error.problem


@pytest.mark.parametrize(
    ("backend", "options", "field"),
    [
        ("embedded", {"dtype": "int4"}, "dtype"),
        ("embedded", {"batch_size": 0}, "batch_size"),
        ("scripted", {"delay_s": -1}, "delay_s"),
        ("scripted", {"rules": [{"match": "x"}]}, "rules[0]"),
        ("scripted", {"rules": [{"match": "(", "reply": "x"}]}, "rules[0].match"),
        ("vllm", {"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ("vllm", {"max_model_len": float("nan")}, "max_model_len"),
        ("langchain", {"class": "no colon"}, "class"),
        ("langchain", {"class": "m:C", "kwargs": {"temperature": float("nan")}}, "kwargs.temperature"),
    ],
)
def test_every_builtin_backend_checks_its_options(write_config, backend, options, field):
    config = scripted_config()
    config["models"].append({"name": "other", "backend": backend, "model": "m", "options": options})
    config["grid"]["models"] = ["script"]
    error = _error(write_config, config)
    assert error.field_path == f"models[1].options.{field}"


@pytest.mark.parametrize(
    ("kind", "options", "field"),
    [
        ("refusal-patterns", {"patterns": 5}, "patterns"),
        ("refusal-patterns", {"pattern": "x.yaml"}, "pattern"),
        ("prototype", {"k": 0}, "k"),
        ("prototype", {"temperature": float("inf")}, "temperature"),
        ("hf-classifier", {"path": "/m"}, "labels"),
        ("hf-classifier", {"path": "/m", "labels": {"toxic": "toxicity"}, "batch_size": -2}, "batch_size"),
        ("moral-probe", {"scale": 5}, "scale"),
        ("profanity-check", {"threshold": 0.5}, "threshold"),
    ],
)
def test_every_builtin_rater_checks_its_options(write_config, kind, options, field):
    config = scripted_config()
    config["panel"] = {"raters": [{"name": "r", "kind": kind, "options": options}]}
    error = _error(write_config, config)
    assert error.field_path == f"panel.raters[0].options.{field}"


def test_valid_options_pass_and_keep_their_written_form():
    spec = ModelSpec(name="m", backend="openai", model="x", options={"retry_max_wait_s": 5, "extra_body": {"k": 1}})
    assert spec.options == {"retry_max_wait_s": 5, "extra_body": {"k": 1}}
    rater = RaterSpec(name="r", kind="llm", model="m", options={"mode": "logprobs", "temperature": 0})
    assert rater.options == {"mode": "logprobs", "temperature": 0}


def test_options_of_unknown_kinds_are_left_to_their_class():
    # a module:Class rater or an entry-point backend declares its own Options, checked when it is built
    assert RaterSpec(name="r", kind="somepkg.raters:Mine", options={"anything": [1, 2]}).options


@pytest.mark.parametrize("kind", sorted(BACKEND_OPTIONS))
def test_builtin_backend_classes_declare_the_schema_the_config_checks(kind):
    assert backend_class(kind).Options is BACKEND_OPTIONS[kind]


@pytest.mark.parametrize("kind", sorted(RATER_OPTIONS))
def test_builtin_rater_classes_declare_the_schema_the_config_checks(kind):
    assert rater_class(kind).Options is RATER_OPTIONS[kind]


def test_a_plugin_declaring_options_is_checked_when_built():
    from pydantic import BaseModel, ConfigDict

    from agents.base import Backend, create_backend, register_backend

    class PluginOptions(BaseModel):
        model_config = ConfigDict(extra="forbid")
        level: int = 1

    @register_backend("test-plugin-options")
    class PluginBackend(Backend):
        Options = PluginOptions

        async def generate(self, requests):  # pragma: no cover - never called
            return []

    from agents.base import BACKENDS

    try:
        spec = ModelSpec.model_construct(name="p", backend="test-plugin-options", options={"level": "high"})
        with pytest.raises(ConfigError) as caught:
            create_backend(spec, config_path="c.yaml", field_path="models[3]")
        assert caught.value.field_path == "models[3].options.level"
        built = create_backend(spec.model_copy(update={"options": {"level": 3}}))
        assert built.options.level == 3
    finally:
        BACKENDS.classes.pop("test-plugin-options", None)
        assert PluginBackend


def test_scripted_failure_kinds_are_the_backends_failure_kinds():
    from agents.types import FailureKind
    from configs.options import SCRIPTED_FAILURES

    assert set(SCRIPTED_FAILURES) == {k.value for k in FailureKind}
