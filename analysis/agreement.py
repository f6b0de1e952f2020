r"""Inter-rater agreement: ICC, Krippendorff's alpha, Fleiss' and Cohen's kappa, judge error correlation.

All functions take a long-format DataFrame, one row per rating, with a unit (target, subject) column, a rater
column and a rating column, in the convention of pingouin.

Intraclass correlation (Shrout & Fleiss 1979; McGraw & Wong 1996)
-----------------------------------------------------------------
With :math:`n` targets each rated by the same :math:`k` raters, the two-way ANOVA of the :math:`n \times k`
matrix :math:`y_{ij}` gives the mean squares

.. math::
    MS_R = \frac{k\sum_i(\bar y_{i\cdot}-\bar y)^2}{n-1},\quad
    MS_C = \frac{n\sum_j(\bar y_{\cdot j}-\bar y)^2}{k-1},\quad
    MS_E = \frac{\sum_{ij}(y_{ij}-\bar y_{i\cdot}-\bar y_{\cdot j}+\bar y)^2}{(n-1)(k-1)},\quad
    MS_W = \frac{SS_C+SS_E}{n(k-1)}

and the six forms

=======  ==========================  ===================================================================
Type     Shrout & Fleiss / McGraw     formula
=======  ==========================  ===================================================================
ICC1     ICC(1,1)                    :math:`(MS_R-MS_W)/(MS_R+(k-1)MS_W)`
ICC2     ICC(2,1) = ICC(A,1)          :math:`(MS_R-MS_E)/(MS_R+(k-1)MS_E+k(MS_C-MS_E)/n)`
ICC3     ICC(3,1) = ICC(C,1)          :math:`(MS_R-MS_E)/(MS_R+(k-1)MS_E)`
ICC1k    ICC(1,k)                    :math:`(MS_R-MS_W)/MS_R`
ICC2k    ICC(2,k) = ICC(A,k)          :math:`(MS_R-MS_E)/(MS_R+(MS_C-MS_E)/n)`
ICC3k    ICC(3,k) = ICC(C,k)          :math:`(MS_R-MS_E)/MS_R`
=======  ==========================  ===================================================================

The F tests are :math:`MS_R/MS_W` on :math:`(n-1, n(k-1))` degrees of freedom for the one-way forms and
:math:`MS_R/MS_E` on :math:`(n-1,(n-1)(k-1))` for the others; the 95 % confidence intervals are McGraw & Wong's
(1996, Table 7), including the Satterthwaite degrees of freedom for ICC2. The output layout (``Type``,
``Description``, ``ICC``, ``F``, ``df1``, ``df2``, ``pval``, ``CI95``) is pingouin's ``intraclass_corr``; the
numbers agree with it to 1e-9. Sums of squares come from ``numpy`` group sums over factorized codes (no loop
over targets), so millions of targets take seconds.

The ANOVA needs a complete, balanced matrix. With ``nan_policy="raise"`` a missing rating raises a
``ValueError``; with ``nan_policy="omit"`` the targets missing any rater are dropped (listwise deletion, as in
pingouin) and the number dropped is stored in ``result.attrs["n_omitted"]``. Several ratings of one target by one
rater are averaged (pingouin's ``pivot_table`` behaviour).

Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's alpha-reliability")
---------------------------------------------------------------------------------------
:math:`\alpha = 1 - D_o/D_e = 1 - (n-1)\,\frac{\sum_{c,k} o_{ck}\,\delta^2_{ck}}{\sum_{c,k} n_c n_k\,\delta^2_{ck}}`,
where :math:`o_{ck}=\sum_u \frac{\#\{(c,k)\text{ pairs in unit }u\}}{m_u-1}` is the coincidence matrix over units
with :math:`m_u\ge 2` values, :math:`n_c` its margins and :math:`n` the number of pairable values; the distance
:math:`\delta^2` is the level's (nominal :math:`[c\ne k]`, ordinal, interval :math:`(c-k)^2`, ratio
:math:`((c-k)/(c+k))^2`). Missing ratings are allowed. Small problems go straight to the ``krippendorff``
package (its ``value_counts`` input, built with ``bincount``); large ones, where that package's dense
``units × values × values`` array would not fit, use a sparse coincidence matrix with the same formula, and for
interval and nominal data the exact closed forms
:math:`\sum_{i\ne j\in u}(v_i-v_j)^2 = 2m_u\sum_{i\in u}(v_i-\bar v_u)^2` and
:math:`\sum_{i\ne j\in u}[v_i\ne v_j] = m_u^2-\sum_c n_{uc}^2`, which cost O(ratings) whatever the number of
distinct values. Tests check every path against ``krippendorff.alpha``. The optional bootstrap resamples units
with replacement (a nonparametric unit bootstrap, not Hayes & Krippendorff's 2007 resampling of coincidences)
and reports the percentile interval.

Fleiss' kappa (Fleiss 1971)
---------------------------
With :math:`N` subjects each rated by the same :math:`n` raters into categories :math:`j`, :math:`n_{ij}` counts:
:math:`p_j=\sum_i n_{ij}/(Nn)`, :math:`P_i=(\sum_j n_{ij}^2-n)/(n(n-1))`,
:math:`\kappa=(\bar P-\sum_j p_j^2)/(1-\sum_j p_j^2)`.

Cohen's kappa (Cohen 1960; weighted: Cohen 1968)
------------------------------------------------
For each rater pair, on the units both rated: :math:`\kappa = 1 - \sum w_{ab}O_{ab}/\sum w_{ab}E_{ab}` with the
observed confusion proportions :math:`O`, the product of margins :math:`E`, and weights :math:`w` zero on the
diagonal (unweighted), :math:`|a-b|` (linear) or :math:`(a-b)^2` (quadratic) on category indices.

Judge error correlation and the effective number of judges
----------------------------------------------------------
Without gold labels each judge's error is estimated by its residual against the mean of the *other* judges,
:math:`e_{ij}=y_{ij}-\frac{1}{k-1}\sum_{l\ne j}y_{il}` (with a ``truth`` column, :math:`e_{ij}=y_{ij}-t_i`).
From the error correlation matrix :math:`R` (eigenvalues :math:`\lambda`), the effective number of independent
judges is :math:`N_{\mathrm{eff}} = (\sum\lambda)^2/\sum\lambda^2 = k^2/\lVert R\rVert_F^2` (Bretherton, Widmann,
Dymnikov, Wallace & Bladé 1999, J. Climate 12:1990, eq. 5): :math:`k` for uncorrelated errors, 1 when all
judges err alike. Caveat, stated in the result as ``n_eff_null``: an error component shared by *all* judges is
indistinguishable from the truth without gold labels, and leave-one-out residuals of independent judges
correlate at :math:`-1/(k-1)`, which gives :math:`N_{\mathrm{eff}}=k-1`. Compare ``n_eff`` with
``n_eff_null``; pairs well above :math:`-1/(k-1)` share errors.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import f as f_dist

from analysis._frames import _codes, as_list, require_columns, wide_matrix

logger = logging.getLogger(__name__)

__all__ = [
    "AlphaResult",
    "JudgeErrors",
    "agreement_by",
    "cohen_kappa_pairs",
    "fleiss_kappa",
    "icc",
    "icc_from_matrix",
    "judge_error_correlation",
    "krippendorff_alpha",
    "spearman_matrix",
]

ICC_TYPES = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
ICC_DESCRIPTIONS = (
    "Single raters absolute",
    "Single random raters",
    "Single fixed raters",
    "Average raters absolute",
    "Average random raters",
    "Average fixed raters",
)
Level = Literal["nominal", "ordinal", "interval", "ratio"]


# --------------------------------------------------------------------------------------------------- ICC


def icc(
    data: pd.DataFrame,
    targets: str,
    raters: str,
    ratings: str,
    nan_policy: Literal["raise", "omit"] = "raise",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Intraclass correlations, the six Shrout & Fleiss forms, in pingouin's ``intraclass_corr`` layout.

    Args:
        data: Long-format ratings, one row per (target, rater).
        targets: Column of the rated units.
        raters: Column of the raters.
        ratings: Column of the numeric ratings.
        nan_policy: ``"raise"`` on missing ratings or unbalanced data; ``"omit"`` drops every target that
            misses any rater (listwise deletion; the number dropped is in ``result.attrs["n_omitted"]``).
        confidence: Level of the ``CI95`` intervals (the column keeps pingouin's name).

    Returns:
        DataFrame with columns ``Type, Description, ICC, F, df1, df2, pval, CI95``, one row per form.

    Raises:
        ValueError: missing ratings with ``nan_policy="raise"``, or fewer than 2 complete targets or raters.
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    wide = wide_matrix(data, targets, raters, ratings)
    n_missing_rows = int(data[ratings].isna().sum())
    incomplete = np.isnan(wide.values).any(axis=1)
    if incomplete.any() or n_missing_rows:
        if nan_policy == "raise":
            raise ValueError(
                f"{int(incomplete.sum())} of {len(wide.units)} targets miss a rating from some rater "
                f"({n_missing_rows} missing values): the ICC needs complete, balanced data. Pass "
                "nan_policy='omit' to drop those targets (listwise deletion)."
            )
        wide = wide.complete()
    result = icc_from_matrix(wide.values, confidence=confidence)
    result.attrs["n_omitted"] = int(incomplete.sum())
    result.attrs["n_targets"] = int(wide.values.shape[0])
    result.attrs["n_raters"] = int(wide.values.shape[1])
    return result


def icc_from_matrix(y: np.ndarray, confidence: float = 0.95) -> pd.DataFrame:
    """The six ICCs of a complete ``targets × raters`` matrix; see :func:`icc`."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError("expected a 2-D targets × raters matrix")
    n, k = y.shape
    if n < 2 or k < 2:
        raise ValueError(f"the ICC needs at least 2 complete targets and 2 raters, got {n} targets × {k} raters")
    if np.isnan(y.sum()):
        raise ValueError("the matrix has missing values; drop incomplete targets first")
    yt = np.ascontiguousarray(y.T)  # raters × targets: the reductions below run over contiguous rows
    col = yt.mean(axis=1)
    grand = col.mean()
    row = yt.sum(axis=0) / k
    ssr = k * np.sum((row - grand) ** 2)
    ssc = n * np.sum((col - grand) ** 2)
    resid = yt - row[None, :]
    resid -= (col - grand)[:, None]
    sse = np.sum(resid * resid)
    msb = ssr / (n - 1)
    msj = ssc / (k - 1)
    mse = sse / ((n - 1) * (k - 1))
    msw = (ssc + sse) / (n * (k - 1))

    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msb - msw) / (msb + (k - 1) * msw)
        icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
        icc3 = (msb - mse) / (msb + (k - 1) * mse)
        icc1k = (msb - msw) / msb
        icc2k = (msb - mse) / (msb + (msj - mse) / n)
        icc3k = (msb - mse) / msb

        df1 = n - 1
        df1kd = n * (k - 1)
        df2kd = (n - 1) * (k - 1)
        f1k = msb / msw
        f2k = msb / mse
        p1k = f_dist.sf(f1k, df1, df1kd)
        p2k = f_dist.sf(f2k, df1, df2kd)

        q = 1 - (1 - confidence) / 2
        f1l = f1k / f_dist.ppf(q, df1, df1kd)
        f1u = f1k * f_dist.ppf(q, df1kd, df1)
        f3l = f2k / f_dist.ppf(q, df1, df2kd)
        f3u = f2k * f_dist.ppf(q, df2kd, df1)
        l1, u1 = (f1l - 1) / (f1l + (k - 1)), (f1u - 1) / (f1u + (k - 1))
        l3, u3 = (f3l - 1) / (f3l + (k - 1)), (f3u - 1) / (f3u + (k - 1))
        # ICC2: McGraw & Wong (1996) with Satterthwaite's approximate degrees of freedom.
        fj = msj / mse
        vn = df2kd * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        f2u = f_dist.ppf(q, n - 1, v)
        f2l = f_dist.ppf(q, v, n - 1)
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)

    cis = [
        np.array([l1, u1]),
        np.array([l2, u2]),
        np.array([l3, u3]),
        np.array([1 - 1 / f1l, 1 - 1 / f1u]),
        np.array([l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))]),
        np.array([1 - 1 / f3l, 1 - 1 / f3u]),
    ]
    return pd.DataFrame(
        {
            "Type": list(ICC_TYPES),
            "Description": list(ICC_DESCRIPTIONS),
            "ICC": [icc1, icc2, icc3, icc1k, icc2k, icc3k],
            "F": [f1k, f2k, f2k, f1k, f2k, f2k],
            "df1": [df1] * 6,
            "df2": [df1kd, df2kd, df2kd, df1kd, df2kd, df2kd],
            "pval": [p1k, p2k, p2k, p1k, p2k, p2k],
            "CI95": cis,
        }
    )


