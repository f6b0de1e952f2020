r"""Krippendorff's alpha [1]_, with missing ratings, at any level of measurement, at scale.

.. math::
    \alpha = 1 - \frac{D_o}{D_e}
           = 1 - (n-1)\,\frac{\sum_{c,k} o_{ck}\,\delta^2_{ck}}{\sum_{c,k} n_c n_k\,\delta^2_{ck}}

where :math:`o_{ck}=\sum_u \frac{\#\{(c,k)\text{ pairs in unit }u\}}{m_u-1}` is the coincidence matrix over units
with :math:`m_u\ge 2` values, :math:`n_c` its margins and :math:`n` the number of pairable values; the distance
:math:`\delta^2` is the level's (nominal :math:`[c\ne k]`, ordinal, interval :math:`(c-k)^2`, ratio
:math:`((c-k)/(c+k))^2`). Missing ratings are allowed.

Computation. Small problems go straight to the ``krippendorff`` package [3]_ (its ``value_counts`` input, built
with ``bincount``); large ones, where that package's dense ``units × values × values`` array would not fit, use a
sparse coincidence matrix with the same formula, and for interval and nominal data the exact closed forms

.. math::
    \sum_{i\ne j\in u}(v_i-v_j)^2 = 2m_u\sum_{i\in u}(v_i-\bar v_u)^2,\qquad
    \sum_{i\ne j\in u}[v_i\ne v_j] = m_u^2-\sum_c n_{uc}^2

which cost O(ratings) whatever the number of distinct values. Tests check every path against
``krippendorff.alpha``.

Confidence interval. The optional bootstrap resamples units with replacement (a nonparametric unit bootstrap,
not the resampling of coincidences of Hayes & Krippendorff [2]_) and reports the percentile interval.

References
----------
.. [1] Krippendorff, K. (2011). *Computing Krippendorff's alpha-reliability*. Annenberg School for
   Communication, University of Pennsylvania.
.. [2] Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard reliability measure for coding
   data. *Communication Methods and Measures*, 1(1), 77–89.
.. [3] Castro, S. (2017). Fast Krippendorff: fast computation of Krippendorff's alpha agreement measure.
   https://github.com/pln-fing-udelar/fast-krippendorff (the ``krippendorff`` package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.frames import integer_codes, require_columns

__all__ = ["AlphaResult", "Level", "krippendorff_alpha"]

#: Krippendorff's levels of measurement.
Level = Literal["nominal", "ordinal", "interval", "ratio"]


class AlphaResult(NamedTuple):
    """Krippendorff's alpha with a bootstrap percentile interval."""

    alpha: float
    ci_low: float
    ci_high: float
    n_boot: int
    confidence: float


# Above this many cells of the package's dense ``units × values × values`` array, use the sparse path.
_DENSE_CELLS = 4_000_000
# Ordinal and ratio data need a dense ``values × values`` distance matrix.
_MAX_VALUES = 4_000


