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

The ANOVA needs a complete, balanced matrix. With ``nan_policy="raise"`` a missing rating raises a
``ValueError``; with ``nan_policy="omit"`` the units missing any rater are dropped (listwise deletion, as in
pingouin) and the number dropped is stored in ``result.attrs["n_omitted"]``. Several ratings of one unit by one
rater are averaged (pingouin's ``pivot_table`` behaviour).

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
        nan_policy: ``"raise"`` on missing ratings or unbalanced data; ``"omit"`` drops every unit that
            misses any rater (listwise deletion; the number dropped is in ``result.attrs["n_omitted"]``).
        confidence: Level of the ``CI95`` intervals (the column keeps pingouin's name).

    Returns:
        DataFrame with columns ``Type, Description, ICC, F, df1, df2, pval, CI95``, one row per form (see the
        module docstring). ``result.attrs`` holds ``n_omitted``, ``n_units`` (also under pingouin's name
        ``n_targets``) and ``n_raters``.

    Raises:
        ValueError: missing ratings with ``nan_policy="raise"``, or fewer than 2 complete units or raters.

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
    result.attrs["n_units"] = result.attrs["n_targets"] = int(wide.values.shape[0])
    result.attrs["n_raters"] = int(wide.values.shape[1])
    return result


def icc_from_matrix(y: np.ndarray, confidence: float = 0.95) -> pd.DataFrame:
    """The six ICCs of a complete ``units × raters`` matrix; see :func:`icc`."""
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
