"""Shared DataFrame helpers: column checks, integer codes, a vectorised long-to-wide pivot, JSON-safe values.

Everything in ``analysis`` takes long-format DataFrames (one row per rating) in the convention of pingouin. The
estimators work on a dense ``units × raters`` matrix; :func:`wide_matrix` builds it with ``numpy.bincount`` over
the codes of :func:`integer_codes` rather than ``DataFrame.pivot_table``, which is what keeps millions of units to
seconds. :func:`jsonable` turns table cells (numpy scalars, ``NaN``, ``pd.NA``) into values ``json.dumps`` takes.

Missing ids. A row whose unit or rater id is missing cannot be placed in the matrix (its integer code would be
``-1``, which indexes another unit's cell): :func:`wide_matrix` drops it, like a row with a missing rating, and
counts it in :attr:`Wide.n_missing_id`, which the estimators built on the pivot report (``attrs
["n_dropped_missing_id"]``). Unused categories of categorical ids are not units or raters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Wide",
    "as_list",
    "integer_codes",
    "jsonable",
    "pairs_in",
    "require_columns",
    "str_categorical",
    "values_as_strings",
    "wide_matrix",
]


def require_columns(data: pd.DataFrame, columns: Iterable[str | None], what: str = "data") -> None:
    """Raise a ``KeyError`` naming every column of ``columns`` that ``data`` lacks."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise KeyError(f"{what} has no column(s) {missing}; available: {list(data.columns)}")


def as_list(by: str | Sequence[str] | None) -> list[str]:
    """``None`` → ``[]``, a string → ``[string]``, a sequence → a list."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


@dataclass(frozen=True)
class Wide:
    """A dense ``units × raters`` matrix with ``NaN`` for missing ratings.

    ``n_duplicates`` counts the cells that averaged several ratings; ``n_missing_id`` the rows dropped because
    their unit or rater id was missing.
    """

    values: np.ndarray
    units: pd.Index
    raters: pd.Index
    n_duplicates: int
    n_missing_id: int = 0

    def complete(self) -> Wide:
        """Only the units rated by every rater (listwise deletion)."""
        keep = ~np.isnan(self.values).any(axis=1)
        return Wide(self.values[keep], self.units[keep], self.raters, self.n_duplicates, self.n_missing_id)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=self.units, columns=self.raters)


def wide_matrix(data: pd.DataFrame, units: str, raters: str, ratings: str) -> Wide:
    """Pivot long ratings to a dense ``units × raters`` float matrix.

    Rows whose rating is missing are dropped first, and so are rows whose unit or rater id is missing (counted
    in ``n_missing_id``). Several ratings of one unit by one rater are averaged (the ``pivot_table`` behaviour
    pingouin relies on); their number is reported in ``n_duplicates``. Unused categories of categorical ids
    give no row or column.
    """
    require_columns(data, [units, raters, ratings])
    try:
        y = pd.to_numeric(data[ratings], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"the ratings {ratings!r} are not numeric ({exc}): this statistic needs numbers; for category labels "
            "use fleiss_kappa, cohen_kappa_pairs or krippendorff_alpha(level='nominal')"
        ) from exc
    unit_col, rater_col = data[units], data[raters]
    no_id = unit_col.isna().to_numpy() | rater_col.isna().to_numpy()
    n_missing_id = int(no_id.sum())
    ok = ~np.isnan(y)
    if n_missing_id:
        ok &= ~no_id
    if not ok.all():
        unit_col, rater_col = unit_col[ok], rater_col[ok]
    unit_codes, unit_index = integer_codes(unit_col, sort=False)
    rater_codes, rater_index = integer_codes(rater_col, sort=True)
    if isinstance(unit_col.dtype, pd.CategoricalDtype):
        used = np.bincount(unit_codes, minlength=len(unit_index)) > 0
        if not used.all():  # unused categories are not units
            unit_codes = (np.cumsum(used) - 1)[unit_codes]
            unit_index = unit_index[used]
    if unit_index is None:
        # Compact integer ids: renumber the ones in use 0..n-1 (no hashing).
        lo = int(unit_col.min())
        used = np.bincount(unit_codes) > 0
        if used.all():
            unit_index = pd.RangeIndex(lo, lo + len(used), name=units)
        else:
            unit_codes = (np.cumsum(used) - 1)[unit_codes]
            unit_index = pd.Index(np.flatnonzero(used) + lo, name=units)
    else:
        unit_index = pd.Index(unit_index, name=units)
    n = len(unit_index)
    k = len(rater_index)
    # Rater-major layout: each rater's column is contiguous, which makes the per-target sums cheap.
    flat = rater_codes * n + unit_codes
    if not ok.all():
        y = y[ok]
    values = np.full(n * k, np.nan)
    values[flat] = y
    # n·k writes that leave no cell empty: complete and balanced, each cell written exactly once.
    balanced = len(flat) == n * k and not np.isnan(values.sum())
    n_dup = 0
    if not balanced:
        counts = np.bincount(flat, minlength=n * k)
        if counts.max() > 1:
            sums = np.bincount(flat, weights=y, minlength=n * k)
            with np.errstate(invalid="ignore", divide="ignore"):
                values = sums / counts  # cells without a rating are 0/0 = NaN
            n_dup = int((counts > 1).sum())
        counts = counts.reshape(k, n)
        if (unused := counts.sum(axis=1) == 0).any():  # unused categories
            values = values.reshape(k, n)[~unused].ravel()
            rater_index = rater_index[~unused]
            k = len(rater_index)
    values = values.reshape(k, n)
    return Wide(values.T, unit_index, pd.Index(rater_index, name=raters), n_dup, n_missing_id)


def str_categorical(column: pd.Series) -> pd.Series:
    """The column as a categorical with string categories; cheap for categoricals (only categories change)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    return column.cat.rename_categories([str(c) for c in column.cat.categories])