def krippendorff_alpha(
    data: pd.DataFrame,
    units: str,
    raters: str,
    ratings: str,
    level: Level = "interval",
    bootstrap: int | None = None,
    seed: int | None = 0,
    confidence: float = 0.95,
) -> float | AlphaResult:
    """Krippendorff's alpha of long-format ratings; missing ratings are allowed.

    Args:
        data: One row per (unit, rater) rating; rows with a missing rating, unit or rater id are ignored.
        units: Column of the rated units.
        raters: Column of the raters (a rater may rate a unit at most once).
        ratings: Column of the values (numeric; any hashable values for ``level="nominal"``).
        level: ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``.
        bootstrap: Number of unit-bootstrap replicates for a percentile CI, or ``None`` for none.
        seed: Seed of the bootstrap's random generator.
        confidence: Level of the bootstrap interval.

    Returns:
        The alpha as a float; an :class:`AlphaResult` (alpha, ci_low, ci_high, n_boot, confidence) when
        ``bootstrap`` is given.

    Raises:
        ValueError: an unknown level, a rater rating a unit twice, fewer than two distinct values, or no unit
            with two ratings.

    Examples:
        Krippendorff's (2011) reliability data [1]_: four observers, twelve units, some values missing; the
        published alphas are .743 (nominal), .815 (ordinal), .849 (interval) and .797 (ratio).

        >>> import numpy as np, pandas as pd
        >>> nan = np.nan
        >>> y = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        ...      [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
        >>> data = pd.DataFrame({"unit": np.tile(range(12), 4), "coder": np.repeat(range(4), 12),
        ...                      "value": np.ravel(y)})
        >>> round(krippendorff_alpha(data, "unit", "coder", "value", level="nominal"), 3)
        0.743
        >>> round(krippendorff_alpha(data, "unit", "coder", "value"), 3)
        0.849
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    require_columns(data, [units, raters, ratings])
    present = (data[ratings].notna() & data[units].notna() & data[raters].notna()).to_numpy()
    frame = data.loc[present, [units, raters, ratings]] if not present.all() else data[[units, raters, ratings]]
    unit_codes, unit_index = integer_codes(frame[units], sort=False)
    rater_codes, rater_index = integer_codes(frame[raters], sort=False)
    n_units = int(unit_codes.max()) + 1 if unit_index is None else len(unit_index)
    n_raters = int(rater_codes.max()) + 1 if rater_index is None else len(rater_index)
    if np.bincount(unit_codes * n_raters + rater_codes).max(initial=0) > 1:
        raise ValueError(
            f"some rater rated a unit twice ({raters!r} × {units!r} is not unique): aggregate the duplicates "
            "first, for example with data.groupby([units, raters]).first()"
        )
    if unit_index is None or isinstance(frame[units].dtype, pd.CategoricalDtype):
        # compact integer ids, or categories some of which are unused: renumber the used ones 0..n-1 (an
        # empty unit would still be drawn by the bootstrap)
        used = np.bincount(unit_codes, minlength=n_units) > 0
        if not used.all():
            unit_codes = (np.cumsum(used) - 1)[unit_codes]
            n_units = int(used.sum())
    if level == "nominal":
        value_codes, domain = pd.factorize(frame[ratings], sort=True)
        domain = np.asarray(domain)
    else:
        values = pd.to_numeric(frame[ratings], errors="raise").to_numpy(dtype=float)
        domain, value_codes = np.unique(values, return_inverse=True)
    problem = _AlphaProblem(unit_codes, value_codes.astype(np.int64), domain, n_units)
    problem.check()
    point = problem.alpha(level)
    if bootstrap is None:
        return point
    low, high = problem.bootstrap(level, int(bootstrap), seed, confidence)
    return AlphaResult(point, low, high, int(bootstrap), confidence)


@dataclass
class _AlphaProblem:
    unit_codes: np.ndarray
    value_codes: np.ndarray
    domain: np.ndarray
    n_units: int

    def __post_init__(self) -> None:
        self.m_u = np.bincount(self.unit_codes, minlength=self.n_units)
        self._counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse unit × value counts n_uc as (unit, value, count) arrays; computed once, when needed."""
        if self._counts is None:
            V = len(self.domain)
            uniq, counts = np.unique(self.unit_codes * V + self.value_codes, return_counts=True)
            self._counts = (uniq // V, uniq % V, counts.astype(float))
        return self._counts

    def check(self) -> None:
        if len(self.domain) <= 1:
            raise ValueError(
                f"Krippendorff's alpha is undefined with fewer than two distinct values (got {len(self.domain)})"
            )
        if not (self.m_u >= 2).any():
            raise ValueError("Krippendorff's alpha needs at least one unit rated by two or more raters")

    # Per-unit additive statistics; the estimate is a function of their (weighted) sums.
    def alpha(self, level: Level) -> float:
        return self._alpha_weighted(level, None)

    def _alpha_weighted(self, level: Level, w: np.ndarray | None) -> float:
        V = len(self.domain)
        pairable = self.m_u >= 2
        if w is None and self.n_units * V * V <= _DENSE_CELLS:
            return self._package_alpha(level)
        if level == "interval":
            return self._interval_closed_form(w, pairable)
        if level == "nominal":
            return self._nominal_closed_form(w, pairable)
        if V > _MAX_VALUES:
            raise ValueError(
                f"{V} distinct values is too many for {level} alpha (the distance matrix is values × values): "
                "round or bin the ratings first"
            )
        return _alpha_from_coincidences(self._coincidences(w), self.domain, level)

    def _package_alpha(self, level: Level) -> float:
        import krippendorff

        V = len(self.domain)
        cnt_unit, cnt_value, cnt = self.counts
        value_counts = np.zeros((self.n_units, V), dtype=np.int64)
        value_counts[cnt_unit, cnt_value] = cnt.astype(np.int64)
        domain = self.domain if level != "nominal" else np.arange(V)
        return float(krippendorff.alpha(value_counts=value_counts, value_domain=domain, level_of_measurement=level))

    def _unit_weights(self, w: np.ndarray | None, pairable: np.ndarray) -> np.ndarray:
        base = pairable.astype(float)
        return base if w is None else base * w

    def _interval_closed_form(self, w: np.ndarray | None, pairable: np.ndarray) -> float:
        v = self.domain[self.value_codes].astype(float)
        u = self.unit_codes
        m = self.m_u.astype(float)
        s1 = np.bincount(u, weights=v, minlength=self.n_units)
        s2 = np.bincount(u, weights=v * v, minlength=self.n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            ss_u = np.where(pairable, s2 - s1 * s1 / np.where(m > 0, m, 1), 0.0)
            do_u = np.where(pairable, 2 * m * ss_u / (m - 1), 0.0)
        uw = self._unit_weights(w, pairable)
        n = uw @ m
        sum1 = uw @ s1
        sum2 = uw @ s2
        do = uw @ do_u
        de = 2 * (n * sum2 - sum1 * sum1)
        return float(1 - (n - 1) * do / de)

    def _nominal_closed_form(self, w: np.ndarray | None, pairable: np.ndarray) -> float:
        m = self.m_u.astype(float)
        cnt_unit, cnt_value, cnt = self.counts
        sq = np.bincount(cnt_unit, weights=cnt**2, minlength=self.n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            do_u = np.where(pairable, (m * m - sq) / (m - 1), 0.0)
        uw = self._unit_weights(w, pairable)
        n_c = np.bincount(cnt_value, weights=cnt * uw[cnt_unit], minlength=len(self.domain))
        n = n_c.sum()
        return float(1 - (n - 1) * (uw @ do_u) / (n * n - n_c @ n_c))

    def _coincidences(self, w: np.ndarray | None) -> np.ndarray:
        pairable = self.m_u >= 2
        uw = self._unit_weights(w, pairable)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(pairable, uw / (self.m_u - 1), 0.0)
        V = len(self.domain)
        cnt_unit, cnt_value, cnt = self.counts
        a = sparse.csr_matrix((cnt * np.sqrt(scale[cnt_unit]), (cnt_unit, cnt_value)), shape=(self.n_units, V))
        o = (a.T @ a).toarray()
        o -= np.diag(np.bincount(cnt_value, weights=cnt * scale[cnt_unit], minlength=V))
        return o

    def bootstrap(self, level: Level, n_boot: int, seed: int | None, confidence: float) -> tuple[float, float]:
        if n_boot < 2:
            raise ValueError("bootstrap needs at least 2 replicates")
        rng = np.random.default_rng(seed)
        n = self.n_units
        estimates = np.empty(n_boot)
        for b in range(n_boot):
            w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(float)
            estimates[b] = self._alpha_weighted(level, w)
        tail = (1 - confidence) / 2
        low, high = np.nanquantile(estimates, [tail, 1 - tail])
        return float(low), float(high)


def _distances(domain: np.ndarray, n_c: np.ndarray, level: Level) -> np.ndarray:
    """Krippendorff's squared distances δ² between the values of ``domain`` (sorted unless nominal)."""
    if level == "nominal":
        return 1.0 - np.eye(len(domain))
    c = domain.astype(float)[:, None]
    k = domain.astype(float)[None, :]
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        total = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total != 0, ((c - k) / total) ** 2, 0.0)
    # ordinal: (sum of n_g for g between c and k, minus half of n_c and n_k) squared
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    i = np.arange(len(domain))
    lo = np.minimum(i[:, None], i[None, :])
    hi = np.maximum(i[:, None], i[None, :])
    between = cum[hi + 1] - cum[lo]
    return (between - (n_c[:, None] + n_c[None, :]) / 2) ** 2


def _alpha_from_coincidences(o: np.ndarray, domain: np.ndarray, level: Level) -> float:
    n_c = o.sum(axis=0)
    n = n_c.sum()
    d = _distances(domain, n_c, level)
    return float(1 - (n - 1) * (o * d).sum() / (n_c @ d @ n_c))
