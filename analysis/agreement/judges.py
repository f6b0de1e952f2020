r"""How the judges relate: Spearman correlations between raters, judge error correlation, effective judges.

Spearman matrix
---------------
For each pair of raters, the Pearson correlation of their ranks (ties get the mean rank) over the units both
rated [2]_ (pairwise-complete, like ``DataFrame.corr(method="spearman")``).

Judge error correlation and the effective number of judges
----------------------------------------------------------
Without gold labels each judge's error is estimated by its residual against the mean of the *other* judges,
:math:`e_{ij}=y_{ij}-\frac{1}{k-1}\sum_{l\ne j}y_{il}` (with a ``truth`` column, :math:`e_{ij}=y_{ij}-t_i`).
From the error correlation matrix :math:`R` (eigenvalues :math:`\lambda`), the effective number of independent
judges is

.. math::
    N_{\mathrm{eff}} = \frac{(\sum\lambda)^2}{\sum\lambda^2} = \frac{k^2}{\lVert R\rVert_F^2}

([1]_, eq. 5): :math:`k` for uncorrelated errors, 1 when all judges err alike. Caveat, stated in the result as
``n_eff_null``: an error component shared by *all* judges is indistinguishable from the truth without gold
labels, and leave-one-out residuals of independent judges correlate at :math:`-1/(k-1)`, which gives
:math:`N_{\mathrm{eff}}=k-1`. Compare ``n_eff`` with ``n_eff_null``; pairs well above :math:`-1/(k-1)` share
errors.

References
----------
.. [1] Bretherton, C. S., Widmann, M., Dymnikov, V. P., Wallace, J. M., & Bladé, I. (1999). The effective number
   of spatial degrees of freedom of a time-varying field. *Journal of Climate*, 12(7), 1990–2009.
.. [2] Spearman, C. (1904). The proof and measurement of association between two things. *The American Journal
   of Psychology*, 15(1), 72–101.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.frames import require_columns, wide_matrix

__all__ = ["JudgeErrors", "judge_error_correlation", "spearman_matrix"]


def spearman_matrix(data: pd.DataFrame, units: str, raters: str, ratings: str) -> pd.DataFrame:
    """Pairwise Spearman rank correlations between raters (pairwise-complete units); raters × raters.

    Rows with a missing rating are ignored, and so are rows with a missing unit or rater id (counted in
    ``result.attrs["n_dropped_missing_id"]``).
    """
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
    result = pd.DataFrame(out, index=wide.raters, columns=wide.raters)
    result.attrs["n_dropped_missing_id"] = wide.n_missing_id
    return result


@dataclass(frozen=True)
class JudgeErrors:
    """Judges' errors, their correlation matrix and the effective number of independent judges.

    ``n_units`` counts the complete units used; ``n_dropped_missing_id`` the rows dropped for a missing unit or
    rater id.
    """

    residuals: pd.DataFrame
    correlation: pd.DataFrame
    n_eff: float
    n_eff_null: float
    n_units: int
    method: str
    n_dropped_missing_id: int = 0

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
        data: One row per (unit, rater) rating; units missing any judge are dropped, and so are rows with a
            missing unit or rater id (counted in ``n_dropped_missing_id``).
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
        n_dropped_missing_id=wide.n_missing_id,
    )
