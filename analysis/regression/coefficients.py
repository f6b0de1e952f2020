"""The tidy coefficient table of a persona regression, and the public fitting functions."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from analysis.frames import require_columns
from analysis.regression.design import DegenerateDataError
from analysis.regression.fit import P_FLOOR, PROMPT_COLUMNS, CovType, FittedModel, fit_model, pvalue_floor
from analysis.regression.logistic import penalized_lr_test, profile_interval

__all__ = ["TIDY_COLUMNS", "coefficient_table", "fit_persona_model", "persona_regressions", "tidy_result"]

TIDY_COLUMNS = [
    "term",
    "coef",
    "se",
    "ci_low",
    "ci_high",
    "pval",
    "model",
    "n_obs",
    "kind",
    "cov_type",
    "df",
    "n_total",
    "n_clusters",
    "note",
]
#: Coefficients whose profile intervals are computed at most (each costs a few dozen constrained fits).
_MAX_PROFILES = 25


def coefficient_table(fitted: FittedModel) -> pd.DataFrame:
    """The tidy coefficient table (:data:`TIDY_COLUMNS`) of a fitted model, aliased terms included as NaN rows."""
    from scipy.stats import norm
    from scipy.stats import t as t_dist

    d = fitted.design
    beta, cov, df = fitted.beta, fitted.cov, fitted.df.astype(float).copy()
    var = np.diag(cov).copy()
    model_se = np.sqrt(np.clip(np.diag(fitted.bread) * fitted.sigma2, 0, None))
    se = np.sqrt(np.where(np.isfinite(var) & (var > 0), var, np.nan))
    notes: list[list[str]] = [list(fitted.model_notes) for _ in beta]
    persona_terms = d.persona_terms[d.keep]
    cov_types = [fitted.cov_type] * len(beta)
    for j in range(len(beta)):
        if not fitted.identified[j]:
            se[j] = np.nan
            notes[j].append(
                "its variance rests on a single cluster (e.g. a persona category with one persona), which "
                "cluster-robust errors cannot estimate: no SE"
            )
        elif not np.isfinite(se[j]) or se[j] <= 1e-8 * model_se[j]:
            se[j] = np.nan
            notes[j].append("degenerate variance (SE below 1e-8 of the model-based SE): no SE")
    robust = fitted.cov_type in ("CR2", "CR1")
    persona_g = d.n_persona_clusters
    for j in np.flatnonzero(persona_terms):
        if robust and persona_g < fitted.min_clusters and np.isfinite(se[j]):
            small = "small-sample CR2" if fitted.cov_type == "CR2" else "CR1 (use CR2)"
            fewer = f"only {persona_g} personas (fewer than {fitted.min_clusters})"
            notes[j].append(f"{fewer}: {small} errors, approximate")
        if not robust:
            notes[j].append(
                "generations treated as independent (no persona clusters): not a claim about persona categories"
            )
    if fitted.cov_type == "CR2":
        for j in np.flatnonzero(np.isfinite(df) & (df < 2) & np.isfinite(se)):
            notes[j].append(f"{df[j]:.2g} Satterthwaite degrees of freedom: the interval is very wide")
    df = np.where(np.isfinite(se), df, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    finite_df = np.isfinite(df)
    pval = np.where(finite_df, 2 * t_dist.sf(np.abs(z), np.where(finite_df, df, 1)), 2 * norm.sf(np.abs(z)))
    quant = np.where(finite_df, t_dist.ppf(0.975, np.where(finite_df, df, 1)), norm.ppf(0.975))
    pval = np.where(np.isfinite(se) & ~np.isnan(df), pval, np.nan)
    ci_low, ci_high = beta - quant * se, beta + quant * se
    if fitted.separated is not None and fitted.separated.any():
        _profile_rows(fitted, se, df, pval, ci_low, ci_high, notes, cov_types)
    pval, floored = pvalue_floor(pval)
    for j in np.flatnonzero(floored):
        notes[j].append(f"p below {P_FLOOR:g}, shown as {P_FLOOR:g}")
    df = np.where(np.isfinite(df), df, np.nan)  # the normal: no degrees of freedom
    kept = np.flatnonzero(d.keep)
    rows = len(d.names)

    def full(values, fill=np.nan):
        out = np.full(rows, fill, dtype=object if isinstance(fill, str) else float)
        out[kept] = values
        return out

    note = full(["; ".join(n) for n in notes], "")
    cov_type = full(cov_types, "")
    for j, others in d.aliased_with.items():
        with_ = ", ".join(others) if others else "nothing (an empty column)"
        note[j] = f"aliased with {with_}: dropped, not estimable (as R reports NA)"
    return pd.DataFrame(
        {
            "term": d.names,
            "coef": full(beta),
            "se": full(se),
            "ci_low": full(ci_low),
            "ci_high": full(ci_high),
            "pval": full(pval),
            "model": fitted.model,
            "n_obs": fitted.n_obs,
            "kind": "Logit" if fitted.kind == "logit" else "OLS",
            "cov_type": cov_type.astype(str),
            "df": full(df),
            "n_total": d.n_total,
            "n_clusters": float(fitted.n_clusters) if robust else np.nan,
            "note": note.astype(str),
        },
        columns=TIDY_COLUMNS,
    )


def _profile_rows(fitted, se, df, pval, ci_low, ci_high, notes, cov_types) -> None:
    """Profile penalized-likelihood intervals and tests for the separated coefficients the clusters identify.

    A separated coefficient that a single cluster carries keeps no interval: neither the clusters nor the
    likelihood (which would treat that persona's generations as independent) can say how it varies.
    """
    x, s, n, fit = fitted.pattern_x, fitted.pattern_s, fitted.pattern_n, fitted.logit
    involved = [j for j in np.flatnonzero(fitted.separated) if fitted.identified[j]]
    for j in np.flatnonzero(fitted.separated & ~fitted.identified):
        notes[j].append("separated (its outcome never or always occurs along this term): Firth estimate only")
    if not fitted.profiles or len(involved) > _MAX_PROFILES:
        from scipy.stats import norm

        for j in involved:  # a robust SE from near-zero residuals would be far too small: use the information
            se[j] = np.sqrt(fit.cov[j, j])
            df[j] = np.inf
            ci_low[j], ci_high[j] = fit.beta[j] - norm.ppf(0.975) * se[j], fit.beta[j] + norm.ppf(0.975) * se[j]
            pval[j] = 2 * norm.sf(abs(fit.beta[j]) / se[j])
            cov_types[j] = "Firth-Wald"
            notes[j].append("separated: Firth estimate, Wald interval from the penalized information (approximate)")
        return
    for j in involved:
        ci_low[j], ci_high[j] = profile_interval(x, s, n, fit, int(j))
        pval[j] = penalized_lr_test(x, s, n, fit, np.array([j]))[1]
        se[j] = np.sqrt(fit.cov[j, j])
        df[j] = np.nan
        cov_types[j] = "Firth-PL"
        notes[j].append(
            "separated (its outcome never or always occurs along this term): Firth estimate, profile "
            "penalized-likelihood interval and test, which treat generations as independent"
        )
        if not (np.isfinite(ci_low[j]) and np.isfinite(ci_high[j])):
            notes[j].append("an end of the profile interval was not found within 1000 SE")


def fit_persona_model(
    data: pd.DataFrame,
    outcome: str,
    kind: Literal["logit", "ols"],
    persona: str = "persona_category",
    target: str = "target_category",
    template: str = "template_id",
    baseline: str = "none",
    interaction: bool = False,
    cluster: str | None = "persona_id",
    aggregate: bool = True,
    model: str | None = None,
    *,
    interactions: tuple[str, ...] = (),
    cov_type: CovType = "auto",
    firth: bool | Literal["auto"] = "auto",
    min_clusters: int = 20,
    prompt: tuple[str, ...] = PROMPT_COLUMNS,
) -> pd.DataFrame:
    """Fit one persona regression on ``data`` (one generator model) and return its tidy coefficient table.

    Args:
        data: One row per generation.
        outcome: Column of the outcome: 0/1 refusal for ``kind="logit"``, a 0–1 score for ``kind="ols"``.
        kind: ``"logit"`` or ``"ols"``.
        persona, target, template: Columns of the regressors (``template="template_style"`` for the style).
        baseline: Level of ``persona`` used as reference (the no-persona baseline).
        interaction: Add the persona × template interaction (kept for compatibility: ``interactions``).
        cluster: Column of the persona clusters (the persona id); ``None`` treats generations as independent.
            For claims about particular personas rather than categories, fit ``persona="persona_id"`` with
            ``cluster=None`` (with persona clusters every persona term would rest on a single cluster).
        aggregate: Fit on cells (exact, fast); ``False`` runs the same estimator on one cell per row.
        model: Label written in the ``model`` column.
        interactions: Interaction blocks with the persona: any of ``"target"``, ``"template"``.
        cov_type: ``"auto"`` (``"CR2"`` with a cluster column, else ``"HC3"`` for OLS and ``"model"`` for the
            logit), ``"CR2"`` (small-sample cluster-robust, t on Satterthwaite df), ``"CR1"`` (statsmodels'
            cluster errors, t on G−1 df), ``"HC3"`` (OLS; normal) or ``"model"``.
        firth: ``"auto"`` fits Firth's penalized likelihood when the logit is separated; ``True`` always;
            ``False`` raises :class:`DegenerateDataError` on separation.
        min_clusters: Fewer personas than this get a note on every persona term.
        prompt: Columns identifying a baseline generation's prompt (its cluster), where present.

    Returns:
        One row per design column, :data:`TIDY_COLUMNS`: ``term, coef, se, ci_low, ci_high, pval, model, n_obs,
        kind, cov_type, df, n_total, n_clusters, note``. ``n_obs`` of ``n_total`` rows had a known outcome;
        ``df`` is the t's degrees of freedom (NaN for the normal); ``note`` says why a figure is missing or
        approximate (aliased terms, variances a single cluster carries, separation, few personas).

    Raises:
        DegenerateDataError: constant outcome, no baseline rows, a single persona level, or (``firth=False``)
            separation.

    Examples:
        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> personas = {"none": "none", **{f"p{i}": "teacher" if i < 6 else "critic" for i in range(12)}}
        >>> rows = [(pid, cat, t, m) for pid, cat in personas.items() for t in "ab" for m in "xyz" for _ in range(4)]
        >>> data = pd.DataFrame(rows, columns=["persona_id", "persona_category", "target_category", "template_id"])
        >>> data["toxicity"] = rng.normal(0.3, 0.1, len(data)) + 0.2 * (data["persona_category"] == "critic")
        >>> table = fit_persona_model(data, "toxicity", "ols")
        >>> row = table.set_index("term").loc["persona[T.critic]"]
        >>> row["cov_type"], int(row["n_clusters"]), row["note"]  # 12 personas and the baseline's 6 prompts
        ('CR2', 18, 'only 12 personas (fewer than 20): small-sample CR2 errors, approximate')
    """
    inter = tuple(interactions) + (("template",) if interaction and "template" not in interactions else ())
    fitted = fit_model(
        data, outcome, kind, persona=persona, target=target, template=template, baseline=baseline,
        interactions=inter, cluster=cluster, prompt=prompt, aggregate=aggregate, cov_type=cov_type, firth=firth,
        min_clusters=min_clusters, model=model,
    )  # fmt: skip
    return coefficient_table(fitted)


def persona_regressions(
    data: pd.DataFrame,
    outcome: str,
    kind: Literal["logit", "ols"],
    model_col: str = "model",
    on_degenerate: Literal["raise", "skip"] = "raise",
    **kwargs,
) -> pd.DataFrame:
    """:func:`fit_persona_model` for each generator model, stacked into one tidy table.

    Args:
        data: One row per generation, with a ``model_col`` column.
        outcome, kind: See :func:`fit_persona_model`; other keyword arguments are passed on.
        model_col: Column naming the generator model.
        on_degenerate: ``"raise"`` the first :class:`DegenerateDataError`, or ``"skip"`` the model and record
            its reason in ``result.attrs["skipped"]`` (a dict model → reason).
    """
    require_columns(data, [model_col])
    tables, skipped = [], {}
    for name, part in data.groupby(model_col, observed=True, sort=True):
        try:
            tables.append(fit_persona_model(part, outcome, kind, model=str(name), **kwargs))
        except DegenerateDataError as exc:
            if on_degenerate == "raise":
                raise
            skipped[str(name)] = str(exc)
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TIDY_COLUMNS)
    out.attrs["skipped"] = skipped
    return out


def tidy_result(result, model: str | None = None, rename: dict[str, str] | None = None) -> pd.DataFrame:
    """A statsmodels results object as a tidy table (:data:`TIDY_COLUMNS`).

    Intervals and p-values are statsmodels' own (normal or t as the result was fitted). A standard error below
    1e-8 of the model-based one (a cluster-robust variance that a single cluster carries), or not finite, is
    blanked with its p-value and interval and a note rather than printed as a certainty; a p-value below
    :data:`P_FLOOR` is floored, with a note.
    """
    ci = np.array(result.conf_int(), dtype=float)
    params = result.params
    terms = [str(t) for t in params.index]
    for old, new in (rename or {}).items():
        terms = [t.replace(old, new) for t in terms]
    se = np.asarray(result.bse, dtype=float).copy()
    pval = np.asarray(result.pvalues, dtype=float).copy()
    coef = np.asarray(params, dtype=float)
    notes = [""] * len(terms)
    try:  # the model-based SE is the scale a robust SE is compared with
        scale = np.sqrt(np.abs(np.diag(np.asarray(result.normalized_cov_params)) * float(result.scale)))
    except (AttributeError, TypeError, ValueError):
        scale = np.maximum(np.abs(coef), 1.0)
    bad = ~np.isfinite(se) | (se <= 1e-8 * scale)
    for j in np.flatnonzero(bad):
        se[j] = pval[j] = ci[j, 0] = ci[j, 1] = np.nan
        notes[j] = "degenerate variance: no SE"
    pval, floored = pvalue_floor(pval)
    for j in np.flatnonzero(floored):
        notes[j] = f"p below {P_FLOOR:g}, shown as {P_FLOOR:g}"
    use_t = bool(getattr(result, "use_t", False))
    return pd.DataFrame(
        {
            "model": model,
            "term": terms,
            "coef": coef,
            "se": se,
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "pval": pval,
            "n_obs": int(result.nobs),
            "kind": type(result.model).__name__,
            "cov_type": getattr(result, "cov_type", "nonrobust"),
            "df": float(result.df_resid) if use_t else np.nan,
            "n_total": int(result.nobs),
            "n_clusters": np.nan,
            "note": notes,
        },
        columns=TIDY_COLUMNS,
    )
