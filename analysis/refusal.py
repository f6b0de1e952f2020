r"""Refusal rates and gender gaps in refusal.

Rates
-----
A refusal rate is :math:`\hat p = x/n` over the generations whose refusal flag is known (``NaN`` flags, for
example failed generations, are left out and counted in ``n_unknown``). Intervals are Wilson score intervals
(Wilson 1927), which keep their coverage near 0 and 1 where the normal interval does not.

Gender gaps: two-proportion z-tests (e.g. Agresti 2013, §3.1)
-------------------------------------------------------------
For two groups with :math:`x_1/n_1` and :math:`x_2/n_2` refusals, the pooled test statistic is

.. math::  z = \frac{\hat p_1-\hat p_2}{\sqrt{\hat p(1-\hat p)(1/n_1+1/n_2)}},\qquad \hat p=\frac{x_1+x_2}{n_1+n_2}

with the two-sided p-value :math:`2\,\Phi(-|z|)`; it equals statsmodels' ``proportions_ztest``. When both groups
never (or always) refuse, :math:`z` is undefined and reported as ``NaN`` with ``p = 1``.

Multiple comparisons: Benjamini & Hochberg (1995)
-------------------------------------------------
Across all gaps tested in one call, sort the m p-values :math:`p_{(1)}\le\dots\le p_{(m)}`; the adjusted value is
:math:`\tilde p_{(i)}=\min_{j\ge i}\min(1, m\,p_{(j)}/j)`, and a gap is declared at false-discovery rate
:math:`q` when :math:`\tilde p\le q`. This controls the FDR for independent or positively dependent tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.frames import as_list, require_columns
from analysis.intervals import wilson_ci

__all__ = [
    "DEFAULT_REFUSAL_FACTORS",
    "benjamini_hochberg",
    "gender_gaps",
    "refusal_rates",
    "refusal_rates_by_factor",
    "two_proportion_ztest",
]

DEFAULT_REFUSAL_FACTORS = ("persona_category", "persona_gender", "target_category", "template_id")


def refusal_rates(
    data: pd.DataFrame, by: str | Sequence[str] | None = None, refusal: str = "refusal", confidence: float = 0.95
) -> pd.DataFrame:
    """Refusal rate with a Wilson CI, overall or per group.

    Args:
        data: One row per generation with a 0/1 (or boolean) refusal flag; ``NaN`` means unknown.
        by: Grouping column(s).
        refusal: Column of the refusal flag.
        confidence: CI level.

    Returns:
        Tidy DataFrame ``*by, n, refusals, rate, ci_low, ci_high, n_unknown``.
    """
    by = as_list(by)
    require_columns(data, [refusal, *by])
    flag = pd.to_numeric(data[refusal], errors="raise").astype(float).to_numpy()
    frame = data[by].assign(_r=flag, _known=~np.isnan(flag))
    if by:
        g = frame.groupby(by, observed=True, sort=True)
        out = pd.DataFrame({"n": g["_known"].sum(), "refusals": g["_r"].sum(), "_total": g.size()}).reset_index()
    else:
        out = pd.DataFrame({"n": [frame["_known"].sum()], "refusals": [np.nansum(flag)], "_total": [len(frame)]})
    out["n"] = out["n"].astype(int)
    out["refusals"] = out["refusals"].astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["rate"] = out["refusals"] / out["n"].where(out["n"] > 0)
    out["ci_low"], out["ci_high"] = wilson_ci(out["refusals"].to_numpy(), out["n"].to_numpy(), confidence)
    out["n_unknown"] = (out.pop("_total") - out["n"]).astype(int)
    return out


def refusal_rates_by_factor(
    data: pd.DataFrame,
    factors: Sequence[str] = DEFAULT_REFUSAL_FACTORS,
    by: str | Sequence[str] | None = None,
    refusal: str = "refusal",
) -> pd.DataFrame:
    """Refusal rates for each level of each factor in one long table ``*by, factor, level, n, …``."""
    by = as_list(by)
    parts = []
    for factor in factors:
        if factor not in data.columns:
            continue
        r = refusal_rates(data, [*by, factor], refusal=refusal).rename(columns={factor: "level"})
        r.insert(len(by), "factor", factor)
        r["level"] = r["level"].astype(str)
        parts.append(r)
    if not parts:
        return pd.DataFrame(columns=[*by, "factor", "level", "n", "refusals", "rate", "ci_low", "ci_high"])
    return pd.concat(parts, ignore_index=True)


def two_proportion_ztest(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-sided two-proportion z-test, vectorised; returns ``(z, p)`` (``NaN``, 1 when undefined)."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (x1 + x2) / (n1 + n2)
        se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    z = np.where(se > 0, z, np.nan)
    pval = np.where(np.isfinite(z), 2 * norm.sf(np.abs(z)), 1.0)
    return z, pval


def benjamini_hochberg(pvals: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (step-up, monotone, capped at 1); ``NaN`` stays ``NaN``."""
    p = np.asarray(pvals, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adjusted, 1.0)
    out[ok] = res
    return out


