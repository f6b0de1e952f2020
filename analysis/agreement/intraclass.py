r"""Intraclass correlation: the six forms of Shrout & Fleiss [1]_ and McGraw & Wong [2]_.

With :math:`n` units (targets) each rated by the same :math:`k` raters, the two-way ANOVA of the
:math:`n \times k` matrix :math:`y_{ij}` gives the mean squares

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
([2]_, Table 7), including the Satterthwaite degrees of freedom for ICC2. The output layout (``Type``,
``Description``, ``ICC``, ``F``, ``df1``, ``df2``, ``pval``, ``CI95``) is pingouin's ``intraclass_corr`` [3]_; the
numbers agree with it to 1e-9. Sums of squares come from ``numpy`` group sums over factorized codes (no loop
over units), so millions of units take seconds.

Where the F-based intervals fail (small n). The intervals of ICC1, ICC3, ICC1k and ICC3k are exact pivots of
one F statistic and always contain their estimate. Two approximations can break at small n, and each case is
said in the ``note`` column rather than printed as a figure:

* ICC2k's interval is ICC2's stepped up to k raters by Spearman–Brown, :math:`x \mapsto kx/(1+(k-1)x)`, which
  maps ICC2's range :math:`(-1/(k-1), 1]` onto :math:`(-\infty, 1]` and has its pole at :math:`-1/(k-1)`.
  Applied past the pole (as pingouin does) a lower bound comes out above 1 and above the upper bound: in a
  quarter (some agreement) to two fifths (pure noise) of random 5 × 2 designs. Here a bound at or below the
  pole is clamped to :math:`-\infty`, the end of ICC2k's parameter space (note ``lower bound clamped to
  -inf``), and an ICC2 estimate at or below the pole (where ICC2k's denominator :math:`MS_R+(MS_C-MS_E)/n` is
  not positive and the formula gives values above 1) leaves ICC2k undefined (``NaN``).
* McGraw & Wong's Satterthwaite interval for ICC2 can miss its own estimate, or have a ``NaN`` end, when the
  approximate df :math:`v` is tiny (strongly negative agreement); the interval is then ``NaN`` (and ICC2k's
  with it).

The published examples (Shrout & Fleiss's table, pingouin's wine ratings) are untouched: their intervals equal
pingouin's to 1e-12. With no error variance (:math:`MS_E=0`: raters agree exactly, up to offsets for the
two-way forms) the F statistic is infinite and its p-value would be an exact 0: the p-value is ``NaN`` and the
note says why; constant ratings leave every form undefined.

The ANOVA needs a complete, balanced matrix. With ``nan_policy="raise"`` a missing rating raises a
``ValueError``, and so does a row with a missing unit or rater id (its rating belongs to no target); with
``nan_policy="omit"`` those rows are dropped (counted in ``result.attrs["n_dropped_missing_id"]``) and the units
missing any rater are dropped (listwise deletion, as in pingouin; counted in ``result.attrs["n_omitted"]``).
Unused categories of categorical ids are ignored. Several ratings of one unit by one rater are averaged
(pingouin's ``pivot_table`` behaviour).

References
----------
.. [1] Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater reliability.
   *Psychological Bulletin*, 86(2), 420–428.
.. [2] McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some intraclass correlation coefficients.
   *Psychological Methods*, 1(1), 30–46.
.. [3] Vallat, R. (2018). Pingouin: statistics in Python. *Journal of Open Source Software*, 3(31), 1026.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import f as f_dist

from analysis.deprecation import renamed_keyword
from analysis.frames import wide_matrix

__all__ = ["ICC_DESCRIPTIONS", "ICC_TYPES", "icc", "icc_from_matrix"]

ICC_TYPES = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
ICC_DESCRIPTIONS = (
    "Single raters absolute",
    "Single random raters",
    "Single fixed raters",
    "Average raters absolute",
    "Average random raters",
    "Average fixed raters",
)


@renamed_keyword("targets", "units")
def icc(
    data: pd.DataFrame,
    units: str,
    raters: str,
    ratings: str,
    nan_policy: Literal["raise", "omit"] = "raise",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Intraclass correlations, the six Shrout & Fleiss forms, in pingouin's ``intraclass_corr`` layout.

    Args:
        data: Long-format ratings, one row per (unit, rater).
        units: Column of the rated units (pingouin's ``targets``; the keyword ``targets=`` still works until
            0.2.0, with a ``DeprecationWarning``).
        raters: Column of the raters.
        ratings: Column of the numeric ratings.
        nan_policy: ``"raise"`` on missing ratings, missing unit or rater ids, or unbalanced data; ``"omit"``
            drops the rows without an id (``result.attrs["n_dropped_missing_id"]``) and every unit that misses
            any rater (listwise deletion; ``result.attrs["n_omitted"]``).
        confidence: Level of the ``CI95`` intervals (the column keeps pingouin's name).

    Returns:
        DataFrame with columns ``Type, Description, ICC, F, df1, df2, pval, CI95, note``, one row per form: the
        first eight are pingouin's; ``note`` is empty, or says why a figure is clamped, undefined or missing
        (see the module docstring). ``result.attrs`` holds ``n_omitted``, ``n_dropped_missing_id``,
        ``n_units`` (also under pingouin's name ``n_targets``) and ``n_raters``.

    Raises:
        ValueError: missing ratings or ids with ``nan_policy="raise"``, or fewer than 2 complete units or raters.

    Examples:
        Shrout & Fleiss's (1979) six targets rated by four judges [1]_ (their Table 4 gives .17, .29, .71, .44,
        .62, .91):

        >>> import numpy as np, pandas as pd
        >>> y = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
        >>> data = pd.DataFrame({"target": np.repeat(range(6), 4), "judge": np.tile(list("abcd"), 6),
        ...                      "score": np.ravel(y)})
        >>> print(icc(data, "target", "judge", "score")[["Type", "ICC"]].round(2).to_string(index=False))
         Type  ICC
         ICC1 0.17
         ICC2 0.29
         ICC3 0.71
        ICC1k 0.44
        ICC2k 0.62
        ICC3k 0.91
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    wide = wide_matrix(data, units, raters, ratings)
    if wide.n_missing_id and nan_policy == "raise":
        raise ValueError(
            f"{wide.n_missing_id} row(s) have no unit or rater id ({units!r} or {raters!r} is missing): their "
            "ratings belong to no target. Pass nan_policy='omit' to drop them (counted in "
            "result.attrs['n_dropped_missing_id'])."
        )
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
    result.attrs["n_dropped_missing_id"] = wide.n_missing_id
    result.attrs["n_units"] = result.attrs["n_targets"] = int(wide.values.shape[0])
    result.attrs["n_raters"] = int(wide.values.shape[1])
    return result


def icc_from_matrix(y: np.ndarray, confidence: float = 0.95) -> pd.DataFrame:
    """The six ICCs of a complete ``units × raters`` matrix; see :func:`icc` (and the module docstring for the
    ``note`` column: clamped, undefined and degenerate figures)."""
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
    sst = ssr + ssc + sse
    constant = not sst > 0
    # Rounding leaves residue of order eps² · sst where the residuals are exactly zero.
    no_error = not constant and sse <= _NO_VARIANCE * sst
    no_within = not constant and ssc + sse <= _NO_VARIANCE * sst
    if no_error:
        sse = 0.0
    msb = ssr / (n - 1)
    msj = ssc / (k - 1)
    mse = sse / ((n - 1) * (k - 1))
    msw = 0.0 if no_within else (ssc + sse) / (n * (k - 1))

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
        f1k = np.float64(msb) / msw
        f2k = np.float64(msb) / mse
        p1k = f_dist.sf(f1k, df1, df1kd)
        p2k = f_dist.sf(f2k, df1, df2kd)

        q = 1 - (1 - confidence) / 2
        f1l = f1k / f_dist.ppf(q, df1, df1kd)
        f1u = f1k * f_dist.ppf(q, df1kd, df1)
        f3l = f2k / f_dist.ppf(q, df1, df2kd)
        f3u = f2k * f_dist.ppf(q, df2kd, df1)
        l1, u1 = _single_bound(f1l, k), _single_bound(f1u, k)
        l3, u3 = _single_bound(f3l, k), _single_bound(f3u, k)
        # ICC2: McGraw & Wong (1996) with Satterthwaite's approximate degrees of freedom.
        fj = msj / mse
        vn = df2kd * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        f2u = f_dist.ppf(q, n - 1, v)
        f2l = f_dist.ppf(q, v, n - 1)
        l2 = n * (msb - f2u * mse) / (f2u * (k * msj + (k * n - k - n) * mse) + n * msb)
        u2 = n * (f2l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2l * msb)

    notes = [""] * 6
    pval = [p1k, p2k, p2k, p1k, p2k, p2k]
    cis = [
        np.array([l1, u1]),
        np.array([l2, u2]),
        np.array([l3, u3]),
        np.array([1 - 1 / f1l, 1 - 1 / f1u]),
        None,  # ICC2k, from ICC2's below
        np.array([1 - 1 / f3l, 1 - 1 / f3u]),
    ]
    estimates = [icc1, icc2, icc3, icc1k, icc2k, icc3k]
    # ICC2's approximate interval can miss its own estimate (or be NaN) when Satterthwaite's v is tiny.
    if not (l2 <= icc2 + _SLACK and icc2 <= u2 + _SLACK):
        cis[1] = np.array([np.nan, np.nan])
        notes[1] = (
            f"no interval: McGraw & Wong's approximate interval fails here (Satterthwaite df {v:.3g}; it does not "
            f"contain the estimate {icc2:.3g})"
        )
    estimates[4], cis[4], notes[4] = _average_random(icc2k, icc2, cis[1], k)
    if constant:
        notes = ["the ratings are constant: no ICC is defined"] * 6
    elif no_within:
        notes = [_join(x, "no error variance (every rater gives every unit the same rating): no F test") for x in notes]
        pval = [np.nan] * 6
    elif no_error:
        kind = "no error variance (the raters differ only by constant offsets): no F test for the two-way forms"
        notes = [x if t in ("ICC1", "ICC1k") else _join(x, kind) for x, t in zip(notes, ICC_TYPES, strict=True)]
        pval = [p1k, np.nan, np.nan, p1k, np.nan, np.nan]
    for i, (est, ci) in enumerate(zip(estimates, cis, strict=True)):
        if not constant and not notes[i] and not (np.isfinite(est) and np.isfinite(ci).all()):
            notes[i] = "not finite: a mean square is zero (the units, or the raters, do not differ)"
    return pd.DataFrame(
        {
            "Type": list(ICC_TYPES),
            "Description": list(ICC_DESCRIPTIONS),
            "ICC": estimates,
            "F": [f1k, f2k, f2k, f1k, f2k, f2k],
            "df1": [df1] * 6,
            "df2": [df1kd, df2kd, df2kd, df1kd, df2kd, df2kd],
            "pval": pval,
            "CI95": cis,
            "note": notes,
        }
    )


# A residual sum of squares this small relative to the total is zero up to rounding.
_NO_VARIANCE = 1e-20
# Rounding slack when checking that an interval contains its estimate.
_SLACK = 1e-12


def _single_bound(f: float, k: int) -> float:
    """``(F − 1)/(F + k − 1)``, the single-rater bound of an F bound; its limit 1 at ``F = ∞``."""
    return 1.0 if np.isinf(f) and f > 0 else (f - 1) / (f + (k - 1))


def _average_random(icc2k: float, icc2: float, ci2: np.ndarray, k: int) -> tuple[float, np.ndarray, str]:
    """ICC2k and its interval: ICC2's stepped up to ``k`` raters (Spearman–Brown), clamped at the pole.

    ``x ↦ kx/(1 + (k−1)x)`` maps ICC2's range ``(−1/(k−1), 1]`` onto ``(−∞, 1]`` and has its pole at
    ``−1/(k−1)``: a bound below the pole maps to ``−∞`` (the end of the parameter space), not to a value above 1.
    """
    pole = -1 / (k - 1)

    def step_up(x: float) -> float:
        return k * x / (1 + x * (k - 1)) if x > pole else -np.inf

    notes = []
    estimate = icc2k
    if icc2 <= pole:  # then the denominator MS_R + (MS_C − MS_E)/n of icc2k is ≤ 0
        estimate = np.nan
        notes.append(
            f"undefined: ICC2 = {icc2:.3g} is at or below -1/(k-1) = {pole:.3g}, the pole of the step-up to k raters "
            "(agreement far below chance)"
        )
    low2, high2 = ci2
    if np.isnan(low2) or np.isnan(high2):
        ci = np.array([np.nan, np.nan])
        notes.append("no interval (see ICC2)")
    elif high2 <= pole:
        ci = np.array([np.nan, np.nan])
        notes.append(f"no interval: ICC2's whole interval lies below -1/(k-1) = {pole:.3g}")
    else:
        ci = np.array([step_up(low2), step_up(high2)])
        if low2 <= pole:
            notes.append(f"lower bound clamped to -inf: ICC2's lower bound {low2:.3g} is below -1/(k-1) = {pole:.3g}")
    return estimate, ci, "; ".join(notes)


def _join(note: str, more: str) -> str:
    return f"{note}; {more}" if note else more
