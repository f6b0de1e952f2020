r"""Comparisons of refusal between persona groups, and against the no-persona baseline.

The persona is the unit of a claim about personas
-------------------------------------------------
Generations of one persona share its system prompt, so they are not independent draws: a study of 19 female and
23 male personas has 42 observations of "gender", however many generations each persona wrote. A two-proportion
z-test over generations treats 100,000 generations as 100,000 independent people and finds a "gender gap" in
most samples drawn with none (the personas' own propensities differ), which ``tests/analysis/test_refusal.py``
shows by simulation. So every comparison of persona groups here clusters on ``persona_id`` by default, whenever
the column exists: each persona's refusal rate :math:`r_c = x_c/n_c` is one observation, a group's rate is the
mean of its personas' rates (each persona weighs the same; for equal :math:`n_c` it is the pooled rate), and

* **gender gaps** compare two groups of personas with Welch's unequal-variance t-test (Welch 1947 [1]_):

  .. math::
     t = \frac{\bar r_a-\bar r_b}{\sqrt{s_a^2/k_a+s_b^2/k_b}},\qquad
     \nu = \frac{(s_a^2/k_a+s_b^2/k_b)^2}{\frac{(s_a^2/k_a)^2}{k_a-1}+\frac{(s_b^2/k_b)^2}{k_b-1}}

  with :math:`k` personas per group and :math:`s^2` the sample variance of their rates; the CI of the gap is
  :math:`\bar r_a-\bar r_b \pm t_{\nu,1-\alpha/2}\,\mathrm{SE}`. The variance between personas carries both
  the spread of their propensities and each persona's binomial noise, so the test keeps its level under a
  persona random effect (Donner & Klar 2000 [2]_, ch. 6, analyse cluster means in the same way);
* **refusal against the baseline** compares a group's persona-mean rate with the model's no-persona baseline
  rate :math:`\hat p_0` over its :math:`n_0` generations (one condition, so its variance is binomial), the same
  way: :math:`\mathrm{SE}^2 = s^2/k + \hat p_0(1-\hat p_0)/n_0`, with Welch–Satterthwaite degrees of freedom
  (baseline term on :math:`n_0-1`).

Where the t-test cannot be honest the row says so in ``note`` and the test is left empty (``NaN``), never
reported as significant: fewer than 2 personas in a group (no variance between personas to estimate), or no
variation at all (every persona and the baseline always or never refuse: a standard error of 0, whose
:math:`p` would be 0 or undefined). With fewer than :data:`FEW_PERSONAS` personas in a group the test is run
and the note says that it has little power. Without a cluster column (or with ``cluster=None``) the
generation-level two-proportion z-test below is used, and the note says that generations were treated as
independent.

Two-proportion z-test (e.g. Agresti 2013 [3]_, §3.1)
----------------------------------------------------
For two groups with :math:`x_1/n_1` and :math:`x_2/n_2` refusals, the pooled test statistic is

.. math::  z = \frac{\hat p_1-\hat p_2}{\sqrt{\hat p(1-\hat p)(1/n_1+1/n_2)}},\qquad \hat p=\frac{x_1+x_2}{n_1+n_2}

with the two-sided p-value :math:`2\,\Phi(-|z|)`; it equals statsmodels' ``proportions_ztest``. When both groups
never (or always) refuse, :math:`z` is undefined and reported as ``NaN`` with ``p = 1``.

Multiple comparisons: Benjamini & Hochberg (1995) [4]_
------------------------------------------------------
Across all gaps tested in one call, sort the m p-values :math:`p_{(1)}\le\dots\le p_{(m)}`; the adjusted value is
:math:`\tilde p_{(i)}=\min_{j\ge i}\min(1, m\,p_{(j)}/j)`, and a gap is declared at false-discovery rate
:math:`q` when :math:`\tilde p\le q`. This controls the FDR for independent or positively dependent tests.

References
----------
.. [1] Welch, B. L. (1947). The generalization of "Student's" problem when several different population
   variances are involved. *Biometrika* 34(1–2), 28–35.
.. [2] Donner, A., & Klar, N. (2000). *Design and Analysis of Cluster Randomization Trials in Health Research*.
   Arnold.
.. [3] Agresti, A. (2013). *Categorical Data Analysis* (3rd ed.). Wiley.
.. [4] Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate. *JRSS B* 57(1), 289–300.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

from analysis.frames import as_list, require_columns
from analysis.intervals import wilson_ci
from analysis.refusal.rates import persona_refusal_rates, refusal_rates

__all__ = [
    "FEW_PERSONAS",
    "benjamini_hochberg",
    "gender_gaps",
    "refusal_vs_baseline",
    "two_proportion_ztest",
    "welch_test",
]

#: Below this many personas in a group, a persona-level test is run but noted as having little power.
FEW_PERSONAS = 5
#: Gender values that are not a gender to compare (the baseline's, or none recorded).
_NO_GENDER = {"", "none", "unspecified", "nan"}


def two_proportion_ztest(
    x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled two-sided two-proportion z-test, vectorised; returns ``(z, p)`` (``NaN``, 1 when undefined).

    It treats every generation as an independent observation: for persona groups use :func:`welch_test` on
    persona rates (see the module docstring).
    """
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (x1 + x2) / (n1 + n2)
        se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    z = np.where(se > 0, z, np.nan)
    pval = np.where(np.isfinite(z), 2 * norm.sf(np.abs(z)), 1.0)
    return z, pval


