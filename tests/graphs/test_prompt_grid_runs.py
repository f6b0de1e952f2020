"""Prompt-source grids through the runner and the command line: ``validate`` counts their cells without reading
the data, and a missing dataset stops ``run`` with one line before anything is written."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from configs.loader import load_experiment
from graphs.cli import main
from graphs.datasets import DatasetError
from graphs.grid import load_grid_prompts
from graphs.runner import run_experiment
from tests.helpers.prompt_grids import grid_config, probe_grid, random_grid, study_config


def test_ptp_missing_path_is_a_dataset_error_and_nothing_is_written(tmp_path, write_config):
    missing = tmp_path / "no-ptp-here"
    path = write_config(grid_config({"prompts": {"kind": "ptp", "path": str(missing)}, "languages": ["en"]}))
    experiment = load_experiment(path)  # the data is read at run time, not when loading
    with pytest.raises(DatasetError) as caught:
        load_grid_prompts(experiment)
    assert str(missing) in str(caught.value) and "PolygloToxicityPrompts" in str(caught.value)
    assert "huggingface.co" in str(caught.value)

    out = tmp_path / "run"
    with pytest.raises(DatasetError):
        asyncio.run(run_experiment(experiment, out))
    assert not out.exists()

    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: grid.prompts: ")
    assert str(missing) in lines[0]
    assert not out.exists()


# ======================================================================================== validate
def test_validate_moral_probe_grid(write_config):
    result = CliRunner().invoke(main, ["validate", str(write_config(grid_config(probe_grid())))])
    assert result.exit_code == 0, result.output + result.stderr
    assert "2 persona(s) + baseline" in result.output
    assert "3 moral probe(s) × 2 language(s), 2 repeat(s) → 36 cells" in result.output


def test_validate_random_persona_grid(write_config):
    result = CliRunner().invoke(main, ["validate", str(write_config(grid_config(random_grid(n=5))))])
    assert result.exit_code == 0, result.output + result.stderr
    # (5 + baseline) × 2 probes × 2 languages
    assert "5 persona(s) + baseline" in result.output
    assert "2 moral probe(s) × 2 language(s), 1 repeat(s) → 24 cells" in result.output


def test_validate_ptp_grid_reads_no_data(tmp_path, write_config):
    grid = {"prompts": {"kind": "ptp", "path": str(tmp_path / "absent")}, "repeats": 4}
    result = CliRunner().invoke(main, ["validate", str(write_config(grid_config(grid)))])
    assert result.exit_code == 0, result.output + result.stderr
    assert "ptp prompts (read at run time), 4 repeat(s) → 4 cells per prompt" in result.output


def test_validate_stage1_grid(tmp_path, write_config):
    result = CliRunner().invoke(main, ["validate", str(write_config(study_config(tmp_path / "study")))])
    assert result.exit_code == 0, result.output + result.stderr
    assert "the stage I benchmark (read at run time), 1 repeat(s) → 1 cells per prompt" in result.output
    assert "Stage I (Demo-SafetyBench) runs first." in result.output
