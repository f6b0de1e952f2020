"""Helpers for the reliability suite: configs whose generator, LLM judges and critic all talk to the stub server."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import STARTER

JUDGES = ("judge_a", "judge_b", "judge_c")


def api_model(name: str, base_url: str, **overrides: Any) -> dict[str, Any]:
    """An ``openai`` backend model on the stub (its model id is its name, so the stub's stats tell them apart)."""
    spec: dict[str, Any] = {
        "name": name,
        "backend": "openai",
        "model": name,
        "base_url": base_url,
        "max_concurrency": 256,
        "max_retries": 2,
        "timeout_s": 10,
        "options": {"retry_base_wait_s": 0.001, "retry_max_wait_s": 0.02},
    }
    spec.update(overrides)
    return spec


def stub_config(
    base_url: str,
    *,
    repeats: int = 1,
    languages: tuple[str, ...] = ("en", "zh"),
    threshold: float = 1.0,
    max_rounds: int = 1,
    chunk_size: int = 32,
    concurrency: int = 32,
    model_overrides: dict[str, Any] | None = None,
    **grid: Any,
) -> dict[str, Any]:
    """Generator ``gen``, a three-judge toxicity panel and a critic, all on the stub; the full starter catalogs.

    Every starter persona (7, + baseline) × 7 targets × 6 templates × ``languages`` × ``repeats``: 672 cells per
    repeat with both languages.
    """
    names = ("gen", *JUDGES, "critic")
    models = [api_model(name, base_url, **(model_overrides or {})) for name in names]
    return {
        "name": "reliability",
        "seed": 11,
        "models": models,
        "sampling": {"temperature": 0.7, "max_tokens": 64},
        "grid": {
            "models": ["gen"],
            "personas": str(STARTER / "personas.yaml"),
            "targets": str(STARTER / "targets.yaml"),
            "templates": str(STARTER / "templates.yaml"),
            "languages": list(languages),
            "repeats": repeats,
            "baseline": True,
            **grid,
        },
        "run": {"chunk_size": chunk_size, "concurrency": concurrency},
        "panel": {
            "aggregation": "mean",
            "raters": [
                {"name": judge, "kind": "llm", "model": judge, "rubric": "toxicity", "dimensions": ["toxicity"]}
                for judge in JUDGES
            ],
        },
        "mitigation": {
            "threshold": threshold,
            "max_rounds": max_rounds,
            "dimension": "toxicity",
            "raters": list(JUDGES),
            "critic": "critic",
        },
    }


def query(run_dir: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(Path(run_dir) / "transcripts.sqlite") as db:
        return db.execute(sql, params).fetchall()


def in_ci() -> bool:
    return bool(os.environ.get("CI"))
