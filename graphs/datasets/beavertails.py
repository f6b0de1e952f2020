"""BeaverTails: question-answer pairs flagged with the 14 harm domains (Demo-SafetyBench stage I's source)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graphs.datasets.columns import as_dict, assemble, bool_column, concat, field_error, find_column, text_column
from graphs.datasets.files import read_table, resolve_files
from graphs.datasets.source import DatasetError, DatasetSource

BEAVERTAILS = DatasetSource(
    name="BeaverTails",
    url="https://huggingface.co/datasets/PKU-Alignment/BeaverTails",
    hf_id="PKU-Alignment/BeaverTails",
    cache_key="beavertails",
    splits=("30k_train", "30k_test", "330k_train", "330k_test"),
)

#: The 14 BeaverTails harm domains: the exact keys of the dataset's ``category`` dict, in the dataset's order.
BEAVERTAILS_CATEGORIES: tuple[str, ...] = (
    "animal_abuse",
    "child_abuse",
    "controversial_topics,politics",
    "discrimination,stereotype,injustice",
    "drug_abuse,weapons,banned_substance",
    "financial_crime,property_crime,theft",
    "hate_speech,offensive_language",
    "misinformation_regarding_ethics,laws_and_safety",
    "non_violent_unethical_behavior",
    "privacy_violation",
    "self_harm",
    "sexually_explicit,adult_content",
    "terrorism,organized_crime",
    "violence,aiding_and_abetting,incitement",
)
#: Normalised columns of :func:`load_beavertails`, in order (then one boolean column per harm domain).
BEAVERTAILS_COLUMNS: tuple[str, ...] = (
    "prompt",
    "response",
    "is_safe",
    "harm_categories",
    *BEAVERTAILS_CATEGORIES,
)


def load_beavertails(
    path: str | Path | None = None,
    *,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Load BeaverTails question–answer pairs with their harm flags.

    Args:
        path: a JSONL (optionally ``.xz``/``.gz``) or Parquet file, or a folder of them; the Hugging Face cache
            when omitted.
        split: ``30k_train``, ``30k_test``, ``330k_train`` or ``330k_test``; needed when the files hold more
            than one.
        cache_dir: a Hugging Face cache folder to search instead of the default ones (only when ``path`` is
            omitted).

    Returns:
        One row per pair with ``prompt``, ``response``, ``is_safe`` (bool), ``harm_categories`` (a tuple of the
        flagged domain keys, in :data:`BEAVERTAILS_CATEGORIES` order) and one boolean column per domain, named
        by its exact key; then the source's other columns. The flags come from the ``category`` dict, or from
        flat ``category.<key>`` or ``<key>`` columns.

    Raises:
        DatasetError: a file is missing or unreadable, or a field is missing or malformed.
    """
    files = resolve_files(BEAVERTAILS, path, cache_dir, split)
    return concat([_normalise_beavertails(read_table(BEAVERTAILS, file), file) for file in files], BEAVERTAILS_COLUMNS)


def _normalise_beavertails(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    used: list[str] = []
    columns: dict[str, pd.Series] = {}
    for name in ("prompt", "response"):
        col = find_column(frame, (name,))
        if col is None:
            raise field_error(BEAVERTAILS, file, name)
        used.append(col)
        columns[name] = text_column(BEAVERTAILS, file, name, frame[col])
    safe_col = find_column(frame, ("is_safe",))
    if safe_col is None:
        raise field_error(BEAVERTAILS, file, "is_safe")
    used.append(safe_col)
    columns["is_safe"] = bool_column(BEAVERTAILS, file, "is_safe", frame[safe_col])

    flags: dict[str, pd.Series] = {}
    category_col = find_column(frame, ("category", "categories"))
    if category_col is not None:
        used.append(category_col)
        dicts = [as_dict(BEAVERTAILS, file, category_col, i, v) for i, v in enumerate(frame[category_col])]
        for key in BEAVERTAILS_CATEGORIES:
            missing = next((i for i, d in enumerate(dicts) if key not in d), None)
            if missing is not None:
                raise DatasetError(
                    f"{BEAVERTAILS.name}: {file}: field '{category_col}' in row {missing + 1} lacks the key '{key}'"
                )
            values = pd.Series([d[key] for d in dicts], index=frame.index)
            flags[key] = bool_column(BEAVERTAILS, file, f"{category_col}.{key}", values)
    else:
        for key in BEAVERTAILS_CATEGORIES:
            col = find_column(frame, (f"category.{key}", key))
            if col is None:
                raise field_error(BEAVERTAILS, file, "category", f"no category dict and no column for '{key}'")
            used.append(col)
            flags[key] = bool_column(BEAVERTAILS, file, col, frame[col])
    flagged = [tuple(key for key in BEAVERTAILS_CATEGORIES if flags[key].iloc[i]) for i in range(len(frame))]
    columns["harm_categories"] = pd.Series(flagged, index=frame.index, dtype=object)
    columns.update(flags)
    return assemble(frame, {name: columns[name] for name in BEAVERTAILS_COLUMNS}, used)


__all__ = ["BEAVERTAILS", "BEAVERTAILS_CATEGORIES", "BEAVERTAILS_COLUMNS", "load_beavertails"]