def welch_test(
    diff: np.ndarray,
    var_a: np.ndarray,
    df_a: np.ndarray,
    var_b: np.ndarray,
    df_b: np.ndarray,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Welch's t-test of a difference of two independent means, vectorised.

    Args:
        diff: The difference of the means.
        var_a, var_b: The squared standard errors of each mean (:math:`s^2/k`, or a binomial
            :math:`\hat p(1-\hat p)/n`).
        df_a, df_b: The degrees of freedom of each variance (:math:`k-1`); a term whose variance is 0 adds
            nothing to the Welch–Satterthwaite denominator.
        confidence: Level of the CI of the difference.

    Returns:
        ``(t, df, p, ci_low, ci_high)``; all ``NaN`` where the standard error is 0 or undefined (a degenerate
        variance gives no test, not a p of 0).
    """
    diff, var_a, df_a, var_b, df_b = (np.asarray(a, dtype=float) for a in (diff, var_a, df_a, var_b, df_b))
    se2 = var_a + var_b
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(var_a > 0, var_a**2 / df_a, 0.0) + np.where(var_b > 0, var_b**2 / df_b, 0.0)
        df = se2**2 / denom
        se = np.sqrt(se2)
        t = diff / se
    ok = np.isfinite(t) & np.isfinite(df) & (se > 0) & (df > 0)
    t, df, se = np.where(ok, t, np.nan), np.where(ok, df, np.nan), np.where(ok, se, np.nan)
    p = np.where(ok, 2 * student_t.sf(np.abs(t), np.where(ok, df, 1.0)), np.nan)
    q = np.where(ok, student_t.ppf(0.5 + confidence / 2, np.where(ok, df, 1.0)), np.nan)
    return t, df, p, diff - q * se, diff + q * se


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


_GAP_COLUMNS = [
    "group_a",
    "group_b",
    "n_a",
    "rate_a",
    "n_b",
    "rate_b",
    "n_personas_a",
    "n_personas_b",
    "gap",
    "ci_low",
    "ci_high",
    "test",
    "statistic",
    "df",
    "pval",
    "pval_bh",
    "significant",
    "note",
]


def gender_gaps(
    data: pd.DataFrame,
    by: str | Sequence[str] | None = ("model", "persona_category"),
    gender: str = "persona_gender",
    refusal: str = "refusal",
    groups: Sequence[str] | None = None,
    fdr: float = 0.05,
    cluster: str | None = "persona_id",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Refusal-rate gaps between persona genders, tested over personas, with Benjamini–Hochberg correction.

    Args:
        data: One row per generation.
        by: Column(s) within which genders are compared (for example model and persona category).
        gender: Column of the persona's gender.
        refusal: Column of the 0/1 refusal flag.
        groups: The gender values to compare pairwise (default: every value present except ``none``,
            ``unspecified`` and empty strings).
        fdr: False-discovery rate for the ``significant`` column.
        cluster: Column of the persona, the unit the test counts (used when ``data`` has it); ``None`` for the
            generation-level two-proportion z-test.
        confidence: Level of the CI of the gap.

    Returns:
        Tidy DataFrame ``*by, group_a, group_b, n_a, rate_a, n_b, rate_b, n_personas_a, n_personas_b, gap,
        ci_low, ci_high, test, statistic, df, pval, pval_bh, significant, note``. ``n_*`` count generations with a
        known flag. Clustered (``test`` is ``welch_t_personas``), ``rate_*`` is the mean of the group's persona
        rates and the test is Welch's t over personas; otherwise (``two_proportion_z``) ``rate_*`` is the pooled
        rate, ``statistic`` is z and the CI is the Wald interval. ``gap = rate_a − rate_b``; the BH correction
        runs over all rows; ``note`` says when a test is missing or weak, and why.
    """
    by = as_list(by)
    clustered = cluster is not None and cluster in data.columns
    require_columns(data, [gender, refusal, *by, *([cluster] if clustered else [])])
    frame = data.assign(**{gender: data[gender].astype(str)})
    if clustered:
        rates = persona_refusal_rates(frame, [*by, gender], cluster=cluster, refusal=refusal)
        rates["rate"] = rates["persona_mean"]
    else:
        rates = refusal_rates(frame, [*by, gender], refusal=refusal)
        rates["n_personas"] = np.nan
    if groups is None:
        groups = sorted(v for v in rates[gender].unique() if v.strip().lower() not in _NO_GENDER)
    rates = rates[rates[gender].isin(list(groups)) & (rates["n"] > 0)]
    pieces = []
    for a, b in itertools.combinations(list(groups), 2):
        left = rates[rates[gender] == a].drop(columns=gender)
        right = rates[rates[gender] == b].drop(columns=gender)
        how = {"on": by} if by else {"how": "cross"}
        merged = left.merge(right, suffixes=("_a", "_b"), **how)
        if len(merged):
            pieces.append(merged.assign(group_a=a, group_b=b))
    if not pieces:
        return pd.DataFrame(columns=[*by, *_GAP_COLUMNS])
    out = pd.concat(pieces, ignore_index=True)
    out["gap"] = out["rate_a"] - out["rate_b"]
    if clustered:
        _persona_test(
            out, *_mean_se2(out, "persona_var_a", "n_personas_a"), *_mean_se2(out, "persona_var_b", "n_personas_b"),
            confidence,
        )  # fmt: skip
        out["note"] = [
            _persona_note(ka, kb, va, vb, f"{a} personas", f"{b} personas")
            for ka, kb, va, vb, a, b in zip(
                out["n_personas_a"],
                out["n_personas_b"],
                out["persona_var_a"],
                out["persona_var_b"],
                out["group_a"],
                out["group_b"],
                strict=True,
            )
        ]
    else:
        out["statistic"], out["pval"] = two_proportion_ztest(
            out["refusals_a"], out["n_a"], out["refusals_b"], out["n_b"]
        )
        out["df"] = np.nan
        out["test"] = "two_proportion_z"
        z = norm.ppf(0.5 + confidence / 2)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(
                out["rate_a"] * (1 - out["rate_a"]) / out["n_a"] + out["rate_b"] * (1 - out["rate_b"]) / out["n_b"]
            )
        se = se.where(se > 0)
        out["ci_low"], out["ci_high"] = out["gap"] - z * se, out["gap"] + z * se
        out["note"] = _unclustered_note(cluster)
    out["pval_bh"] = benjamini_hochberg(out["pval"].to_numpy(dtype=float))
    out["significant"] = out["pval_bh"] <= fdr
    return out[[*by, *_GAP_COLUMNS]]


_BASELINE_COLUMNS = [
    "factor",
    "level",
    "n",
    "refusals",
    "rate",
    "ci_low",
    "ci_high",
    "n_personas",
    "baseline_n",
    "baseline_refusals",
    "baseline_rate",
    "gap",
    "gap_ci_low",
    "gap_ci_high",
    "test",
    "statistic",
    "df",
    "pval",
    "pval_bh",
    "significant",
    "note",
]


def refusal_vs_baseline(
    data: pd.DataFrame,
    factors: Sequence[str] = ("persona_kind", "persona_category"),
    by: str | Sequence[str] | None = "model",
    refusal: str = "refusal",
    is_baseline: str = "is_baseline",
    cluster: str | None = "persona_id",
    fdr: float = 0.05,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Refusal rate of each level of each persona factor against the same group's no-persona baseline rate.

    Args:
        data: One row per generation, persona and baseline cells together.
        factors: Persona-level columns whose levels are compared with the baseline (those absent are skipped).
        by: Column(s) within which a level is compared with its own baseline (the model, usually).
        refusal: Column of the 0/1 refusal flag.
        is_baseline: Column marking no-persona baseline rows (missing counts as not).
        cluster: Column of the persona, the unit the test counts (used when ``data`` has it); ``None`` for the
            generation-level two-proportion z-test.
        fdr: False-discovery rate for ``significant`` (Benjamini–Hochberg over the whole table).
        confidence: Level of the CIs.

    Returns:
        Tidy DataFrame ``*by, factor, level, n, refusals, rate, ci_low, ci_high, n_personas, baseline_n,
        baseline_refusals, baseline_rate, gap, gap_ci_low, gap_ci_high, test, statistic, df, pval, pval_bh,
        significant, note``. Clustered (``test`` is ``welch_t_personas``): ``rate`` is the mean of the level's
        persona rates with a t interval over personas, and ``gap = rate − baseline_rate`` is tested with
        Welch–Satterthwaite (module docstring). Otherwise ``rate`` is pooled over generations with a Wilson CI and
        the test is the two-proportion z-test. The baseline columns and the test are empty where the group has
        no baseline generation with a flag.
    """
    by = as_list(by)
    clustered = cluster is not None and cluster in data.columns
    factors = [f for f in factors if f in data.columns]
    require_columns(data, [refusal, is_baseline, *by, *([cluster] if clustered else [])])
    base = data[is_baseline].fillna(0).astype(bool).to_numpy()
    personas = data[~base]
    baseline = refusal_rates(data[base], by, refusal=refusal) if base.any() else pd.DataFrame(columns=by)
    baseline = baseline.reindex(columns=[*by, "n", "refusals", "rate"]).rename(
        columns={"n": "baseline_n", "refusals": "baseline_refusals", "rate": "baseline_rate"}
    )
    parts = []
    for factor in factors:
        keys = [*by, factor]
        if clustered:
            r = persona_refusal_rates(personas, keys, cluster=cluster, refusal=refusal)
            r["rate"] = r["persona_mean"]
        else:
            r = refusal_rates(personas, keys, refusal=refusal)
        parts.append(r.rename(columns={factor: "level"}).assign(factor=factor, level=lambda f: f["level"].astype(str)))
    if not parts:
        return pd.DataFrame(columns=[*by, *_BASELINE_COLUMNS])
    out = pd.concat(parts, ignore_index=True)
    out = out[out["n"] > 0].reset_index(drop=True)
    for col in by:
        out[col] = out[col].astype(str)
        baseline[col] = baseline[col].astype(str)
    out = out.merge(baseline, on=by, how="left") if by else out.merge(baseline, how="cross")
    out["gap"] = out["rate"] - out["baseline_rate"]
    has_base = out["baseline_n"].fillna(0).to_numpy() > 0
    if clustered:
        k = out["n_personas"].to_numpy(dtype=float)
        q = student_t.ppf(0.5 + confidence / 2, np.maximum(k - 1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            half = q * np.sqrt(out["persona_var"].to_numpy(dtype=float) / k)
        half = np.where((k >= 2) & (half > 0), half, np.nan)
        out["ci_low"] = np.clip(out["rate"] - half, 0, 1)
        out["ci_high"] = np.clip(out["rate"] + half, 0, 1)
        nb = out["baseline_n"].to_numpy(dtype=float)
        pb = out["baseline_rate"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            base_var = pb * (1 - pb) / nb
        _persona_test(out, *_mean_se2(out, "persona_var", "n_personas"), base_var, nb - 1, confidence, "gap_")
        out["note"] = [
            _persona_note(kp, 2, vp, vb, "personas", "baseline", no_base=not hb)
            for kp, vp, vb, hb in zip(out["n_personas"], out["persona_var"], base_var, has_base, strict=True)
        ]
    else:
        out["ci_low"], out["ci_high"] = wilson_ci(out["refusals"].to_numpy(), out["n"].to_numpy(), confidence)
        out["n_personas"] = np.nan
        out["statistic"], out["pval"] = two_proportion_ztest(
            out["refusals"], out["n"], out["baseline_refusals"], out["baseline_n"]
        )
        out["df"] = np.nan
        out["gap_ci_low"] = out["gap_ci_high"] = np.nan
        out["test"] = "two_proportion_z"
        out["note"] = _unclustered_note(cluster)
    out.loc[~has_base, ["statistic", "df", "pval", "gap_ci_low", "gap_ci_high"]] = np.nan
    out.loc[~has_base & (out["note"] == ""), "note"] = "no baseline generation with a refusal flag"
    out["pval_bh"] = benjamini_hochberg(out["pval"].to_numpy(dtype=float))
    out["significant"] = out["pval_bh"] <= fdr
    return out[[*by, *_BASELINE_COLUMNS]]


# ------------------------------------------------------------------------------------------------ helpers


def _persona_test(
    out: pd.DataFrame,
    var_a: np.ndarray,
    df_a: np.ndarray,
    var_b: np.ndarray,
    df_b: np.ndarray,
    confidence: float,
    prefix: str = "",
) -> None:
    """Welch's t of ``out["gap"]`` into ``test, statistic, df, pval, {prefix}ci_low, {prefix}ci_high`` (in place).

    ``var_*`` are the squared standard errors of the two rates, ``df_*`` their degrees of freedom.
    """
    t, df, p, lo, hi = welch_test(out["gap"].to_numpy(dtype=float), var_a, df_a, var_b, df_b, confidence)
    out["test"] = "welch_t_personas"
    out["statistic"], out["df"], out["pval"] = t, df, p
    out[f"{prefix}ci_low"], out[f"{prefix}ci_high"] = lo, hi


def _mean_se2(frame: pd.DataFrame, var: str, k: str) -> tuple[np.ndarray, np.ndarray]:
    """The squared standard error ``s²/k`` of a persona-mean rate and its degrees of freedom ``k − 1``
    (``NaN`` with fewer than 2 personas)."""
    kk = frame[k].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        se2 = np.where(kk >= 2, frame[var].to_numpy(dtype=float) / kk, np.nan)
    return se2, kk - 1


def _persona_note(
    k_a: float, k_b: float, var_a: float, var_b: float, what_a: str, what_b: str, no_base: bool = False
) -> str:
    """Why a persona-level test is missing or weak ("" when it is neither)."""
    if no_base:
        return "no baseline generation with a refusal flag"
    if k_a < 2 or k_b < 2:
        return f"fewer than 2 personas per group ({int(k_a)} {what_a}, {int(k_b)} {what_b}): no persona-level test"
    if not (var_a > 0 or var_b > 0):
        return "no variation between personas (every one always or never refuses): the test is undefined"
    if min(k_a, k_b) < FEW_PERSONAS:
        few = f"{int(k_a)} {what_a}" if what_b == "baseline" else f"{int(k_a)} {what_a}, {int(k_b)} {what_b}"
        return f"few personas ({few}): the persona-level t-test has little power"
    return ""


def _unclustered_note(cluster: str | None) -> str:
    if cluster is None:
        return "generations treated as independent (cluster=None): overstates certainty about persona groups"
    return f"no {cluster} column: generations treated as independent, which overstates certainty"
