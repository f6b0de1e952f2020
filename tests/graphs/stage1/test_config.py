"""Reading stage I configs: standalone ones and a study config's ``stage1`` section (:mod:`graphs.stage1.config`)."""

from __future__ import annotations

import pytest

from configs.loader import ConfigError
from configs.stage1 import Stage1Config
from graphs.stage1 import load_stage1_config
from tests.conftest import ROOT
from tests.graphs.stage1.scripted import stage1_config_data
from tests.helpers.prompt_grids import study_config, write_yaml


@pytest.mark.parametrize("name", ["demo_safetybench.yaml", "demo_safetybench_tiny.yaml"])
def test_shipped_configs_validate(name):
    config = load_stage1_config(ROOT / "configs" / name)
    assert config.expansion is not None and config.dedup.max_hamming == 10


def test_load_stage1_config_names_file_and_field(tmp_path):
    with pytest.raises(ConfigError, match=r"bad.yaml: expansion: target_count \(1\) is below min_count \(2\)"):
        expansion = {"model": "writer", "target_count": 1, "min_count": 2}
        load_stage1_config(write_yaml(tmp_path / "bad.yaml", stage1_config_data(expansion=expansion)))


def test_load_stage1_config_on_a_study_config(tmp_path, write_config):
    output_dir = tmp_path / "study"
    path = write_config(study_config(output_dir))
    bench = load_stage1_config(path)
    assert isinstance(bench, Stage1Config)
    assert bench.run.output_dir == output_dir / "stage1"
    assert bench.run.keep_unflagged is True
    assert bench.prompts.path == (tmp_path / "source.jsonl").resolve()
    assert bench.seed == 7 and [m.name for m in bench.models] == ["script"]
    assert bench.classifier.model == "script"


def test_load_stage1_config_on_a_study_config_without_stage1(tmp_path, write_config):
    path = write_config(study_config(tmp_path / "study", stage1=False))
    with pytest.raises(ConfigError) as caught:
        load_stage1_config(path)
    assert caught.value.path == str(path)
    assert caught.value.field_path == "stage1"
    assert "no stage1 section" in caught.value.problem


def test_load_stage1_config_names_a_stage1_reference_by_its_section(tmp_path, write_config):
    config = study_config(tmp_path / "study")
    config["stage1"]["classifier"]["model"] = "nobody"
    with pytest.raises(ConfigError) as caught:
        load_stage1_config(write_config(config))
    assert caught.value.field_path == "stage1.classifier.model"
    assert "'nobody' is not in models" in caught.value.problem
