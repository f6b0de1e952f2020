"""Helpers the study modules share: the toxicity dimension, row masks, and the wording of coverage and absence.

Every headline function of a study module has the same shape: it reads the run's tables and analysis frame, adds
the headline tables it can compute to ``out``, adds a :class:`analysis.notes.Notes` row for each one it cannot (or
only partly), and returns the study's coverage line, worded by :func:`coverage_line`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.frames import str_categorical

__all__ = [
    "MORAL_FOUNDATIONS",
    "absent_reason",
    "baseline_mask",
    "coverage_line",
    "no_toxicity_reason",
    "pick_toxicity_dimension",
    "value_mask",
]

#: The moral foundations of the value-inertia probes (the same as ``configs.catalog_schema.MORAL_FOUNDATIONS``; not
#: imported from there because ``analysis`` does not import ``configs``).
MORAL_FOUNDATIONS = ("care", "fairness", "loyalty", "authority", "sanctity")


def pick_toxicity_dimension(dimensions: list[str] | set[str], requested: str | None = None) -> str | None:
    """The toxicity dimension: ``requested`` if it was rated, else the first rated dimension containing "tox"."""
    dimensions = sorted(dimensions)
    if requested is not None:
        return requested if requested in dimensions else None
    for d in dimensions:
        if "tox" in d.lower():
            return d
    return None


def baseline_mask(frame: pd.DataFrame) -> np.ndarray:
    """The rows of no-persona baseline cells (a missing ``is_baseline`` counts as not)."""
    return frame["is_baseline"].fillna(0).astype(bool).to_numpy()


def value_mask(column: pd.Series, value: str) -> np.ndarray:
    """The rows where a (categorical) column, read as strings, equals ``value``."""
    return (str_categorical(column) == value).to_numpy()


def no_toxicity_reason(dims: set[str]) -> str:
    """Why there is no toxicity dimension to use: no ratings at all, or which dimensions were rated instead."""
    if not dims:
        return "no ratings in this run yet (run `tribunal rate`)"
    return f"no toxicity dimension was rated (rated: {', '.join(sorted(dims))})"


def coverage_line(n_scored: int, n_total: int, what: str) -> str:
    """``"Coverage: <n_scored> of <n_total> round-0 generations <what>."``, shown next to a study's figures."""
    return f"Coverage: {n_scored} of {n_total} round-0 generations {what}."


def absent_reason(tables: dict[str, pd.DataFrame], table: str) -> str:
    """Why a headline table is absent, from ``headline_notes`` (its reasons, joined), as a sentence."""
    notes = tables.get("headline_notes")
    if notes is not None and len(notes):
        hit = notes.loc[notes["table"] == table, "reason"]
        if len(hit):
            return "; ".join(hit.astype(str)) + "."
    return "the data do not support it."
