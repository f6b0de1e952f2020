r"""Value inertia: how far personas move a model's answers on moral-foundation and value scales.

For each dimension :math:`d` (a moral foundation such as care or fairness, or a basic value such as benevolence
or power, Schwartz 1992 [7]), a model answers a questionnaire (for example the Moral Foundations Questionnaire,
Graham et al. 2011 [1], or items on Schwartz's values) once without a
persona (the *default* model) and under each persona :math:`q`, usually several probes per foundation, in several
languages, with repeats; scores are normalised to [0, 1]. With :math:`\bar y_{q}` the mean score of persona
:math:`q` on :math:`d` and :math:`\bar y_0` the default model's, per dimension:

* the distribution of persona means :math:`\{\bar y_q\}` (mean, SD, quantiles);
* how many personas fall on the same side of the scale midpoint :math:`m` as the default model:
  :math:`\#\{q:\operatorname{sign}(\bar y_q-m)=\operatorname{sign}(\bar y_0-m)\}` (a persona exactly at the
  midpoint counts as the same side only when the default is there too);
* the persona effect after removing probe and language effects, with a confidence interval (below).

The persona effect: partial eta squared in a two-way model
----------------------------------------------------------
The share of variance a persona explains must not count the differences between probes as noise: the probes of a
foundation differ in how agreeable they are (and a translation shifts them), so pooled over probes the one-way
:math:`\eta^2 = SS_\text{between}/SS_\text{total}` (Cohen 1988 [2]; kept as ``eta_squared`` for comparison) is small
however strongly the persona moves every answer. We fit, over the persona answers of a dimension, the additive
model

.. math::
    y_{qjr} = \mu + \alpha_q + \beta_j + \varepsilon_{qjr}

where :math:`j` is the *item*: a probe in one language (the probe × language cell, so probe effects, language
effects and their interaction are all removed; with no language column the probe, with no item column the
language), :math:`r` a repeat. The persona sum of squares is the Type II one (adjusted for the items; Fox 2016
[3], ch. 8), :math:`SS_q = RSS(\beta) - RSS(\alpha+\beta)`, exact for unbalanced designs: the persona effects are
absorbed (within-persona centring) and the item effects solved from the small normal equations
:math:`(X_j^\top M_q X_j)\beta = X_j^\top M_q y`. Then

.. math::
    \eta^2_p = \frac{SS_q}{SS_q + SS_e},\qquad F = \frac{SS_q/\nu_1}{SS_e/\nu_2}

with :math:`SS_e = RSS(\alpha+\beta)`, :math:`\nu_1 = \operatorname{rank}(\alpha+\beta) - \operatorname{rank}(\beta)`
(:math:`Q-1` for :math:`Q` personas in a connected design) and :math:`\nu_2 = N - \operatorname{rank}(\alpha+\beta)`
over :math:`N` answers (``persona_eta_squared``, ``persona_f``, ``df_persona``, ``df_residual``). In a balanced
design this equals the variance share of the persona means of item-centred scores.

Its confidence interval inverts the noncentral F distribution (Steiger 2004 [4]; Smithson 2003 [5]): with errors
independent and normal of equal variance, :math:`F \sim F'(\nu_1, \nu_2, \lambda)`, where the noncentrality
:math:`\lambda = N\sigma^2_q/\sigma^2` measures the variance :math:`\sigma^2_q` of the persona effects net of the items.
The bounds :math:`\lambda_L, \lambda_U` solve :math:`P(F' \le F_\text{obs};\lambda) = 1-a/2` resp. :math:`a/2`
(0 where the central F already falls below that), and map to the population partial eta squared
:math:`\sigma^2_q/(\sigma^2_q+\sigma^2) = \lambda/(\lambda+N)`. The interval's coverage is exact under those
assumptions (tested by simulation). The sample :math:`\eta^2_p` is biased upward by about :math:`\nu_1/N` (the
persona means' own noise): under no persona effect it is small, not 0, and with a thousand personas it can exceed
the interval's upper bound. The partial omega squared (Olejnik & Algina 2003 [6])

.. math::
    \omega^2_p = \frac{SS_q - \nu_1 MS_e}{SS_q + (N-\nu_1)MS_e} = \frac{\hat\lambda}{\hat\lambda + N},
    \qquad \hat\lambda = \max(\nu_1(F-1), 0)

estimates the same population quantity, the one the interval is about, from the moment estimate of
:math:`\lambda` (``persona_omega_squared``: near 0 under no effect, and normally inside the interval). Repeated
answers to one prompt share more than the persona and the item; such dependence is not modelled and makes the
interval too narrow.

The null: what no persona effect would show
-------------------------------------------
Under no persona effect (:math:`\lambda = 0`) and the same assumptions, :math:`SS_q/\sigma^2 \sim \chi^2_{\nu_1}`
and :math:`SS_e/\sigma^2 \sim \chi^2_{\nu_2}` are independent, so the sample :math:`\eta^2_p` is
:math:`\operatorname{Beta}(\nu_1/2, \nu_2/2)` with mean

.. math::
    E_0[\eta^2_p] = \frac{\nu_1}{\nu_1 + \nu_2}

(``persona_eta_squared_null``): the share that the persona means' own noise reaches with personas that do not
matter at all, against which ``persona_eta_squared`` is read. The corrected estimate ``persona_omega_squared`` and
the interval are about the population share, whose null value is 0. ``persona_p`` is the F test of that null,
:math:`P(F_{\nu_1,\nu_2} \ge F_\text{obs})`; it is never printed as 0: where it underflows the double range it is
:data:`P_FLOOR`, with a note that says so.

Inertia is a high ``share_same_side`` with a small persona share whose interval excludes large values:
role-play changes the words more than the values. Both summaries are tribunal's, built on these standard
quantities.

References
----------
1. Graham, J., Nosek, B. A., Haidt, J., Iyer, R., Koleva, S., & Ditto, P. H. (2011). Mapping the moral domain.
   *Journal of Personality and Social Psychology*, 101(2), 366–385.
2. Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences* (2nd ed.). Erlbaum. (eta squared,
   partial eta squared and :math:`f^2`.)
3. Fox, J. (2016). *Applied Regression Analysis and Generalized Linear Models* (3rd ed.). Sage. (Type II sums of
   squares.)
4. Steiger, J. H. (2004). Beyond the F test: effect size confidence intervals and tests of close fit in the
   analysis of variance and contrast analysis. *Psychological Methods*, 9(2), 164–182.
5. Smithson, M. (2003). *Confidence Intervals*. Sage (QASS 140).
6. Olejnik, S., & Algina, J. (2003). Generalized eta and omega squared statistics: measures of effect size for
   some common research designs. *Psychological Methods*, 8(4), 434–447.
7. Schwartz, S. H. (1992). Universals in the content and structure of values: theoretical advances and empirical
   tests in 20 countries. *Advances in Experimental Social Psychology*, 25, 1–65.

Examples
--------
>>> import pandas as pd
>>> from analysis import value_inertia
>>> data = pd.DataFrame({"dimension": "care", "persona_id": ["none", "p1", "p1", "p2", "p2", "p3", "p3"],
...                      "item": ["c0", "c0", "c1", "c0", "c1", "c0", "c1"],
...                      "score": [0.8, 0.7, 0.9, 0.6, 0.6, 0.2, 0.4]})
>>> row = value_inertia(data, language=None).iloc[0]
>>> [round(float(row[c]), 3) for c in ("eta_squared", "persona_eta_squared", "persona_omega_squared")]
[0.864, 0.95, 0.857]
>>> [round(float(row[c]), 3) for c in ("persona_eta_squared_ci_low", "persona_eta_squared_ci_high")]
[0.0, 0.96]
>>> [round(float(row[c]), 3) for c in ("persona_eta_squared_null", "persona_p")]
[0.5, 0.05]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.frames import require_columns

__all__ = ["P_FLOOR", "value_inertia"]

#: The smallest ``persona_p`` reported: an F test whose p underflows the double range reads as this bound.
P_FLOOR = 1e-300

#: Above this many levels of the smaller factor the item effects are not solved (the normal equations are dense).
_MAX_SOLVED_LEVELS = 4000


def value_inertia(
    data: pd.DataFrame,
    dimension: str = "dimension",
    persona: str = "persona_id",
    score: str = "score",
    baseline: str = "none",
    midpoint: float = 0.5,
    item: str | None = "item",
    language: str | None = "language",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Value inertia per dimension, with the persona effect net of probe and language effects.

    Args:
        data: One row per answer: dimension, persona and the 0–1 score (``NaN`` ignored); optionally the probe
            (``item``) and ``language``.
        dimension: Column of the moral-foundation dimension.
        persona: Column of the persona; ``baseline`` marks the default (no-persona) model.
        score: Column of the score.
        baseline: Value of ``persona`` for the default model.
        midpoint: The scale midpoint (0.5 on a 0–1 scale).
        item: Column of the probe (question) id, default ``"item"``. ``None``: there is none, so probe differences
            are not removed; a named column that ``data`` lacks likewise, and the row's ``note`` says so. Rows with
            a missing id are left out of the persona model (counted in ``note``).
        language: Column of the answer's language, default ``"language"``; ``None`` or absent: as for ``item``.
        confidence: Level of the interval of ``persona_eta_squared``.

    Returns:
        One row per dimension: ``dimension, default_mean, n_personas, persona_mean, persona_sd, persona_min,
        persona_q25, persona_median, persona_q75, persona_max, eta_squared, persona_eta_squared,
        persona_omega_squared, persona_eta_squared_ci_low, persona_eta_squared_ci_high, persona_f,
        persona_eta_squared_null, persona_p, df_persona, df_residual, n_items, n_persona_answers, n_same_side,
        share_same_side, note``. ``eta_squared`` is the one-way share pooled over items and languages (item
        differences count as noise: not the persona effect); ``persona_eta_squared`` is the sample partial eta
        squared of persona given the items, ``persona_omega_squared`` its bias-adjusted estimate and the ``ci``
        columns the interval of the population partial eta squared, ``persona_eta_squared_null`` the mean of
        ``persona_eta_squared`` under no persona effect and ``persona_p`` the F test of no persona effect (module
        docstring); ``n_items`` is the number of probe × language cells (0 without either column) and
        ``n_persona_answers`` the answers the model used. ``default_mean`` and the side counts are ``NaN`` when the
        dimension has no baseline answers; undefined figures are ``NaN`` with the reason in
        ``note``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    require_columns(data, [dimension, persona, score])
    factors = [c for c in (item, language) if c is not None and c in data.columns]
    absent = [
        f"{what} column {name!r}"
        for what, name in (("item", item), ("language", language))
        if name is not None and name not in factors
    ]
    frame = data[[dimension, persona, *factors]].assign(_y=pd.to_numeric(data[score], errors="raise").to_numpy(float))
    frame = frame.dropna(subset=["_y"])
    frame[persona] = frame[persona].astype(str)
    rows = []
    for dim, part in frame.groupby(dimension, observed=True, sort=True):
        base = part.loc[part[persona] == str(baseline), "_y"]
        personas = part[part[persona] != str(baseline)]
        default = float(base.mean()) if len(base) else np.nan
        stats = personas.groupby(persona, observed=True)["_y"].agg(["mean", "size"])
        means = stats["mean"].to_numpy()
        grand = personas["_y"].mean()
        ss_total = float(((personas["_y"] - grand) ** 2).sum())
        ss_between = float((stats["size"] * (stats["mean"] - grand) ** 2).sum())
        eta2 = ss_between / ss_total if ss_total > 0 else np.nan
        effect = _persona_effect(personas, persona, factors, confidence)
        if absent:
            noise = f"no {' and '.join(absent)}: those differences count as noise in persona_eta_squared"
            effect["note"] = "; ".join(filter(None, [noise, effect["note"]]))
        if np.isnan(default) or not len(means):
            same = np.nan
        else:
            same = float(np.sum(np.sign(means - midpoint) == np.sign(default - midpoint)))
        q = np.quantile(means, [0, 0.25, 0.5, 0.75, 1]) if len(means) else [np.nan] * 5
        rows.append(
            {
                "dimension": dim,
                "default_mean": default,
                "n_personas": len(means),
                "persona_mean": float(means.mean()) if len(means) else np.nan,
                "persona_sd": float(means.std(ddof=1)) if len(means) > 1 else np.nan,
                "persona_min": q[0],
                "persona_q25": q[1],
                "persona_median": q[2],
                "persona_q75": q[3],
                "persona_max": q[4],
                "eta_squared": eta2,
                **{k: v for k, v in effect.items() if k != "note"},
                "n_same_side": same,
                "share_same_side": same / len(means) if len(means) and not np.isnan(same) else np.nan,
                "note": effect["note"],
            }
        )
    return pd.DataFrame(rows)


def _persona_effect(personas: pd.DataFrame, persona: str, factors: list[str], confidence: float) -> dict:
    """Partial eta squared of persona given the item cells, its F, degrees of freedom, CI and a note."""
    out = {
        "persona_eta_squared": np.nan,
        "persona_omega_squared": np.nan,
        "persona_eta_squared_ci_low": np.nan,
        "persona_eta_squared_ci_high": np.nan,
        "persona_f": np.nan,
        "persona_eta_squared_null": np.nan,
        "persona_p": np.nan,
        "df_persona": np.nan,
        "df_residual": np.nan,
        "n_items": 0,
        "n_persona_answers": 0,
        "note": "",
    }
    notes = []
    complete = personas.dropna(subset=factors)
    if len(complete) < len(personas):
        left_out = f"{len(personas) - len(complete)} of {len(personas)} answers"
        notes.append(f"{left_out} without {' or '.join(factors)} left out of the model")
    y = complete["_y"].to_numpy(float)
    q_codes = pd.factorize(complete[persona])[0]
    if factors:
        j_codes = complete.groupby(factors, observed=True, sort=False).ngroup().to_numpy()
    else:
        j_codes = np.zeros(len(y), dtype=np.int64)
    n_q, n_j = int(q_codes.max()) + 1 if len(y) else 0, int(j_codes.max()) + 1 if len(y) else 0
    out.update(n_items=n_j if factors else 0, n_persona_answers=len(y))
    if n_q < 2:
        out["note"] = "; ".join([*notes, "fewer than two personas answered"])
        return out
    if min(n_q, n_j) > _MAX_SOLVED_LEVELS:
        out["note"] = "; ".join([*notes, f"more than {_MAX_SOLVED_LEVELS} personas and items: the model is not fitted"])
        return out
    ss_persona, rss, df1, df2 = _type2_persona(y, q_codes, j_codes, n_q, n_j)
    out.update(df_persona=df1, df_residual=df2)
    if df1 >= 1 and df2 >= 1:
        out["persona_eta_squared_null"] = df1 / (df1 + df2)  # the Beta(ν1/2, ν2/2) mean
    if df1 < 1:
        notes.append("persona is aliased with the items (each persona answered its own items): no persona effect")
    elif df2 < 1:
        notes.append("no residual degrees of freedom (one answer per persona and item): no noise to compare with")
    elif ss_persona + rss <= 0:
        notes.append("every persona answer is the same once item effects are removed: the share is undefined")
    elif rss <= 0:
        notes.append("no residual variance: persona and items explain every answer exactly, so there is no interval")
        out.update(persona_eta_squared=1.0, persona_omega_squared=1.0)
    else:
        f_stat = (ss_persona / df1) / (rss / df2)
        low, high = _eta2_interval(f_stat, df1, df2, len(y), confidence)
        if np.isnan(low) or np.isnan(high):
            notes.append(f"F = {f_stat:.3g} is beyond what the noncentral F can be inverted at: no interval")
        lam = max(df1 * (f_stat - 1), 0.0)  # the moment estimate of the noncentrality
        from scipy.stats import f as central_f

        p_value = float(central_f.sf(f_stat, df1, df2))
        if p_value < P_FLOOR:
            notes.append(f"the F test's p is below {P_FLOOR:g} (shown as that bound)")
            p_value = P_FLOOR
        out.update(
            persona_p=p_value,
            persona_eta_squared=ss_persona / (ss_persona + rss),
            persona_omega_squared=lam / (lam + len(y)),
            persona_eta_squared_ci_low=low,
            persona_eta_squared_ci_high=high,
            persona_f=f_stat,
        )
    out["note"] = "; ".join(notes)
    return out


def _type2_persona(y: np.ndarray, q: np.ndarray, j: np.ndarray, n_q: int, n_j: int) -> tuple[float, float, int, int]:
    """``(SS_persona, RSS_full, df_persona, df_residual)`` of ``y ~ persona + item`` (Type II SS for persona).

    The factor with more levels is absorbed (centred within its levels) and the other's effects solved from the
    reduced normal equations, which are exact for any (unbalanced, even disconnected) design.
    """
    from scipy import sparse

    absorb, solve, n_a, n_s = (q, j, n_q, n_j) if n_q >= n_j else (j, q, n_j, n_q)
    count_a = np.bincount(absorb, minlength=n_a).astype(float)
    count_s = np.bincount(solve, minlength=n_s).astype(float)
    cross = sparse.csr_matrix((np.ones(len(y)), (absorb, solve)), shape=(n_a, n_s))
    mean_a = np.bincount(absorb, weights=y, minlength=n_a) / count_a
    sum_s = np.bincount(solve, weights=y, minlength=n_s)
    scaled = sparse.diags(1.0 / count_a) @ cross
    reduced = np.diag(count_s) - (cross.T @ scaled).toarray()
    rhs = sum_s - cross.T @ mean_a
    beta, *_ = np.linalg.lstsq(reduced, rhs, rcond=None)
    rank_reduced = int(np.linalg.matrix_rank(reduced, tol=1e-9 * max(1.0, float(np.abs(reduced).max()))))
    resid = y - mean_a[absorb] - beta[solve] + (scaled @ beta)[absorb]
    rss_full = float(resid @ resid)
    mean_j = np.bincount(j, weights=y, minlength=n_j) / np.bincount(j, minlength=n_j)
    rss_items = float(((y - mean_j[j]) ** 2).sum())
    rank_full = n_a + rank_reduced
    # Rounding leaves residue such as 1e-17 where the fit is exact; a sum of squares below it is 0.
    tiny = 1e-12 * float(((y - y.mean()) ** 2).sum())
    rss_full = 0.0 if rss_full <= tiny else rss_full
    ss_persona = max(rss_items - rss_full, 0.0)
    ss_persona = 0.0 if ss_persona <= tiny else ss_persona
    return ss_persona, rss_full, rank_full - n_j, len(y) - rank_full


def _eta2_interval(f_stat: float, df1: int, df2: int, n: int, confidence: float) -> tuple[float, float]:
    """Noncentral-F interval of the population partial eta squared, :math:`\\lambda/(\\lambda+N)` (Steiger 2004)."""
    from scipy.optimize import brentq
    from scipy.stats import f as central_f
    from scipy.stats import ncf

    def bound(target: float) -> float:
        if central_f.cdf(f_stat, df1, df2) <= target:
            return 0.0

        def gap(lam: float) -> float:
            return float(ncf.cdf(f_stat, df1, df2, lam)) - target

        high = max(1.0, f_stat * df1)
        while (value := gap(high)) > 0:
            high *= 2
            if high > 1e12:
                return np.nan
        if np.isnan(value):  # far out in the tail scipy's noncentral F returns NaN
            return np.nan
        try:
            return brentq(gap, 0.0, high, xtol=1e-10 * high, maxiter=500)
        except ValueError:  # NaN inside the bracket
            return np.nan

    alpha = 1 - confidence
    lam_low, lam_high = bound(1 - alpha / 2), bound(alpha / 2)
    return lam_low / (lam_low + n), lam_high / (lam_high + n)
