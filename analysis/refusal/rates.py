r"""Refusal rates: pooled over generations (with Wilson CIs) and summarised over personas.

Rates
-----
A refusal rate is :math:`\hat p = x/n` over the generations whose refusal flag is known (``NaN`` flags, for
example failed generations, are left out and counted in ``n_unknown``). Intervals are Wilson score intervals
(Wilson 1927 [1]_), which keep their coverage near 0 and 1 where the normal interval does not.

Persona rates
-------------
For comparisons of persona groups (:mod:`analysis.refusal.comparisons`), each persona's rate :math:`r_c =
x_c/n_c` over its generations with a known flag is one observation: :func:`persona_refusal_rates` gives per group
the number of personas :math:`k`, the mean of their rates :math:`\bar r` (each persona weighs the same; with
equal :math:`n_c` it is the pooled rate) and their sample variance :math:`s^2`.

References
----------
.. [1] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. *JASA* 22.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.frames import as_list, require_columns
from analysis.intervals import wilson_ci

__all__ = ["DEFAULT_REFUSAL_FACTORS", "persona_refusal_rates", "refusal_rates", "refusal_rates_by_factor"]

DEFAULT_REFUSAL_FACTORS = ("persona_category", "persona_gender", "target_category", "template_id")


def refusal_rates(
    data: pd.DataFrame, by: str | Sequence[str] | None = None, refusal: str = "refusal", confidence: float = 0.95
) -> pd.DataFrame:
    """Refusal rate with a Wilson CI, overall or per group (generations pooled).

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
    flag = _flag(data, refusal)
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
    """Refusal rates for each level of each factor in one long table ``*by, factor, level, n, …``.

    These are descriptive pooled rates with Wilson CIs over generations; to compare persona groups, use
    :func:`~analysis.refusal.comparisons.gender_gaps` or
    :func:`~analysis.refusal.comparisons.refusal_vs_baseline`, which treat the persona as the unit.
    """
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


def persona_refusal_rates(
    data: pd.DataFrame, by: str | Sequence[str] | None = None, cluster: str = "persona_id", refusal: str = "refusal"
) -> pd.DataFrame:
    """Refusal rates summarised over personas: each persona's rate is one observation.

    Args:
        data: One row per generation.
        by: Grouping column(s) (the personas of each group are summarised).
        cluster: Column identifying the persona (the sampling unit).
        refusal: Column of the 0/1 refusal flag (``NaN``: unknown, left out).

    Returns:
        Tidy DataFrame ``*by, n, refusals, n_personas, persona_mean, persona_var``: generations with a known
        flag, their refusals, personas with at least one, the mean of the personas' rates and their sample
        variance (``ddof=1``; ``NaN`` with one persona).
    """
    by = as_list(by)
    require_columns(data, [refusal, cluster, *by])
    flag = _flag(data, refusal)
    known = ~np.isnan(flag)
    frame = data.loc[known, [*by, cluster]].assign(_r=flag[known])
    per = frame.groupby([*by, cluster], observed=True, sort=True)["_r"].agg(["sum", "size"])
    per["rate"] = per["sum"] / per["size"]
    if by:
        g = per.groupby(level=list(range(len(by))), observed=True, sort=True)
        out = pd.DataFrame(
            {
                "n": g["size"].sum(),
                "refusals": g["sum"].sum(),
                "n_personas": g.size(),
                "persona_mean": g["rate"].mean(),
                "persona_var": g["rate"].var(ddof=1),
            }
        ).reset_index()
    else:
        out = pd.DataFrame(
            {
                "n": [per["size"].sum()],
                "refusals": [per["sum"].sum()],
                "n_personas": [len(per)],
                "persona_mean": [per["rate"].mean() if len(per) else np.nan],
                "persona_var": [per["rate"].var(ddof=1) if len(per) > 1 else np.nan],
            }
        )
    for col in ("n", "refusals", "n_personas"):
        out[col] = out[col].astype(int)
    return out


# ------------------------------------------------------------------------------------------------ helpers


def _flag(data: pd.DataFrame, refusal: str) -> np.ndarray:
    return pd.to_numeric(data[refusal], errors="raise").astype(float).to_numpy()
