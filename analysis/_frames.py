"""Shared helpers: column checks and a vectorised long-to-wide pivot.

Everything in ``analysis`` takes long-format DataFrames (one row per rating) in the convention of pingouin. The
estimators work on a dense ``units × raters`` matrix; :func:`wide_matrix` builds it with ``numpy.bincount`` over
factorized codes rather than ``DataFrame.pivot_table``, which is what keeps millions of units to seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


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
    """A dense ``units × raters`` matrix with ``NaN`` for missing ratings."""

    values: np.ndarray
    units: pd.Index
    raters: pd.Index
    n_duplicates: int

    def complete(self) -> Wide:
        """Only the units rated by every rater (listwise deletion)."""
        keep = ~np.isnan(self.values).any(axis=1)
        return Wide(self.values[keep], self.units[keep], self.raters, self.n_duplicates)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=self.units, columns=self.raters)


def wide_matrix(data: pd.DataFrame, units: str, raters: str, ratings: str) -> Wide:
    """Pivot long ratings to a dense ``units × raters`` float matrix.

    Rows whose rating is missing are dropped first. Several ratings of one unit by one rater are averaged (the
    ``pivot_table`` behaviour pingouin relies on); their number is reported in ``n_duplicates``.
    """
    require_columns(data, [units, raters, ratings])
    y = pd.to_numeric(data[ratings], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(y)
    unit_col, rater_col = data[units], data[raters]
    if not ok.all():
        unit_col, rater_col = unit_col[ok], rater_col[ok]
    unit_codes, unit_index = _codes(unit_col, sort=False)
    rater_codes, rater_index = _codes(rater_col, sort=True)
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
    return Wide(values.T, unit_index, pd.Index(rater_index, name=raters), n_dup)


def str_categorical(column: pd.Series) -> pd.Series:
    """The column as a categorical with string categories; cheap for categoricals (only categories change)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    return column.cat.rename_categories([str(c) for c in column.cat.categories])


def _codes(column: pd.Series, sort: bool) -> tuple[np.ndarray, np.ndarray | None]:
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


def wilson_ci(successes: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (Wilson 1927); ``NaN`` where ``n == 0``."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + confidence / 2)
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # with no successes the lower bound is exactly 0 (and with all successes the upper is 1); rounding leaves
    # residue such as 1e-17 there, which would put the bound on the wrong side of the rate
    low = np.where(successes == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(successes == n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def mean_ci(
    values: pd.Series, by: list[str] | None = None, frame: pd.DataFrame | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Mean, standard error and normal-approximation CI of ``values``, overall or grouped by ``frame[by]``."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + confidence / 2)
    if by:
        g = values.groupby([frame[c] for c in by], observed=True, sort=True)
        out = pd.DataFrame({"n": g.count(), "mean": g.mean(), "sd": g.std(ddof=1)})
    else:
        out = pd.DataFrame({"n": [values.count()], "mean": [values.mean()], "sd": [values.std(ddof=1)]})
    se = out["sd"] / np.sqrt(out["n"])
    out["ci_low"] = out["mean"] - z * se
    out["ci_high"] = out["mean"] + z * se
    return out.drop(columns="sd").reset_index() if by else out.drop(columns="sd")
