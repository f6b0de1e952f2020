"""Which judges rated their own model's generations, read from the run's stored config.

A judge model that also generates scores its own replies among the others'; LLM judges prefer their own text
(self-preference; Panickssery et al. 2024 [1]_), so figures that compare models or personas through it lean
towards its own model. Validation warns about it (``configs.judge_overlap``); the report says it again next to
the tables those judges feed, because a warning at validation is easy to miss and a report is read without the
config. Two model references are the same model when they name the same entry of ``models`` or give the same
model id, whatever the backend or server; entries without a model id match by name only (as validation decides).

This module reads the config as plain data (``RunTables.config``): ``analysis`` does not import ``configs``.

References
----------
.. [1] Panickssery, A., Bowman, S. R., & Feng, S. (2024). LLM evaluators recognize and favor their own
   generations. *NeurIPS 2024*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["SELF_JUDGING_COLUMNS", "same_model", "self_judging", "self_judging_notes"]

#: The columns of :func:`self_judging`.
SELF_JUDGING_COLUMNS = ["rater", "judge_model", "generators"]


def same_model(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two model entries (as stored) reach the same model: one name, or one model id (without case)."""
    if a.get("name") is not None and a.get("name") == b.get("name"):
        return True
    ids = [m.get("model") for m in (a, b)]
    return all(isinstance(i, str) for i in ids) and str(ids[0]).lower() == str(ids[1]).lower()


def _model_of(reference: Any, by_name: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    if isinstance(reference, str):
        return by_name.get(reference)
    return reference if isinstance(reference, Mapping) else None


def self_judging(config: Mapping[str, Any] | None) -> pd.DataFrame:
    """The panel raters whose judge model also generates.

    Args:
        config: The run's stored experiment config (``RunTables.config``), or ``None``.

    Returns:
        One row per such rater: ``rater``, ``judge_model`` (the judge's model name) and ``generators`` (the
        generator names it is), in panel order; empty when the config is unknown or every judge is independent.
    """
    rows = []
    config = config or {}
    models = [m for m in config.get("models") or [] if isinstance(m, Mapping)]
    by_name = {str(m.get("name")): m for m in models}
    wanted = (config.get("grid") or {}).get("models")
    generators = [by_name[n] for n in wanted if n in by_name] if isinstance(wanted, list) else models
    for rater in (config.get("panel") or {}).get("raters") or []:
        judge = _model_of(rater.get("model"), by_name) if isinstance(rater, Mapping) else None
        if judge is None:
            continue
        own = [str(g.get("name")) for g in generators if same_model(judge, g)]
        if own:
            rows.append({"rater": str(rater.get("name")), "judge_model": str(judge.get("name")),
                         "generators": ", ".join(own)})  # fmt: skip
    return pd.DataFrame(rows, columns=SELF_JUDGING_COLUMNS)


def self_judging_notes(config: Mapping[str, Any] | None, raters: set[str] | None = None) -> list[str]:
    """One sentence per self-judging rater (among ``raters`` when given), for the notes of the tables it feeds."""
    found = self_judging(config)
    if raters is not None:
        found = found[found["rater"].isin(raters)]
    return [
        f"rater {row.rater} judges with {row.judge_model}, which also generated ({row.generators}): it scored its "
        "own model's replies, and self-preference may tilt these figures (see self_preference in the judge card)"
        for row in found.itertuples()
    ]
