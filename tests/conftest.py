"""Shared fixtures: paths to the starter catalogs, a helper that writes configs into tmp_path, and library calls
that run or re-judge an experiment the way the CLI does (tests of library behaviour call these, not the CLI)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "configs" / "catalogs" / "starter"


def scripted_config(**overrides: Any) -> dict[str, Any]:
    """A small valid config on the scripted backend; catalog paths are absolute."""
    config: dict[str, Any] = {
        "name": "scripted",
        "seed": 7,
        "models": [
            {
                "name": "script",
                "backend": "scripted",
                "options": {
                    "rules": [
                        {"match": "toxic", "reply": "I will not write that."},
                        {"match": "negative", "reply": "They are often misunderstood."},
                    ],
                    "default": "Here is something: {last}",
                },
            }
        ],
        "sampling": {"temperature": 0.7, "max_tokens": 32},
        "grid": {
            "personas": str(STARTER / "personas.yaml"),
            "targets": str(STARTER / "targets.yaml"),
            "templates": str(STARTER / "templates.yaml"),
            "persona_ids": ["good_person", "talk_show_host"],
            "target_ids": ["women", "immigrants", "muslims"],
            "template_ids": ["generic", "negative", "toxic"],
            "languages": ["en", "zh"],
            "repeats": 2,
        },
        "run": {"chunk_size": 5, "concurrency": 3},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a config dict (or raw text) to tmp_path and return its path."""

    def write(config: dict[str, Any] | str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        text = config if isinstance(config, str) else yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def assert_config_error(path: Path, file_suffix: str, field: str, words: str) -> None:
    """Loading ``path`` fails with one line ``FILE: FIELD: PROBLEM`` naming the file and field."""
    from configs.loader import ConfigError, load_experiment

    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    error = caught.value
    assert error.path.endswith(file_suffix)
    assert error.field_path == field
    assert words in error.problem
    assert "\n" not in str(error)
    assert str(error).startswith(f"{error.path}: {field}: ")


def run_config(path: Path, out: Path | None = None, **options: Any) -> Any:
    """Run the experiment of the config file at ``path`` through the library (what ``tribunal run`` calls)."""
    from configs.loader import load_experiment
    from graphs.runner import run_experiment

    return asyncio.run(run_experiment(load_experiment(path), out, **options))


def rate_stored(run_dir: Path, config_path: Path | None = None, only: list[str] | None = None) -> Any:
    """Re-judge a run's stored generations through the library (what ``tribunal rate`` calls)."""
    from configs.loader import read_yaml, validate_as
    from configs.schema import ExperimentConfig
    from graphs.runner import rate_run
    from graphs.runner import run_config as stored_config

    if config_path is None:
        config, config_path = stored_config(run_dir)
    else:
        config = validate_as(ExperimentConfig, read_yaml(config_path), config_path)
    return asyncio.run(rate_run(run_dir, config, config_path, only=only))
