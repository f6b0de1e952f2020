"""Configs for prompt-source grids (moral probes, PTP, prompt files, the stage I benchmark, randomized personas).

Each builds on the scripted config of ``tests/conftest.py`` with its grid replaced; the tests of the config schema
(``tests/configs``), of the grid (``tests/graphs/test_grid.py``), of runs over such grids and of stage I use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from configs.loader import Experiment
from tests.conftest import ROOT, STARTER, scripted_config

PTP_FIXTURE = ROOT / "tests" / "fixtures" / "datasets" / "ptp"


def grid_config(grid: dict[str, Any], **top: Any) -> dict[str, Any]:
    """The scripted config with its grid replaced (and top-level fields set)."""
    config = scripted_config()
    config["grid"] = grid
    config.update(top)
    return config


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def moral_prompts(**prompts: Any) -> dict[str, Any]:
    return {"kind": "moral_probes", **prompts}


def ptp_prompts(**prompts: Any) -> dict[str, Any]:
    return {"kind": "ptp", "path": str(PTP_FIXTURE), **prompts}


def random_grid(n: int = 4, **random: Any) -> dict[str, Any]:
    return {
        "random_personas": {"n": n, **random},
        "prompts": moral_prompts(ids=["care_1", "fairness_1"]),
        "languages": ["en", "zh"],
    }


def persona_ids(experiment: Experiment) -> list[str]:
    return [p.id for p in experiment.personas]


def probe_grid(**prompts: Any) -> dict[str, Any]:
    return {
        "personas": str(STARTER / "personas.yaml"),
        "persona_ids": ["good_person", "talk_show_host"],
        "prompts": moral_prompts(ids=["care_1", "care_4", "fairness_1"], **prompts),
        "languages": ["en", "zh"],
        "repeats": 2,
    }


def study_config(output_dir: Path, *, stage1: bool = True) -> dict[str, Any]:
    config = grid_config(
        {"prompts": {"kind": "stage1"}, "languages": ["en", "zh"]},
        run={"output_dir": str(output_dir), "chunk_size": 4, "concurrency": 1},
    )
    if stage1:
        config["stage1"] = {
            "prompts": {"kind": "file", "path": "source.jsonl"},
            "classifier": {"model": "script"},
            "keep_unflagged": True,
        }
    else:
        config["grid"] = {"prompts": moral_prompts(ids=["care_1"])}
    return config
