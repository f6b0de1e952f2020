"""DICES: rater × conversation safety ratings with the raters' demographics (DICES-350 and DICES-990)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graphs.datasets.columns import assemble, concat, field_error, find_column, is_missing
from graphs.datasets.files import read_table, resolve_files, split_of
from graphs.datasets.source import DatasetError, DatasetSource

DICES = DatasetSource(
    name="DICES",
    url="https://github.com/google-research-datasets/dices-dataset "
    "(350/diverse_safety_adversarial_dialog_350.csv, 990/diverse_safety_adversarial_dialog_990.csv)",
    cache_key="dices",
    splits=("350", "990"),
)
#: DICES ``degree_of_harm`` levels, least to most harmful.
DICES_DEGREES_OF_HARM: tuple[str, ...] = ("Benign", "Debatable", "Moderate", "Extreme")
#: Normalised columns of :func:`load_dices`, in order.
DICES_COLUMNS: tuple[str, ...] = (
    "item_id",
    "rater_id",
    "rater_gender",
    "rater_race",
    "rater_race_raw",
    "rater_age",
    "rater_education",
    "rater_locale",
    "context",
    "response",
    "degree_of_harm",
    "safety_gold",
    "q_overall",
    "dices_set",
)


def load_dices(
    path: str | Path | None = None,
    *,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Load DICES ratings (one row per rater × conversation), e.g. DICES-350 or DICES-990.

    Column names follow the released CSVs (``rater_id``, ``rater_gender``, ``rater_race``, ``rater_raw_race`` in
    DICES-350 or ``rater_race_raw`` in DICES-990, ``rater_age``, ``rater_education``, ``rater_locale``,
    ``item_id``, ``context``, ``response``, ``degree_of_harm``, ``safety_gold``, ``Q_overall``), matched
    without regard to case.

    Args:
        path: a CSV (or JSONL/Parquet) file or a folder of them; the Hugging Face cache when omitted.
        split: ``350`` or ``990`` to keep one set when a folder holds both.
        cache_dir: a Hugging Face cache folder to search instead of the default ones (only when ``path`` is
            omitted).

    Returns:
        One row per rating with, as strings: ``item_id``, ``rater_id``, ``rater_gender``, ``rater_race``,
        ``rater_race_raw``, ``rater_age``, ``rater_education``, ``rater_locale`` (DICES-990 only, else NA),
        ``context`` (the conversation so far), ``response`` (the rated model turn), ``degree_of_harm`` (one of
        :data:`DICES_DEGREES_OF_HARM` in the released data), ``safety_gold`` (the expert label, NA where
        the file has none), ``q_overall`` (the rater's overall unsafe verdict, ``Yes``/``No``/``Unsure``) and
        ``dices_set`` (``350``/``990`` when the file name says which, else NA); then the source's other columns
        (such as the ``Q2_…`` sub-questions).

    Raises:
        DatasetError: a file is missing or unreadable, or a required field is missing.
    """
    files = resolve_files(DICES, path, cache_dir, split, allow_many_splits=True)
    return concat([_normalise_dices(read_table(DICES, file), file) for file in files], DICES_COLUMNS)


def _normalise_dices(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    required = {
        "item_id": ("item_id",),
        "rater_id": ("rater_id",),
        "rater_gender": ("rater_gender",),
        "rater_race": ("rater_race",),
        "rater_age": ("rater_age",),
        "rater_education": ("rater_education",),
        "context": ("context",),
        "response": ("response",),
        "degree_of_harm": ("degree_of_harm",),
        "q_overall": ("Q_overall",),
    }
    optional = {
        "rater_race_raw": ("rater_race_raw", "rater_raw_race"),
        "rater_locale": ("rater_locale",),
        "safety_gold": ("safety_gold",),
    }
    columns: dict[str, pd.Series] = {}
    used: list[str] = []
    for name, candidates in {**required, **optional}.items():
        col = find_column(frame, candidates)
        if col is None:
            if name in required:
                raise field_error(DICES, file, candidates[0])
            columns[name] = pd.Series(pd.NA, index=frame.index, dtype="string")
            continue
        used.append(col)
        columns[name] = frame[col].map(lambda v: pd.NA if is_missing(v) else str(v).strip()).astype("string")
    for name in ("item_id", "rater_id"):
        if columns[name].isna().any():
            row = int(columns[name].isna().to_numpy().argmax())
            raise DatasetError(f"{DICES.name}: {file}: field '{name}' is empty in row {row + 1}")
    dices_set = split_of(DICES, file.name)
    columns["dices_set"] = pd.Series(dices_set if dices_set else pd.NA, index=frame.index, dtype="string")
    return assemble(frame, {name: columns[name] for name in DICES_COLUMNS}, used)


__all__ = ["DICES", "DICES_COLUMNS", "DICES_DEGREES_OF_HARM", "load_dices"]
