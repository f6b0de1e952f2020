"""Normalising a dataset's columns: finding a field under its spellings and checking its values row by row.

Each check raises :class:`~graphs.datasets.source.DatasetError` with one line that names the dataset, the file, the
field and the first bad row.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphs.datasets.source import DatasetError, DatasetSource

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def find_column(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    """The column of ``frame`` named by the first of ``candidates`` present (exactly, else ignoring case)."""
    by_lower = {str(c).lower(): str(c) for c in frame.columns}
    for candidate in candidates:
        if candidate in frame.columns:
            return candidate
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return None


def field_error(source: DatasetSource, file: Path, field: str, detail: str = "") -> DatasetError:
    """The error for a field that ``file`` lacks (``detail`` says which spellings were looked for)."""
    suffix = f" ({detail})" if detail else ""
    return DatasetError(f"{source.name}: {file} has no field '{field}'{suffix}")


def is_missing(value: Any) -> bool:
    """Whether a cell holds nothing: ``None``, NA, NaN or blank text."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def text_column(source: DatasetSource, file: Path, field: str, values: pd.Series) -> pd.Series:
    """``values`` as strings, each one non-empty."""
    for row, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(
                f"{source.name}: {file}: field '{field}' in row {row + 1} is not a non-empty string: {value!r:.60}"
            )
    return values.astype("string")


def float_column(
    source: DatasetSource, file: Path, field: str, values: pd.Series, *, low: float, high: float
) -> pd.Series:
    """``values`` as floats in ``[low, high]``; missing cells become NaN."""
    out = []
    for row, value in enumerate(values):
        if is_missing(value):
            out.append(math.nan)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
            valid = False
        else:
            valid = not math.isnan(number) and low <= number <= high
        if not valid or isinstance(value, bool):
            raise DatasetError(
                f"{source.name}: {file}: field '{field}' in row {row + 1} is not a number "
                f"in [{low:g}, {high:g}]: {value!r:.60}"
            )
        out.append(number)
    return pd.Series(out, index=values.index, dtype="float64")


def bool_column(source: DatasetSource, file: Path, field: str, values: pd.Series) -> pd.Series:
    """``values`` as booleans (``True``/``False``, 0/1, or words such as ``yes`` and ``false``)."""
    out = []
    for row, value in enumerate(values):
        if isinstance(value, bool | np.bool_) or (isinstance(value, numbers.Real) and value in (0, 1)):
            out.append(bool(value))
        elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            out.append(value.strip().lower() in _TRUE)
        else:
            raise DatasetError(
                f"{source.name}: {file}: field '{field}' in row {row + 1} is not a boolean: {value!r:.60}"
            )
    return pd.Series(out, index=values.index, dtype=bool)


def as_dict(source: DatasetSource, file: Path, field: str, row: int, value: Any) -> dict[str, Any]:
    """A cell that holds a dict, or a JSON object written as text."""
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if not isinstance(value, dict):
        raise DatasetError(f"{source.name}: {file}: field '{field}' in row {row + 1} is not a dict: {value!r:.60}")
    return value


def assemble(frame: pd.DataFrame, columns: dict[str, pd.Series], used: Iterable[str]) -> pd.DataFrame:
    """The normalised ``columns`` first, then the source's columns that are neither those nor ``used``."""
    consumed = set(used) | set(columns)
    rest = frame[[c for c in frame.columns if c not in consumed]]
    out = pd.DataFrame(columns, index=frame.index)
    return pd.concat([out, rest], axis=1).reset_index(drop=True)


def concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """The frames of several files as one; an empty frame with ``columns`` when there are none."""
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)


__all__ = [
    "as_dict",
    "assemble",
    "bool_column",
    "concat",
    "field_error",
    "find_column",
    "float_column",
    "is_missing",
    "text_column",
]
