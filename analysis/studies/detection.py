"""Which study a run reproduces, and how that was decided.

A run names its study in its config (the ``runs`` table keeps the JSON of the experiment config; its top-level
``"study"`` is one of :data:`STUDIES` or null; the latest run row counts). Without one, the study is inferred from
the data, first match wins:

1. a rating made under a demographic framing (``framing_attribute`` set): ``demo_safetybench``;
2. ratings on a moral foundation (care, fairness, loyalty, authority, sanctity) and cells whose ``template_id`` is
   ``moral_probes``: ``value_inertia``;
3. cells whose ``template_id`` is ``ptp``: ``ptp_multilingual``;
4. persona cells and no-persona baseline cells with a rated toxicity dimension: ``persona_toxicity``;
5. otherwise none: the report is the generic one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.io import RunTables, load_run, parse_run_config, store_path
from analysis.studies.common import MORAL_FOUNDATIONS
from graphs.tables import connect_readonly

logger = logging.getLogger(__name__)

__all__ = ["STUDIES", "STUDY_TITLES", "StudyDetection", "detect_study", "read_run_config", "study_detection"]

STUDIES = ("persona_toxicity", "value_inertia", "ptp_multilingual", "demo_safetybench")
STUDY_TITLES = {
    "persona_toxicity": "Persona toxicity",
    "value_inertia": "Value inertia",
    "ptp_multilingual": "PolygloToxicityPrompts (multilingual)",
    "demo_safetybench": "Demo-SafetyBench",
}


@dataclass(frozen=True)
class StudyDetection:
    """Which study a run is, and how that was decided.

    Attributes:
        study: One of :data:`STUDIES`, or ``None``.
        source: ``"config"`` (named in the run's config), ``"data"`` (inferred) or ``"argument"`` (given).
        reason: One sentence for the report.
    """

    study: str | None
    source: str
    reason: str


def read_run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The experiment config of the run directory's latest ``runs`` row, or ``None`` (no row, no JSON object)."""
    path = store_path(run_dir)
    conn = connect_readonly(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "runs" not in names:
            return None
        row = conn.execute("SELECT config FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return parse_run_config(row[0] if row else None)


def _as_tables(source: RunTables | str | Path) -> RunTables:
    return source if isinstance(source, RunTables) else load_run(source)


def _observed(column: pd.Series) -> set[str]:
    """The distinct non-missing values of a (categorical) column, as strings."""
    return {str(v) for v in pd.unique(column.dropna())}


def study_detection(source: RunTables | str | Path) -> StudyDetection:
    """Which study a run is (see the module docstring for the rules) and why; ``source`` is tables or a run dir."""
    tables = _as_tables(source)
    config = tables.config or {}
    named = config.get("study")
    if named is not None:
        if named in STUDIES:
            return StudyDetection(named, "config", f"the run's config names the study {named!r}")
        logger.warning("the run's config names an unknown study %r; inferring it from the data", named)
    inferred, reason = _infer_study(tables)
    if named is not None:
        reason = f"the config's study {named!r} is not one of {', '.join(STUDIES)}; {reason}"
    return StudyDetection(inferred, "data", reason)


def detect_study(source: RunTables | str | Path) -> str | None:
    """The study a run reproduces (one of :data:`STUDIES`), from its config or else its data; ``None`` if none."""
    return study_detection(source).study


def _infer_study(tables: RunTables) -> tuple[str | None, str]:
    ratings = tables.ratings
    dims = _observed(ratings["dimension"]) if len(ratings) else set()
    templates = _observed(tables.cells["template_id"]) if len(tables.cells) else set()
    if len(ratings) and ratings["framing_attribute"].notna().any():
        attrs = ", ".join(sorted(_observed(ratings["framing_attribute"])))
        return "demo_safetybench", f"inferred from the data: ratings were made under demographic framings ({attrs})"
    foundations = dims & set(MORAL_FOUNDATIONS)
    if foundations and "moral_probes" in templates:
        return "value_inertia", (
            f"inferred from the data: moral-probe cells with ratings on {', '.join(sorted(foundations))}"
        )
    if "ptp" in templates:
        return "ptp_multilingual", "inferred from the data: cells whose prompts come from PolygloToxicityPrompts"
    if len(tables.cells):
        base = tables.cells["is_baseline"].fillna(0).astype(bool)
        tox = sorted(d for d in dims if "tox" in d.lower())
        if base.any() and (~base).any() and tox:
            return "persona_toxicity", (
                f"inferred from the data: persona and no-persona baseline cells, rated on {', '.join(tox)}"
            )
    return None, "no study named in the run's config, and the data match none of the studies"
