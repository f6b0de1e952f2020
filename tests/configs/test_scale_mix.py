"""Validation warns when a study's panel scores the dimension it measures on different kinds of scale
(:func:`configs.loader.scale_mix_warnings`), and stays quiet when the panel is on one kind."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from configs.loader import load_experiment, scale_mix_warnings
from configs.schema import ExperimentConfig
from graphs.cli import main
from tests.conftest import ROOT, scripted_config

CLASSIFIER = {"name": "clf", "kind": "profanity-check", "dimensions": ["toxicity"]}
JUDGE = {"name": "judge", "kind": "llm", "model": "script", "rubric": "toxicity", "dimensions": ["toxicity"]}


def _config(raters: list[dict], **extra) -> ExperimentConfig:
    return ExperimentConfig.model_validate(scripted_config(panel={"raters": raters}, **extra))


def test_probability_and_rating_scale_on_the_measured_dimension_warn(tmp_path):
    path = tmp_path / "c.yaml"
    (message,) = scale_mix_warnings(_config([CLASSIFIER, JUDGE], study="persona_toxicity"), path)
    assert message.startswith(f"{path}: panel.raters: the 'toxicity' scores mix kinds of scale")
    assert "probability: clf; rating: judge" in message and "3 of 1–5" in message
    assert "leaves out toxicity probability and expected maximum toxicity" in message and "\n" not in message


def test_one_kind_of_scale_or_other_dimensions_do_not_warn(tmp_path):
    path = tmp_path / "c.yaml"
    binary_judge = {**JUDGE, "rubric": "refusal", "dimensions": None, "name": "refusal-judge"}
    patterns = {"name": "patterns", "kind": "refusal-patterns"}
    assert scale_mix_warnings(_config([CLASSIFIER]), path) == []
    # A binary judge and a pattern detector both score refusal as 0/1 (probability-like); neither rates toxicity.
    assert scale_mix_warnings(_config([CLASSIFIER, binary_judge, patterns]), path) == []
    # The judge rates insult only: the toxicity scores stay probabilities.
    assert scale_mix_warnings(_config([CLASSIFIER, {**JUDGE, "dimensions": ["insult"]}]), path) == []
    # Unknown (third-party) kinds are not guessed at.
    assert scale_mix_warnings(_config([CLASSIFIER, {"name": "x", "kind": "mypkg.raters:Mine"}]), path) == []


def test_the_mitigation_dimension_and_rubric_files_count(tmp_path):
    rubric = tmp_path / "harm.yaml"
    rubric.write_text(
        yaml.safe_dump({"id": "harm", "kind": "scale", "scale_min": 1, "scale_max": 7, "dimensions": [{"id": "harm"}]})
    )
    raters = [{**JUDGE, "rubric": "harm.yaml", "dimensions": None}, {**CLASSIFIER, "dimensions": ["harm"]}]
    mitigation = {"critic": "script", "dimension": "harm"}
    (message,) = scale_mix_warnings(_config(raters, mitigation=mitigation), tmp_path / "c.yaml")
    assert "the 'harm' scores mix kinds of scale" in message and "leaves out" not in message


def test_load_experiment_logs_the_warning(tmp_path, caplog):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(scripted_config(panel={"raters": [CLASSIFIER, JUDGE]})), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="configs.loader"):
        load_experiment(path)
    # its judge's model also generates, which is warned about too (tests/configs/test_judge_overlap.py)
    mixed = [r for r in caplog.records if "mix kinds of scale" in r.getMessage()]
    assert [r.name for r in mixed] == ["configs.loader"]
    # `tribunal validate` still accepts the config: it is valid, only probably not what was meant.
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 0


@pytest.mark.parametrize(
    ("name", "mixed"),
    [
        ("ptp_multilingual.yaml", False),
        ("ptp_multilingual_tiny.yaml", False),
        ("quickstart.yaml", True),
        ("persona_toxicity_zh.yaml", False),
        ("value_inertia.yaml", False),
    ],
)
def test_shipped_study_configs(name: str, mixed: bool, caplog) -> None:
    path = Path(ROOT / "configs" / name)
    with caplog.at_level(logging.WARNING, logger="configs.loader"):
        load_experiment(path)
    assert bool(caplog.records) is mixed, [r.getMessage() for r in caplog.records]
