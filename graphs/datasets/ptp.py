"""PolygloToxicityPrompts (PTP): prompts in many languages with their Perspective toxicity."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from graphs.datasets.columns import assemble, concat, field_error, find_column, float_column, text_column
from graphs.datasets.files import read_table, resolve_files
from graphs.datasets.source import DatasetError, DatasetSource

PTP = DatasetSource(
    name="PolygloToxicityPrompts",
    url="https://huggingface.co/datasets/ToxicityPrompts/PolygloToxicityPrompts",
    hf_id="ToxicityPrompts/PolygloToxicityPrompts",
    cache_key="polyglotoxicityprompts",
    splits=("full", "small", "wildchat"),
)
#: Normalised columns of :func:`load_ptp`, in order.
PTP_COLUMNS: tuple[str, ...] = ("prompt_id", "language", "prompt", "toxicity")
_PTP_CONFIG_DIR = re.compile(r"^(?:ptp|wildchat)(?:[-_](?:small|full))?[-_]([a-z]{2,3})$")


def load_ptp(
    path: str | Path | None = None,
    *,
    languages: Sequence[str] | None = None,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Load PolygloToxicityPrompts (PTP) prompts.

    Reads the dataset's own files (rows with ``text``, ``toxicity`` and ``meta_data.lang``; the WildChat configs
    have ``prompt`` and ``prompt_perspective``) as well as simpler exports with ``prompt``/``language`` columns.
    Where no language field exists it is read from a config folder such as ``ptp-zh/`` in the path.

    Args:
        path: a file or a folder of files; the Hugging Face cache when omitted.
        languages: keep only these language codes (e.g. ``["en", "zh"]``); all when omitted.
        split: ``full``, ``small`` or ``wildchat``; needed when the files hold more than one.
        cache_dir: a Hugging Face cache folder to search instead of the default ones (only when ``path`` is
            omitted).

    Returns:
        One row per prompt with ``prompt_id`` (the source's ``prompt_id``/``id``, else ``ptp-<lang>-<hash of the
        text>``), ``language`` (lower-case code), ``prompt`` (the text to continue) and ``toxicity`` (the
        prompt's Perspective toxicity in [0, 1], NaN where the source has none), then the source's other
        columns.

    Raises:
        DatasetError: a file is missing or unreadable, a field is missing or malformed, or no row is left for
            ``languages``.
    """
    wanted = [lang.lower() for lang in languages] if languages is not None else None

    def keep(file: Path) -> bool:
        inferred = _ptp_language_from_path(file)
        return wanted is None or inferred is None or inferred in wanted

    files = resolve_files(PTP, path, cache_dir, split, keep=keep)
    frame = concat([_normalise_ptp(read_table(PTP, file), file) for file in files], PTP_COLUMNS)
    if wanted is not None:
        found = sorted(frame["language"].dropna().unique())
        frame = frame[frame["language"].isin(wanted)].reset_index(drop=True)
        if frame.empty:
            raise DatasetError(
                f"{PTP.name}: no prompts in {', '.join(wanted)} in {_describe(files)}; "
                f"the files hold {', '.join(found) or 'no languages'}"
            )
    return frame


def _normalise_ptp(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    used: list[str] = []
    text_col = find_column(frame, ("prompt", "text", "prompt_text"))
    if text_col is None:
        raise field_error(PTP, file, "prompt", "looked for prompt, text and prompt_text")
    used.append(text_col)
    raw_text = frame[text_col]
    nested = raw_text.map(lambda v: isinstance(v, dict))
    # RealToxicityPrompts style nests the scores with the text: prompt = {text: ..., toxicity: ...}
    prompts = raw_text.map(lambda v: v.get("text") if isinstance(v, dict) else v) if nested.any() else raw_text
    prompts = text_column(PTP, file, text_col, prompts)

    toxicity_col = find_column(frame, ("toxicity", "prompt_toxicity", "toxicity_score"))
    if toxicity_col is not None:
        used.append(toxicity_col)
        toxicity_raw = frame[toxicity_col]
        toxicity_field = toxicity_col
    elif nested.any():
        toxicity_raw = raw_text.map(lambda v: v.get("toxicity") if isinstance(v, dict) else None)
        toxicity_field = f"{text_col}.toxicity"
    else:
        perspective_col = find_column(frame, ("perspective", "prompt_perspective"))
        if perspective_col is None:
            raise field_error(PTP, file, "toxicity", "looked for toxicity, prompt_toxicity and perspective")
        used.append(perspective_col)
        toxicity_raw = frame[perspective_col].map(_perspective_toxicity)
        toxicity_field = f"{perspective_col}.attributeScores.TOXICITY"
    toxicity = float_column(PTP, file, toxicity_field, toxicity_raw, low=0.0, high=1.0)

    language_col = find_column(frame, ("language", "lang"))
    meta_col = find_column(frame, ("meta_data", "metadata", "meta"))
    if language_col is not None:
        used.append(language_col)
        language = frame[language_col]
    elif meta_col is not None and frame[meta_col].map(lambda v: isinstance(v, dict) and "lang" in v).all():
        language = frame[meta_col].map(lambda v: v["lang"])
    else:
        inferred = _ptp_language_from_path(file)
        if inferred is None:
            raise field_error(
                PTP, file, "language", "looked for language, lang, meta_data.lang and a folder such as ptp-zh"
            )
        language = pd.Series([inferred] * len(frame), index=frame.index)
    language = text_column(PTP, file, "language", language).str.strip().str.lower()

    id_col = find_column(frame, ("prompt_id", "id"))
    if id_col is not None:
        used.append(id_col)
        prompt_id = frame[id_col].map(str).astype("string")
    else:
        prompt_id = pd.Series(
            [f"ptp-{lang}-{_digest(text)}" for lang, text in zip(language, prompts, strict=True)],
            index=frame.index,
            dtype="string",
        )
    columns = {"prompt_id": prompt_id, "language": language, "prompt": prompts, "toxicity": toxicity}
    return assemble(frame, columns, used)


def _ptp_language_from_path(file: Path) -> str | None:
    for part in reversed(file.parts[:-1]):
        match = _PTP_CONFIG_DIR.match(part.lower())
        if match:
            return match.group(1)
    return None


def _perspective_toxicity(value: Any) -> Any:
    try:
        return value["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
    except (KeyError, TypeError):
        return None


def _describe(files: Sequence[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{len(files)} files under {os.path.commonpath(files)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


__all__ = ["PTP", "PTP_COLUMNS", "load_ptp"]
