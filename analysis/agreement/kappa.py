r"""Chance-corrected agreement on categories: Fleiss' kappa [1]_ and Cohen's kappa per rater pair [2]_ [3]_.

Fleiss' kappa
-------------
With :math:`N` units (Fleiss' subjects) each rated by the same :math:`n` raters into categories :math:`j`,
:math:`n_{ij}` counts:

.. math::
    p_j=\frac{\sum_i n_{ij}}{Nn},\qquad P_i=\frac{\sum_j n_{ij}^2-n}{n(n-1)},\qquad
    \kappa=\frac{\bar P-\sum_j p_j^2}{1-\sum_j p_j^2}

Cohen's kappa
-------------
For each rater pair, on the units both rated:

.. math::
    \kappa = 1 - \frac{\sum_{ab} w_{ab}O_{ab}}{\sum_{ab} w_{ab}E_{ab}}

with the observed confusion proportions :math:`O`, the product of their margins :math:`E`, and weights :math:`w`
zero on the diagonal: :math:`[a\ne b]` (unweighted, [2]_), :math:`|a-b|` (linear) or :math:`(a-b)^2`
(quadratic, [3]_) on the sorted category indices. The values agree with statsmodels' ``fleiss_kappa`` and
``cohens_kappa`` (checked in the tests).

References
----------
.. [1] Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. *Psychological Bulletin*,
   76(5), 378–382.
.. [2] Cohen, J. (1960). A coefficient of agreement for nominal scales. *Educational and Psychological
   Measurement*, 20(1), 37–46.
.. [3] Cohen, J. (1968). Weighted kappa: nominal scale agreement with provision for scaled disagreement or
   partial credit. *Psychological Bulletin*, 70(4), 213–220.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import pandas as pd

from analysis.deprecation import renamed_keyword
from analysis.frames import require_columns, wide_matrix

__all__ = ["cohen_kappa_pairs", "fleiss_kappa", "fleiss_kappa_from_table"]


@renamed_keyword("subjects", "units")
def fleiss_kappa(data: pd.DataFrame, units: str, raters: str, ratings: str) -> float:
    """Fleiss' (1971) kappa [1]_ for categorical ratings, every unit rated by the same number of raters.

    Args:
        data: One row per (unit, rater) rating; rows with a missing rating, unit or rater id are ignored.
        units: Column of the rated units (Fleiss' subjects; the keyword ``subjects=`` still works until 0.2.0,
            with a ``DeprecationWarning``).
        raters: Column of the raters (only the number of ratings per unit matters; raters may differ).
        ratings: Column of the categories.

    Raises:
        ValueError: units with different numbers of ratings (drop them or use
            :func:`analysis.agreement.krippendorff_alpha`, which allows missing ratings), or fewer than two
            ratings per unit.

    Examples:
        >>> import pandas as pd
        >>> data = pd.DataFrame({"item": [1, 1, 1, 2, 2, 2, 3, 3, 3], "rater": list("abc") * 3,
        ...                      "label": ["yes", "yes", "yes", "no", "no", "yes", "no", "no", "no"]})
        >>> round(fleiss_kappa(data, "item", "rater", "label"), 3)
        0.55
    """
    require_columns(data, [units, raters, ratings])
    keep = data[ratings].notna() & data[units].notna() & data[raters].notna()
    frame = data.loc[keep, [units, ratings]]
    s_codes, s_index = pd.factorize(frame[units], sort=False)
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
    """Cohen's kappa [2]_ (weighted: [3]_) for every pair of raters, on the units both rated.

    Args:
        data: One row per (unit, rater) rating; rows with a missing rating are ignored, and so are rows with a
            missing unit or rater id (counted in ``result.attrs["n_dropped_missing_id"]``).
        units, raters, ratings: Column names; ratings are categories (bin continuous scores first).
        weights: ``None`` (unweighted), ``"linear"`` or ``"quadratic"`` (on sorted category indices).

    Returns:
        Tidy DataFrame with columns ``rater_a, rater_b, n, kappa``, one row per pair; ``n`` is the number of
        units both raters rated.
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
    result = pd.DataFrame(rows, columns=["rater_a", "rater_b", "n", "kappa"])
    result.attrs["n_dropped_missing_id"] = wide.n_missing_id
    return result
