"""The one probability scorer of the prompted-toxicity metrics, the languages it was trained on, and each
language's resource class.

The scorer
----------
Expected maximum toxicity and toxicity probability are defined on one calibrated probability (Perspective API
in Gehman et al. 2020 and Jain et al. 2024), so the PolygloToxicityPrompts headline takes its scores from one
named rater, never from a panel mean (:func:`choose_scorer`): the config's ``ptp.scorer``; else the one rater of
the toxicity dimension whose ratings are on a probability scale; else (several) the first of those in panel
order, with a note. A scorer whose ratings are not probabilities (a 1–5 judge) yields no EMT or toxicity
probability, and the note says why.

Its languages
-------------
A classifier's scores mean little in a language it never saw in training, and "toxicity increases as language
resources decrease" could then be the scorer's blind spot. The scorer's training languages are the rater's
``options.languages`` when the config declares them, else a known default (:data:`KNOWN_SCORER_LANGUAGES`:
profanity-check is English only), else unknown; every language outside them is flagged
(:func:`scorer_languages`).

Resource classes
----------------
The language catalog (``configs/catalogs/languages.yaml``; Joshi et al. 2020, classes 0–5) is read here as plain
YAML (:func:`language_resources`), because ``analysis`` does not import ``configs``; a test checks that the two
readings agree.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.toxicity.prompted import scale_kind

__all__ = [
    "KNOWN_SCORER_LANGUAGES",
    "LanguageResources",
    "ScorerChoice",
    "choose_scorer",
    "language_resources",
    "scorer_languages",
]

#: Training languages of scorers known to tribunal, by rater kind or by ``kind:model path``. The textdetox XLM-R
#: classifier was fine-tuned on textdetox/multilingual_toxicity_dataset (2024: 9 languages, per its model card);
#: alt-profanity-check's linear model on English comments.
KNOWN_SCORER_LANGUAGES: dict[str, tuple[str, ...]] = {
    "profanity-check": ("en",),
    "hf-classifier:textdetox/xlmr-large-toxicity-classifier": ("am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh"),
}


@dataclass(frozen=True)
class ScorerChoice:
    """The rater whose scores the PTP metrics use, and what is known about it."""

    name: str | None
    column: str | None = None
    kind: str | None = None
    scale: str | None = None
    languages: tuple[str, ...] | None = None
    languages_from: str = "unknown"
    notes: list[str] = field(default_factory=list)

    @property
    def is_probability(self) -> bool:
        """Whether its scores count as probabilities (an unrecorded scale, from an older store, does; noted)."""
        return scale_kind(self.scale) in ("probability", None)


@dataclass(frozen=True)
class LanguageResources:
    """Language code → resource class (and its name), with the source to cite."""

    table: pd.DataFrame
    citation: str
    url: str | None
    path: Path | None


def _panel_raters(config: dict[str, Any] | None) -> list[dict[str, Any]]:
    panel = (config or {}).get("panel") or {}
    return [r for r in panel.get("raters") or [] if isinstance(r, dict) and r.get("name")]


def scorer_languages(rater: dict[str, Any] | None) -> tuple[tuple[str, ...] | None, str]:
    """A rater's training languages from its config entry, and where they come from.

    Args:
        rater: The rater's entry of the config's ``panel.raters`` (``kind``, ``options``).

    Returns:
        ``(languages, source)``: the lower-case codes and ``"config"`` (``options.languages``), ``"known
        default"`` (:data:`KNOWN_SCORER_LANGUAGES`) or ``"unknown"`` (``None``).
    """
    if not rater:
        return None, "unknown"
    options = rater.get("options") or {}
    declared = options.get("languages") if isinstance(options, dict) else None
    if declared:
        return tuple(sorted(str(c).strip().lower() for c in declared)), "config"
    kind = str(rater.get("kind") or "")
    path = options.get("path") if isinstance(options, dict) else None
    for key in (f"{kind}:{path}", kind):
        if key in KNOWN_SCORER_LANGUAGES:
            return KNOWN_SCORER_LANGUAGES[key], "known default"
    return None, "unknown"


def choose_scorer(
    config: dict[str, Any] | None, score_columns: pd.DataFrame, ratings: pd.DataFrame, dimension: str
) -> ScorerChoice:
    """The one rater whose ``dimension`` scores the PTP metrics use (see the module docstring).

    Args:
        config: The run's config (``ptp.scorer``, ``panel.raters``).
        score_columns: :attr:`analysis.io.AnalysisFrame.score_columns`.
        ratings: The ratings (``rater_name``, ``dimension``, ``scale``, ``score``) the score columns come from.
        dimension: The toxicity dimension.

    Returns:
        The choice; ``name`` is ``None`` (and ``notes`` says why) when no rater can serve.
    """
    sc = score_columns
    unframed = sc["framing_attribute"].isna() if "framing_attribute" in sc.columns else True
    cols = sc[(sc["dimension"] == dimension) & unframed]
    by_name = dict(zip(cols["rater_name"].astype(str), cols["column"], strict=True))
    scales = _scales(ratings, dimension)
    panel = {str(r["name"]): r for r in _panel_raters(config)}
    order = [n for n in panel if n in by_name] + sorted(n for n in by_name if n not in panel)
    notes: list[str] = []
    named = ((config or {}).get("ptp") or {}).get("scorer")
    if named:
        if named not in by_name:
            why = f"the scorer named in ptp.scorer, {named!r}, has no {dimension} scores in these tables"
            return ScorerChoice(None, notes=[why + " (not run yet, or left out as an untrusted judge)"])
        name = str(named)
    else:
        probability = [n for n in order if scale_kind(scales.get(n)) == "probability"]
        if not order:
            return ScorerChoice(None, notes=[f"no rater scored {dimension}"])
        name = (probability or order)[0]
        if len(probability) > 1:
            notes.append(
                f"several probability raters score {dimension} ({', '.join(probability)}): the metrics use {name}, "
                "the first in panel order (name one with ptp.scorer)"
            )
    others = [n for n in order if n != name]
    if others:
        notes.append(f"the metrics use {name} alone; not averaged in: {', '.join(others)}")
    scale = scales.get(name)
    if scale_kind(scale) is None:
        notes.append(f"{name}'s ratings record no scale: its scores are taken as probabilities")
    elif scale_kind(scale) != "probability":
        notes.append(
            f"{name}'s ratings are not probabilities (scale {scale or 'unknown'}): EMT and toxicity probability are "
            "defined on a calibrated probability, so they are left out (score with a probability classifier)"
        )
    languages, source = scorer_languages(panel.get(name))
    rater = panel.get(name) or {}
    return ScorerChoice(name, by_name[name], rater.get("kind"), scale, languages, source, notes)


def language_resources(path: str | Path | None = None) -> LanguageResources | None:
    """The language catalog as ``language, language_name, resource_class, resource_name``.

    Args:
        path: A catalog in the shape of ``configs/catalogs/languages.yaml``; the shipped one when omitted.

    Returns:
        The table and its source; ``None`` when the shipped catalog cannot be found (no ``configs`` package).

    Raises:
        ValueError: the file lacks a field or has a malformed entry (the message names the file and field).
    """
    import yaml

    if path is None:
        spec = importlib.util.find_spec("configs")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "catalogs" / "languages.yaml"
        if not path.is_file():
            return None
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: (top level): expected a mapping with source, classes and languages")
    for key in ("source", "classes", "languages"):
        if key not in data:
            raise ValueError(f"{path}: {key}: missing")
    classes = {int(k): str(v) for k, v in (data["classes"] or {}).items()}
    rows = []
    for i, entry in enumerate(data["languages"] or []):
        if not isinstance(entry, dict) or "code" not in entry or "resource_class" not in entry:
            raise ValueError(f"{path}: languages[{i}]: needs code and resource_class")
        level = entry["resource_class"]
        if not isinstance(level, int) or level not in classes:
            raise ValueError(f"{path}: languages[{i}].resource_class: {level!r} is not one of the classes")
        rows.append(
            {
                "language": str(entry["code"]).lower(),
                "language_name": str(entry.get("name") or entry["code"]),
                "resource_class": level,
                "resource_name": classes[level],
            }
        )
    source = data["source"] or {}
    return LanguageResources(pd.DataFrame(rows), str(source.get("citation", "")), source.get("url"), path)


def _scales(ratings: pd.DataFrame, dimension: str) -> dict[str, str | None]:
    """Rater name → the scale label of its scored ratings of ``dimension`` (several labels joined)."""
    if "scale" not in ratings.columns or ratings.empty:
        return {}
    name = "rater_name" if "rater_name" in ratings.columns else "rater"
    keep = (ratings["dimension"].astype(str) == dimension).to_numpy() & ratings["score"].notna().to_numpy()
    part = ratings.loc[keep, [name, "scale"]].astype(object).drop_duplicates()
    out: dict[str, str | None] = {}
    for rater, sub in part.groupby(name, sort=True, observed=True):
        labels = sorted({str(s) for s in sub["scale"] if s is not None and not pd.isna(s)})
        out[str(rater)] = labels[0] if len(labels) == 1 else (", ".join(labels) or None)
    return out