def values_as_strings(column: pd.Series) -> set[str]:
    """The values of ``column`` as strings (``str`` of each), missing ones left out; from the codes, no string per
    row (4.5M ratings)."""
    cat = str_categorical(column)
    return {cat.cat.categories[c] for c in np.unique(cat.cat.codes.to_numpy()) if c >= 0}


def pairs_in(a: pd.Series, b: pd.Series, pairs: set[tuple[str, str]]) -> np.ndarray:
    """Whether each row's ``(str(a), str(b))`` is one of ``pairs`` (never where either is missing), from the
    codes of both columns."""
    cat_a, cat_b = str_categorical(a), str_categorical(b)
    names_a, names_b = list(cat_a.cat.categories), list(cat_b.cat.categories)
    hit = np.zeros((len(names_a) + 1, len(names_b) + 1), dtype=bool)  # the last row and column: missing
    for i, x in enumerate(names_a):
        for j, y in enumerate(names_b):
            hit[i, j] = (x, y) in pairs
    return hit[cat_a.cat.codes.to_numpy(), cat_b.cat.codes.to_numpy()]


def integer_codes(column: pd.Series, sort: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer codes of a column without hashing where possible (categoricals, compact integer ids).

    Returns ``(codes, uniques)``; ``uniques`` is ``None`` for compact integers, whose codes are ``x − min``.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64), np.asarray(column.cat.categories)
    if not sort and column.dtype.kind in "iu" and len(column):
        lo, hi = int(column.min()), int(column.max())
        if hi - lo < 4 * len(column) + 1024:
            return column.to_numpy().astype(np.int64) - lo, None
    # Hash factorization; units keep first-seen order (sorting millions of keys changes no estimate).
    codes, uniques = pd.factorize(column, sort=sort)
    return codes.astype(np.int64), np.asarray(uniques)


def jsonable(value: Any) -> Any:
    """``value`` as something ``json.dumps`` writes: containers recursively, non-finite floats and missing as ``None``.

    Dicts get string keys; lists, tuples and arrays become lists; numpy scalars become Python scalars; ``NaN``,
    ``±inf``, ``pd.NA`` and ``pd.NaT`` become ``None``; any other object becomes its ``str``.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
