"""The ``stage1`` section is a typed part of the experiment schema; the config package has no import cycle and
imports no private name across its modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.loader import load_experiment
from configs.schema import ExperimentConfig, stage1_dir
from configs.stage1 import Stage1Section
from tests.conftest import ROOT
from tests.helpers.imports import import_cycle, private_imports


def test_the_stage1_field_is_a_typed_section():
    assert ExperimentConfig.model_fields["stage1"].annotation == Stage1Section | None
    experiment = load_experiment(ROOT / "configs" / "demo_safetybench_tiny.yaml")
    assert isinstance(experiment.config.stage1, Stage1Section)
    assert experiment.config.stage1.classifier.model == "keyword-classifier"
    assert stage1_dir(experiment.config) == Path("runs/demo_safetybench_tiny/stage1")
    assert stage1_dir(experiment.config, "elsewhere") == Path("elsewhere/stage1")


def test_the_config_package_has_no_import_cycle():
    assert import_cycle(ROOT, "configs") is None


def test_the_config_package_imports_no_private_name_of_another_module():
    assert private_imports(ROOT, "configs") == []


def test_classifier_options_are_checked_like_a_judges(tmp_path):
    from pydantic import ValidationError

    from configs.stage1 import ClassifierConfig

    with pytest.raises(ValidationError, match="temperature"):
        ClassifierConfig(model="m", options={"temperature": float("nan")})
    with pytest.raises(ValidationError, match="unknown field|Extra inputs"):
        ClassifierConfig(model="m", options={"temprature": 0.0})
    assert ClassifierConfig(model="m", options={"max_tokens": 64}).options == {"max_tokens": 64}
