"""Bounded reads: configs, catalogs and option files are read only from regular files, within a size limit, and
YAML aliases cannot blow a small file up into a huge document (issue 17, item 9)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from configs.catalog_schema import load_moral_probes
from configs.inputs import DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_YAML_BYTES, MAX_INPUT_BYTES_ENV, MAX_YAML_BYTES_ENV
from configs.inputs import read_input_bytes as read_input
from configs.loader import ConfigError, load_experiment, read_yaml
from graphs.cli import main
from tests.conftest import STARTER, scripted_config

BILLION_LAUGHS = """\
name: laughs
models:
  - name: script
    backend: scripted
    options:
      default: "ok"
      laugh: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
      l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
      l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
      l3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]
      l4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]
      l5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]
      l6: &l6 [*l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5]
      l7: &l7 [*l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6]
      l8: &l8 [*l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7]
grid:
  targets: {targets}
  templates: {templates}
  languages: [en]
"""


def _cli_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


def _config_with(tmp_path: Path, write_config, **grid: str) -> Path:
    config = scripted_config()
    config["grid"].update(grid)
    return write_config(config)


def test_a_device_as_a_catalog_is_refused_in_one_line(tmp_path, write_config):
    path = _config_with(tmp_path, write_config, personas="/dev/zero")
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.path == str(path) and caught.value.field_path == "grid.personas"
    assert "/dev/zero" in caught.value.problem and "not a regular file" in caught.value.problem
    line = _cli_error(["validate", str(path)])
    assert "grid.personas" in line and "/dev/zero" in line


def test_a_fifo_as_a_catalog_is_refused_without_blocking(tmp_path, write_config):
    fifo = tmp_path / "targets.fifo"
    os.mkfifo(fifo)
    path = _config_with(tmp_path, write_config, targets=str(fifo))
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_experiment(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a generous deadline: opening a FIFO for reading would block forever
    if worker.is_alive():  # unblock the reader so that the thread ends, then fail
        with open(fifo, "w", encoding="utf-8"):
            pass
        pytest.fail("loading a FIFO catalog blocked")
    (error,) = outcome
    assert isinstance(error, ConfigError) and error.field_path == "grid.targets"
    assert "not a regular file" in error.problem


def test_a_directory_as_a_catalog_names_the_field(tmp_path, write_config):
    path = _config_with(tmp_path, write_config, templates=str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.field_path == "grid.templates" and "directory" in caught.value.problem


def test_a_device_as_the_config_itself_is_one_line():
    line = _cli_error(["validate", "/dev/zero"])
    assert line.startswith("error: /dev/zero: ") and "not a regular file" in line


def test_a_catalog_over_the_limit_is_refused_and_the_limit_is_configurable(tmp_path, write_config, monkeypatch):
    path = _config_with(tmp_path, write_config)
    size = (STARTER / "personas.yaml").stat().st_size
    monkeypatch.setenv(MAX_YAML_BYTES_ENV, str(size - 1))
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.field_path == "grid.personas"
    assert MAX_YAML_BYTES_ENV in caught.value.problem and str(size - 1) in caught.value.problem
    monkeypatch.setenv(MAX_YAML_BYTES_ENV, str(size + 10_000))
    assert load_experiment(path).personas


def test_a_config_over_the_limit_names_the_config(tmp_path, write_config, monkeypatch):
    path = write_config(scripted_config())
    monkeypatch.setenv(MAX_YAML_BYTES_ENV, "100")
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert caught.value.path == str(path) and "over the limit of 100 bytes" in caught.value.problem


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_bad_limit_in_the_environment_is_one_line(tmp_path, write_config, monkeypatch, value):
    path = write_config(scripted_config())
    monkeypatch.setenv(MAX_YAML_BYTES_ENV, value)
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert MAX_YAML_BYTES_ENV in str(caught.value) and "\n" not in str(caught.value)


def test_defaults_are_documented_sizes():
    assert DEFAULT_MAX_INPUT_BYTES == 64 * 2**20
    assert DEFAULT_MAX_YAML_BYTES < DEFAULT_MAX_INPUT_BYTES


def test_data_files_have_their_own_limit(tmp_path, monkeypatch):
    data = tmp_path / "prompts.jsonl"
    data.write_bytes(b'{"id": "a", "prompt": "x", "language": "en"}\n' * 100)
    assert len(read_input(data, kind="data")) == data.stat().st_size
    monkeypatch.setenv(MAX_INPUT_BYTES_ENV, "64")
    with pytest.raises(ConfigError, match=MAX_INPUT_BYTES_ENV):
        read_input(data, kind="data")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_input(Path("/dev/zero"), kind="data")


def test_billion_laughs_is_refused_in_one_line(tmp_path, write_config):
    text = BILLION_LAUGHS.format(targets=STARTER / "targets.yaml", templates=STARTER / "templates.yaml")
    assert len(text.encode()) < 3000
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.path == str(path) and "alias" in caught.value.problem
    line = _cli_error(["validate", str(path)])
    assert "alias" in line
    out = tmp_path / "run"
    _cli_error(["run", str(path), "--out", str(out), "--no-progress"])
    assert not out.exists()


def test_modest_aliases_still_work(tmp_path, write_config):
    text = yaml.safe_dump(scripted_config(), sort_keys=False).replace(
        "models:\n- name: script", "models:\n- &m\n  name: script", 1
    )
    text = text.replace("sampling:", "- {<<: *m, name: script2}\nsampling:", 1)
    experiment = load_experiment(write_config(text))
    assert [m.name for m in experiment.config.models] == ["script", "script2"]
    assert experiment.config.models[1].options == experiment.config.models[0].options


def test_an_alias_cycle_is_one_line(tmp_path, write_config):
    text = yaml.safe_dump(scripted_config(), sort_keys=False) + "description: &d [*d]\n"
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert "alias" in caught.value.problem


def test_option_files_of_raters_are_bounded_too(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        load_moral_probes("/dev/zero")


def test_a_run_snapshot_is_read_under_the_data_limit(tmp_path, monkeypatch):
    snapshot = tmp_path / "config.yaml"
    snapshot.write_text(yaml.safe_dump({"config": {"name": "x"}, "personas": [{"id": f"p{i}"} for i in range(50)]}))
    monkeypatch.setenv(MAX_YAML_BYTES_ENV, "100")
    with pytest.raises(ConfigError):
        read_yaml(snapshot)
    assert read_yaml(snapshot, kind="data")["config"] == {"name": "x"}