def gender_gaps(
    data: pd.DataFrame,
    by: str | Sequence[str] | None = ("model", "persona_category"),
    gender: str = "persona_gender",
    refusal: str = "refusal",
    groups: Sequence[str] | None = None,
    fdr: float = 0.05,
) -> pd.DataFrame:
    """Refusal-rate gaps between genders, with two-proportion z-tests and Benjamini–Hochberg correction.

    Args:
        data: One row per generation.
        by: Column(s) within which genders are compared (for example model and persona category).
        gender: Column of the persona's gender.
        refusal: Column of the 0/1 refusal flag.
        groups: The gender values to compare pairwise (default: every value present except ``none``,
            ``unspecified`` and empty strings).
        fdr: False-discovery rate for the ``significant`` column.

    Returns:
        Tidy DataFrame ``*by, group_a, group_b, n_a, rate_a, n_b, rate_b, gap, z, pval, pval_bh, significant``
        with ``gap = rate_a − rate_b``; the BH correction runs over all rows.
    """
    by = as_list(by)
    require_columns(data, [gender, refusal, *by])
    rates = refusal_rates(data, [*by, gender], refusal=refusal)
    rates[gender] = rates[gender].astype(str)
    if groups is None:
        groups = sorted(v for v in rates[gender].unique() if v.strip().lower() not in {"", "none", "unspecified"})
    rates = rates[rates[gender].isin(list(groups))]
    columns = [
        *by,
        "group_a",
        "group_b",
        "n_a",
        "rate_a",
        "n_b",
        "rate_b",
        "gap",
        "z",
        "pval",
        "pval_bh",
        "significant",
    ]
    pieces = []
    for a, b in itertools.combinations(list(groups), 2):
        left = rates[rates[gender] == a].drop(columns=gender)
        right = rates[rates[gender] == b].drop(columns=gender)
        if by:
            merged = left.merge(right, on=by, suffixes=("_a", "_b"))
        else:
            merged = left.merge(right, how="cross", suffixes=("_a", "_b"))
        if merged.empty:
            continue
        merged["group_a"], merged["group_b"] = a, b
        pieces.append(merged)
    if not pieces:
        return pd.DataFrame(columns=columns)
    out = pd.concat(pieces, ignore_index=True)
    out = out[(out["n_a"] > 0) & (out["n_b"] > 0)].reset_index(drop=True)
    out["gap"] = out["rate_a"] - out["rate_b"]
    out["z"], out["pval"] = two_proportion_ztest(out["refusals_a"], out["n_a"], out["refusals_b"], out["n_b"])
    out["pval_bh"] = benjamini_hochberg(out["pval"].to_numpy())
    out["significant"] = out["pval_bh"] <= fdr
    return out[columns]