# ------------------------------------------------------------------------------------- Krippendorff's alpha


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
        data: One row per (unit, rater) rating; rows with a missing rating are ignored.
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
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    require_columns(data, [units, raters, ratings])
    present = data[ratings].notna().to_numpy()
    frame = data.loc[present, [units, raters, ratings]] if not present.all() else data[[units, raters, ratings]]
    unit_codes, unit_index = _codes(frame[units], sort=False)
    rater_codes, rater_index = _codes(frame[raters], sort=False)
    n_units = int(unit_codes.max()) + 1 if unit_index is None else len(unit_index)
    n_raters = int(rater_codes.max()) + 1 if rater_index is None else len(rater_index)
    if np.bincount(unit_codes * n_raters + rater_codes).max(initial=0) > 1:
        raise ValueError(
            f"some rater rated a unit twice ({raters!r} × {units!r} is not unique): aggregate the duplicates "
            "first, for example with data.groupby([units, raters]).first()"
        )
    if unit_index is None:  # compact integer ids: renumber the used ones 0..n-1
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


# --------------------------------------------------------------------------------------------------- kappas


def fleiss_kappa(data: pd.DataFrame, subjects: str, raters: str, ratings: str) -> float:
    """Fleiss' (1971) kappa for categorical ratings, every subject rated by the same number of raters.

    Args:
        data: One row per (subject, rater) rating; rows with a missing rating are ignored.
        subjects: Column of the rated subjects.
        raters: Column of the raters (only the number of ratings per subject matters; raters may differ).
        ratings: Column of the categories.

    Raises:
        ValueError: subjects with different numbers of ratings (drop them or use :func:`krippendorff_alpha`,
            which allows missing ratings), or fewer than two ratings per subject.
    """
    require_columns(data, [subjects, raters, ratings])
    frame = data.loc[data[ratings].notna(), [subjects, ratings]]
    s_codes, s_index = pd.factorize(frame[subjects], sort=False)
    c_codes, c_index = pd.factorize(frame[ratings], sort=True)
    table = np.zeros((len(s_index), len(c_index)))
    np.add.at(table, (s_codes, c_codes), 1.0)
    return fleiss_kappa_from_table(table)


