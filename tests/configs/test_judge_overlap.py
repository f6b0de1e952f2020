"""Validation warns when a generator also judges, or a held-out rater shares the critic's model
(:mod:`configs.judge_overlap`), and the mitigation section's gate and measure panels are checked."""

from __future__ import annotations

import logging

import pytest
import yaml
from click.testing import CliRunner

from configs.base import ConfigError
from configs.judge_overlap import judge_overlap_warnings
from configs.loader import load_experiment
from configs.schema import ExperimentConfig
from graphs.cli import main
from tests.conftest import scripted_config

JUDGE_MODEL = {"name": "judge-model", "backend": "openai", "model": "Qwen/Qwen2.5-7B-Instruct",
               "base_url": "http://localhost:8000/v1"}  # fmt: skip
CLASSIFIER = {"name": "clf", "kind": "profanity-check", "dimensions": ["toxicity"]}


def _judge(name: str, model) -> dict:
    return {"name": name, "kind": "llm", "model": model, "rubric": "toxicity", "dimensions": ["toxicity"]}


def _config(raters: list[dict], models: list[dict] = (), grid_models=None, mitigation=None) -> dict:
    config = scripted_config(panel={"raters": raters})
    config["models"] += list(models)
    if grid_models is not None:
        config["grid"]["models"] = grid_models
    if mitigation is not None:
        config["mitigation"] = mitigation
    return config


def _warnings(config: dict, tmp_path) -> list[str]:
    return judge_overlap_warnings(ExperimentConfig.model_validate(config), tmp_path / "c.yaml")


def test_a_generator_that_judges_is_warned_about_by_name_and_by_model_id(tmp_path):
    # grid.models unset: every model generates, the judge model too
    (message,) = _warnings(_config([_judge("j", "judge-model")], [JUDGE_MODEL]), tmp_path)
    assert message.startswith(f"{tmp_path / 'c.yaml'}: panel.raters[0].model: rater 'j' judges with 'judge-model'")
    assert "also generates (judge-model)" in message and "\n" not in message
    # judge only: quiet
    assert _warnings(_config([_judge("j", "judge-model")], [JUDGE_MODEL], grid_models=["script"]), tmp_path) == []
    # an inline judge with a generator's model id is that generator, whatever its backend or server
    vllm = {"name": "qwen", "backend": "vllm", "model": "qwen/qwen2.5-7b-instruct"}
    inline = _judge("j", {**JUDGE_MODEL, "name": "inline"})
    (message,) = _warnings(_config([inline], [vllm], grid_models=["qwen"]), tmp_path)
    assert "rater 'j' judges with 'inline', which also generates (qwen)" in message


def test_a_held_out_rater_on_the_critics_model_is_warned_about(tmp_path):
    critic = {"name": "critic", "backend": "openai", "model": "gpt-4o", "api_key": "${OPENAI_API_KEY}"}
    mitigation = {"gate": ["clf"], "measure": ["j"], "critic": "critic"}
    config = _config([CLASSIFIER, _judge("j", "critic")], [critic], grid_models=["script"], mitigation=mitigation)
    (message,) = _warnings(config, tmp_path)
    assert message.startswith(f"{tmp_path / 'c.yaml'}: mitigation.measure: held-out rater 'j' (panel.raters[1])")
    assert "the loop's critic" in message
    # the same judge in the gate is the seed's design (the evaluator steers): no warning
    config["mitigation"] = {"gate": ["j"], "measure": ["clf"], "critic": "critic"}
    assert _warnings(config, tmp_path) == []


@pytest.mark.parametrize(
    ("mitigation", "field", "problem"),
    [
        ({"gate": ["clf"], "measure": ["clf"]}, "mitigation", "clf both gate and measure"),
        ({"raters": ["clf"], "gate": ["clf"]}, "mitigation", "raters is the older name of gate"),
        ({"gate": ["clf"], "measure": ["nope"]}, "mitigation.measure[0]", "'nope' is not a panel rater"),
        ({"measure": ["clf"]}, "mitigation.measure", "every panel rater is held out"),
        ({"gate": []}, "mitigation.gate", "at least 1 item"),
    ],
)
def test_gate_and_measure_panels_are_checked(tmp_path, mitigation, field, problem):
    path = tmp_path / "c.yaml"
    config = _config([CLASSIFIER], mitigation={"critic": "script", **mitigation})
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert str(caught.value).startswith(f"{path}: {field}: ") and problem in str(caught.value)


def test_raters_keeps_meaning_gate(tmp_path):
    config = ExperimentConfig.model_validate(_config([CLASSIFIER], mitigation={"raters": ["clf"], "critic": "script"}))
    assert config.mitigation.gate_raters == ["clf"] and config.mitigation.measure is None


def test_validate_prints_the_warning_and_accepts_the_config(tmp_path, caplog):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config([_judge("j", "script")])), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="configs.loader"):
        load_experiment(path)
    assert any("rater 'j' judges with 'script', which also generates" in r.getMessage() for r in caplog.records)
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 0
