r"""Confidence intervals shared by the estimators.

Wilson score interval (Wilson 1927)
-----------------------------------
For :math:`x` successes in :math:`n` trials, :math:`\hat p = x/n` and :math:`z` the normal quantile of the level,

.. math::
    \frac{\hat p + z^2/2n}{1 + z^2/n} \pm \frac{z}{1 + z^2/n}\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}

which keeps its coverage near 0 and 1 where the normal (Wald) interval does not; the bounds are exactly 0 with no
successes and 1 with all. With no trials (:math:`n = 0`) there is no proportion and both bounds are ``NaN``.

Normal-approximation interval of a mean
---------------------------------------
:math:`\bar y \pm z\,s/\sqrt n` with the sample standard deviation :math:`s` (``ddof=1``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["mean_ci", "wilson_ci"]


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
    no_trials = ~(n > 0)  # n = 0 (or missing): no proportion, no interval
    return np.where(no_trials, np.nan, low), np.where(no_trials, np.nan, high)


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