def fleiss_kappa_from_table(table: np.ndarray) -> float:
    """Fleiss' kappa of a ``subjects × categories`` count table (each row summing to the number of raters)."""
    table = np.asarray(table, dtype=float)
    per_subject = table.sum(axis=1)
    if len(per_subject) == 0:
        raise ValueError("no ratings")
    n = per_subject[0]
    if not np.all(per_subject == n):
        raise ValueError(
            f"Fleiss' kappa needs the same number of ratings per subject; got between {int(per_subject.min())} "
            f"and {int(per_subject.max())}. Keep complete subjects, or use krippendorff_alpha(level='nominal')."
        )
    if n < 2:
        raise ValueError("Fleiss' kappa needs at least two ratings per subject")
    n_subjects = table.shape[0]
    p_j = table.sum(axis=0) / (n_subjects * n)
    p_i = (np.sum(table * table, axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_e = np.sum(p_j * p_j)
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


def cohen_kappa_pairs(
    data: pd.DataFrame,
    units: str,
    raters: str,
    ratings: str,
    weights: Literal["linear", "quadratic"] | None = None,
) -> pd.DataFrame:
    """Cohen's kappa for every pair of raters, on the units both rated.

    Args:
        data: One row per (unit, rater) rating.
        units, raters, ratings: Column names; ratings are categories (bin continuous scores first).
        weights: ``None`` (unweighted), ``"linear"`` or ``"quadratic"`` (on sorted category indices).

    Returns:
        Tidy DataFrame with columns ``rater_a, rater_b, n, kappa``, one row per pair.
    """
    require_columns(data, [units, raters, ratings])
    frame = data.loc[data[ratings].notna(), [units, raters, ratings]]
    cat_codes, cats = pd.factorize(frame[ratings], sort=True)
    coded = frame.assign(**{ratings: cat_codes.astype(float)})
    wide = wide_matrix(coded, units, raters, ratings)
    if wide.n_duplicates:
        raise ValueError("some rater rated a unit twice: aggregate duplicates before computing kappas")
    q = len(cats)
    idx = np.arange(q, dtype=float)
    if weights is None:
        w = 1.0 - np.eye(q)
    elif weights == "linear":
        w = np.abs(idx[:, None] - idx[None, :])
    elif weights == "quadratic":
        w = (idx[:, None] - idx[None, :]) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    rows = []
    for a, b in itertools.combinations(range(len(wide.raters)), 2):
        ya, yb = wide.values[:, a], wide.values[:, b]
        both = ~(np.isnan(ya) | np.isnan(yb))
        n = int(both.sum())
        kappa = float("nan")
        if n:
            conf = np.bincount(ya[both].astype(np.int64) * q + yb[both].astype(np.int64), minlength=q * q)
            conf = conf.reshape(q, q) / n
            expected = np.outer(conf.sum(axis=1), conf.sum(axis=0))
            denom = np.sum(w * expected)
            kappa = float(1 - np.sum(w * conf) / denom) if denom > 0 else float("nan")
        rows.append({"rater_a": wide.raters[a], "rater_b": wide.raters[b], "n": n, "kappa": kappa})
    return pd.DataFrame(rows, columns=["rater_a", "rater_b", "n", "kappa"])


# ------------------------------------------------------------------------------ correlations between judges


def spearman_matrix(data: pd.DataFrame, units: str, raters: str, ratings: str) -> pd.DataFrame:
    """Pairwise Spearman rank correlations between raters (pairwise-complete units); raters × raters."""
    from scipy.stats import rankdata

    wide = wide_matrix(data, units, raters, ratings)
    y = wide.values
    k = y.shape[1]
    out = np.eye(k)
    present = ~np.isnan(y)
    complete = bool(present.all())
    ranks = [rankdata(y[:, j]) for j in range(k)] if complete else None
    for a, b in itertools.combinations(range(k), 2):
        if complete:
            ra, rb = ranks[a], ranks[b]
        else:
            both = present[:, a] & present[:, b]
            ra, rb = rankdata(y[both, a]), rankdata(y[both, b])
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.corrcoef(ra, rb)[0, 1] if len(ra) > 1 else np.nan
        out[a, b] = out[b, a] = rho
    return pd.DataFrame(out, index=wide.raters, columns=wide.raters)


@dataclass(frozen=True)
class JudgeErrors:
    """Judges' errors, their correlation matrix and the effective number of independent judges."""

    residuals: pd.DataFrame
    correlation: pd.DataFrame
    n_eff: float
    n_eff_null: float
    n_units: int
    method: str

    def summary(self) -> pd.DataFrame:
        """One row per judge: its mean residual, residual SD and mean error correlation with the others."""
        r = self.correlation.to_numpy()
        k = r.shape[0]
        mean_corr = (r.sum(axis=1) - 1) / max(k - 1, 1)
        return pd.DataFrame(
            {
                "rater": self.correlation.index,
                "mean_residual": self.residuals.mean().to_numpy(),
                "sd_residual": self.residuals.std(ddof=1).to_numpy(),
                "mean_error_corr": mean_corr,
            }
        )


def judge_error_correlation(
    data: pd.DataFrame, units: str, raters: str, ratings: str, truth: str | None = None
) -> JudgeErrors:
    """Each judge's error, the judges' error correlations and the effective number of independent judges.

    Args:
        data: One row per (unit, rater) rating; units missing any judge are dropped.
        units, raters, ratings: Column names.
        truth: Optional column with each unit's gold value; errors are then ``rating − truth``. Without it, a
            judge's error is its residual against the mean of the other judges (needs ≥ 3 judges).

    Returns:
        :class:`JudgeErrors`; ``n_eff`` is Bretherton et al.'s (1999) ``(Σλ)²/Σλ²`` of the error correlation
        matrix and ``n_eff_null`` its value for independent judges (``k`` with ``truth``, ``k − 1`` without).
    """
    wide = wide_matrix(data, units, raters, ratings).complete()
    y = wide.values
    n, k = y.shape
    if truth is not None:
        require_columns(data, [truth])
        t = data.groupby(units, sort=False)[truth].first().reindex(wide.units).to_numpy(dtype=float)
        keep = ~np.isnan(t)
        y, t = y[keep], t[keep]
        errors = y - t[:, None]
        method, null = "rating minus truth", float(k)
        index = wide.units[keep]
    else:
        if k < 3:
            raise ValueError(
                f"judge error correlation without a truth column needs at least 3 judges, got {k}: with 2 "
                "judges the leave-one-out residuals are perfectly anti-correlated"
            )
        others = (y.sum(axis=1, keepdims=True) - y) / (k - 1)
        errors = y - others
        method, null = "residual vs mean of the other judges", float(k - 1)
        index = wide.units
    if errors.shape[0] < 3:
        raise ValueError(f"too few complete units ({errors.shape[0]}) to correlate judge errors")
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(errors, rowvar=False)
    frob = np.nansum(corr**2)
    n_eff = float(k * k / frob) if frob > 0 else float("nan")
    return JudgeErrors(
        residuals=pd.DataFrame(errors, index=index, columns=wide.raters),
        correlation=pd.DataFrame(corr, index=wide.raters, columns=wide.raters),
        n_eff=n_eff,
        n_eff_null=null,
        n_units=int(errors.shape[0]),
        method=method,
    )


# ------------------------------------------------------------------------------------------- by subgroup


def agreement_by(
    data: pd.DataFrame,
    by: str | Sequence[str] | None,
    units: str,
    raters: str,
    ratings: str,
    metrics: Sequence[str] = ("icc", "alpha"),
    level: Level = "interval",
    bootstrap: int | None = None,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Agreement figures for every subgroup (language, domain, framing, …) in one tidy table.

    Args:
        data: Long-format ratings.
        by: Column(s) defining the subgroups; ``None`` or ``[]`` for the whole data.
        units, raters, ratings: Column names.
        metrics: Any of ``"icc"`` (six rows, ``nan_policy="omit"``), ``"alpha"`` (at ``level``, with a CI when
            ``bootstrap`` is given), ``"fleiss_kappa"`` (complete units only), ``"spearman"`` (mean pairwise).
        level: Level of measurement for alpha.
        bootstrap, seed: Bootstrap replicates and seed for alpha's CI.

    Returns:
        Columns ``*by, metric, value, ci_low, ci_high, n_units, n_raters, note``. A subgroup where a metric is
        undefined (one rater, constant ratings, …) gets ``value = NaN`` and the reason in ``note``.
    """
    by = as_list(by)
    require_columns(data, [*by, units, raters, ratings])
    unknown = set(metrics) - {"icc", "alpha", "fleiss_kappa", "spearman"}
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from icc, alpha, fleiss_kappa, spearman")
    groups = data.groupby(by, observed=True, sort=True) if by else [((), data)]
    rows: list[dict] = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = dict(zip(by, key, strict=True))
        part = part[part[ratings].notna()]
        n_units = int(part[units].nunique())
        n_raters = int(part[raters].nunique())

        def add(
            metric: str,
            value=np.nan,
            low=np.nan,
            high=np.nan,
            note: str = "",
            n: int = n_units,
            base: dict = base,
            n_raters: int = n_raters,
        ) -> None:
            rows.append(
                {
                    **base,
                    "metric": metric,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "n_units": n,
                    "n_raters": n_raters,
                    "note": note,
                }
            )

        if "icc" in metrics:
            try:
                res = icc(part, units, raters, ratings, nan_policy="omit")
                for _, r in res.iterrows():
                    add(r["Type"], r["ICC"], r["CI95"][0], r["CI95"][1], n=res.attrs["n_targets"])
            except ValueError as exc:
                for t in ICC_TYPES:
                    add(t, note=str(exc))
        if "alpha" in metrics:
            try:
                res = krippendorff_alpha(part, units, raters, ratings, level=level, bootstrap=bootstrap, seed=seed)
                if isinstance(res, AlphaResult):
                    add(f"alpha_{level}", res.alpha, res.ci_low, res.ci_high)
                else:
                    add(f"alpha_{level}", res)
            except ValueError as exc:
                add(f"alpha_{level}", note=str(exc))
        if "fleiss_kappa" in metrics:
            try:
                wide = wide_matrix(part, units, raters, ratings).complete()
                complete = part[part[units].isin(wide.units)]
                add("fleiss_kappa", fleiss_kappa(complete, units, raters, ratings), n=len(wide.units))
            except ValueError as exc:
                add("fleiss_kappa", note=str(exc))
        if "spearman" in metrics:
            if n_raters < 2:
                add("mean_spearman", note="fewer than 2 raters")
            else:
                m = spearman_matrix(part, units, raters, ratings).to_numpy()
                off = m[~np.eye(len(m), dtype=bool)]
                add("mean_spearman", float(np.nanmean(off)) if np.isfinite(off).any() else np.nan)
    return pd.DataFrame(rows, columns=[*by, "metric", "value", "ci_low", "ci_high", "n_units", "n_raters", "note"])
