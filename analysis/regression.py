r"""Persona regressions: what persona, target group and template do to refusal and toxicity.

For each generator model separately (models differ too much to share coefficients) we fit, with statsmodels
formulas,

.. math::
    \operatorname{logit} P(\text{refusal}_i) = \beta_0 + \beta_{\text{persona}[i]} + \gamma_{\text{target}[i]}
        + \delta_{\text{template}[i]} \;(+\; \eta_{\text{persona}\times\text{template}})

    \text{toxicity}_i = \beta_0 + \beta_{\text{persona}[i]} + \gamma_{\text{target}[i]}
        + \delta_{\text{template}[i]} \;(+\;\eta) + \varepsilon_i

Persona category is treatment-coded against the no-persona baseline (``'none'``), so each persona coefficient
is the difference from the model without a persona, holding target and template fixed; target category and
template use their first level (alphabetical) as reference.

Standard errors
---------------
* Logit: maximum likelihood with model-based errors. Because every regressor is categorical, the fit runs on
  the covariate patterns with binomial counts (a binomial GLM with logit link), which gives *exactly* the
  coefficients and errors of the row-level logit at a fraction of the cost; ``aggregate=False`` fits rows.
* OLS: cluster-robust errors (Liang & Zeger 1986; statsmodels' ``cov_type="cluster"`` with its small-sample
  correction) clustered on the persona by default, since generations of one persona share its prompt; without a
  cluster column, HC3 (MacKinnon & White 1985). Here too the fit runs on sufficient statistics of the
  (cluster, covariate pattern) cells, exactly reproducing statsmodels' row-level results (checked in the tests);
  ``aggregate=False`` fits rows with ``smf.ols``.

Confidence intervals are Wald intervals (normal for logit and cluster, t for HC3 as statsmodels reports them).

Degenerate data
---------------
A model whose outcome is constant (all refused, none refused), whose baseline rows are missing, or whose
logit is (quasi-)perfectly separated (a factor level where every generation refused or none did: the MLE is at
infinity) raises :class:`DegenerateDataError`, a ``ValueError`` that names the model and the cause. The
per-model wrapper :func:`persona_regressions` can instead skip such models (``on_degenerate="skip"``) and list
them in ``result.attrs["skipped"]``.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from analysis.frames import require_columns

__all__ = [
    "DegenerateDataError",
    "TIDY_COLUMNS",
    "fit_persona_model",
    "persona_regressions",
    "tidy_result",
]

TIDY_COLUMNS = ["term", "coef", "se", "ci_low", "ci_high", "pval", "model", "n_obs", "kind", "cov_type"]
_PERSONA = "persona"
_BASELINE_TERM = "C(persona, Treatment(reference={ref!r}))"


class DegenerateDataError(ValueError):
    """The data cannot identify the regression (constant outcome, separation, missing baseline, …)."""


def tidy_result(result, model: str | None = None, rename: dict[str, str] | None = None) -> pd.DataFrame:
    """A statsmodels results object as a tidy table ``term, coef, se, ci_low, ci_high, pval, model, …``."""
    ci = np.asarray(result.conf_int())
    params = result.params
    terms = [str(t) for t in params.index]
    for old, new in (rename or {}).items():
        terms = [t.replace(old, new) for t in terms]
    cov_type = getattr(result, "cov_type", "nonrobust")
    kind = type(result.model).__name__
    return pd.DataFrame(
        {
            "model": model,
            "term": terms,
            "coef": np.asarray(params, dtype=float),
            "se": np.asarray(result.bse, dtype=float),
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "pval": np.asarray(result.pvalues, dtype=float),
            "n_obs": int(result.nobs),
            "kind": kind,
            "cov_type": cov_type,
        },
        columns=TIDY_COLUMNS,
    )


def _formula(outcome: str, baseline: str, interaction: bool) -> tuple[str, dict[str, str]]:
    persona_term = _BASELINE_TERM.format(ref=baseline)
    rhs = f"{persona_term} + C(target) + C(template)"
    if interaction:
        rhs += f" + {persona_term}:C(template)"
    rename = {persona_term: "persona", "C(target)": "target", "C(template)": "template"}
    return f"{outcome} ~ {rhs}", rename


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
) -> pd.DataFrame:
    """Fit one persona regression on ``data`` (one generator model) and return its tidy coefficient table.

    Args:
        data: One row per generation.
        outcome: Column of the outcome: 0/1 refusal for ``kind="logit"``, a 0–1 score for ``kind="ols"``.
        kind: ``"logit"`` or ``"ols"``.
        persona, target, template: Columns of the regressors.
        baseline: Level of ``persona`` used as reference (the no-persona baseline).
        interaction: Add the persona × template interaction.
        cluster: Column to cluster OLS errors on; ``None`` (or a missing column) uses HC3.
        aggregate: Fit on covariate patterns (exactly equivalent, much faster): the logit as a binomial GLM on
            pattern counts, the OLS from per-(cluster, pattern) sufficient statistics (see ``_ols_aggregated``).
        model: Label written in the ``model`` column.

    Raises:
        DegenerateDataError: constant outcome, no baseline rows, a single persona level, separation, or a
            singular design.
    """
    import statsmodels.api as sm
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

    if kind not in ("logit", "ols"):
        raise ValueError(f"kind must be 'logit' or 'ols', got {kind!r}")
    use_cluster = kind == "ols" and cluster is not None and cluster in data.columns
    require_columns(data, [outcome, persona, target, template])
    label = f"model {model!r}" if model is not None else "the data"
    # Categorical columns let patsy use their codes instead of inspecting every value (100× faster).
    frame = pd.DataFrame(
        {
            "y": pd.to_numeric(data[outcome], errors="raise").astype(float).to_numpy(),
            _PERSONA: _categorical(data[persona]),
            "target": _categorical(data[target]),
            "template": _categorical(data[template]),
        }
    )
    if use_cluster:
        frame["cluster"] = pd.factorize(data[cluster])[0]
    frame = frame.dropna(subset=["y"])
    for col in (_PERSONA, "target", "template"):
        frame[col] = frame[col].cat.remove_unused_categories()
    if frame.empty:
        raise DegenerateDataError(f"{label}: no rows with a known {outcome!r}")
    if not (frame[_PERSONA] == baseline).any():
        raise DegenerateDataError(
            f"{label}: no baseline rows ({persona} == {baseline!r}); persona effects are measured against them"
        )
    if frame[_PERSONA].nunique() < 2:
        raise DegenerateDataError(f"{label}: only the baseline persona level is present; nothing to compare")
    if frame["y"].nunique() < 2:
        raise DegenerateDataError(
            f"{label}: {outcome!r} is constant ({frame['y'].iloc[0]:g} for all {len(frame)} rows); "
            f"the {'logit' if kind == 'logit' else 'regression'} is undefined"
        )
    formula, rename = _formula("y", baseline, interaction)
    if kind == "logit":
        if not set(np.unique(frame["y"])) <= {0.0, 1.0}:
            raise ValueError(f"{label}: {outcome!r} must be 0/1 for a logit")
        factors = [_PERSONA, "template", "target"]
        cells = [[_PERSONA, "template"]] if interaction else [[f] for f in factors]
        for cols in cells:
            rate = frame.groupby(cols, observed=True)["y"].mean()
            bad = rate[(rate == 0) | (rate == 1)]
            if len(bad):
                level = bad.index[0]
                raise DegenerateDataError(
                    f"{label}: perfect separation: {outcome!r} is {bad.iloc[0]:g} for every row with "
                    f"{cols} = {level!r}, so its coefficient is infinite; drop or merge that level"
                )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            if kind == "logit" and aggregate:
                agg = frame.groupby([_PERSONA, "target", "template"], observed=True)["y"].agg(["sum", "count"])
                agg = agg.reset_index()
                agg["y"] = agg["sum"] / agg["count"]
                result = smf.glm(formula, agg, family=sm.families.Binomial(), var_weights=agg["count"]).fit()
                result.nobs = len(frame)
            elif kind == "logit":
                result = smf.logit(formula, frame).fit(disp=0)
            elif aggregate:
                return _ols_aggregated(frame, formula, rename, model, use_cluster)
            elif use_cluster:
                result = smf.ols(formula, frame).fit(cov_type="cluster", cov_kwds={"groups": frame["cluster"]})
            else:
                result = smf.ols(formula, frame).fit(cov_type="HC3")
    except (PerfectSeparationError, PerfectSeparationWarning) as exc:
        raise DegenerateDataError(f"{label}: perfect separation in the logit ({exc})") from exc
    except np.linalg.LinAlgError as exc:
        raise DegenerateDataError(f"{label}: singular design matrix ({exc})") from exc
    table = tidy_result(result, model=model, rename=rename)
    if kind == "logit":
        table["kind"] = "Logit"
    if not np.isfinite(table["se"]).all():
        raise DegenerateDataError(f"{label}: some standard errors are not finite (a non-identified term)")
    return table


def _ols_aggregated(
    frame: pd.DataFrame, formula: str, rename: dict[str, str], model: str | None, use_cluster: bool
) -> pd.DataFrame:
    r"""OLS with cluster-robust or HC3 errors from sufficient statistics of the covariate patterns.

    All regressors are categorical, so every row of a pattern has the same design row :math:`x_p`. With
    :math:`n_c, S_c=\sum y, Q_c=\sum y^2` per (cluster, pattern) cell: :math:`X'X=\sum_c n_c x_cx_c'`,
    :math:`X'y=\sum_c S_c x_c`; a cluster's score is :math:`u_g=\sum_{c\in g}x_c(S_c-n_c x_c'\hat\beta)` and
    the pattern's residual sum of squares is :math:`Q_p-2\hat y_pS_p+n_p\hat y_p^2`, with the common leverage
    :math:`h_p=x_p'(X'X)^{-1}x_p` for HC3. The estimates equal statsmodels' row-level fit
    (``cov_type="cluster"`` with its correction :math:`\frac{G}{G-1}\frac{N-1}{N-K}`, or ``"HC3"``) to rounding;
    the tests check that.
    """
    import patsy
    from scipy.stats import norm

    keys = [_PERSONA, "target", "template"] + (["cluster"] if use_cluster else [])
    cells = frame.assign(_y2=frame["y"] ** 2).groupby(keys, observed=True, sort=False)
    agg = cells.agg(n=("y", "size"), s=("y", "sum"), q=("_y2", "sum")).reset_index()
    rhs = formula.split("~", 1)[1]
    x_frame = patsy.dmatrix(rhs, agg, return_type="dataframe")
    x = x_frame.to_numpy()
    n_c, s_c, q_c = agg["n"].to_numpy(float), agg["s"].to_numpy(), agg["q"].to_numpy()
    n_obs = n_c.sum()
    xtx = x.T @ (x * n_c[:, None])
    xtx_inv = np.linalg.pinv(xtx)
    beta = xtx_inv @ (x.T @ s_c)
    fitted = x @ beta
    rank = np.linalg.matrix_rank(xtx)
    if n_obs <= rank:
        raise DegenerateDataError(
            f"model {model!r}: {int(n_obs)} observations for {rank} parameters; the errors are undefined"
        )
    if use_cluster:
        scores = x * (s_c - n_c * fitted)[:, None]
        groups = agg["cluster"].to_numpy()
        codes, uniques = pd.factorize(groups)
        u = np.zeros((len(uniques), x.shape[1]))
        np.add.at(u, codes, scores)
        meat = u.T @ u
        g = len(uniques)
        correction = g / (g - 1) * (n_obs - 1) / (n_obs - rank) if g > 1 else np.nan
        cov = correction * xtx_inv @ meat @ xtx_inv
        cov_type = "cluster"
    else:
        rss = q_c - 2 * fitted * s_c + n_c * fitted**2
        lev = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = rss / (1 - lev) ** 2
        meat = x.T @ (x * w[:, None])
        cov = xtx_inv @ meat @ xtx_inv
        cov_type = "HC3"
    # a cell with leverage 1 (one observation pins its coefficient) leaves HC3 undefined: NaN, never a warning
    diag = np.diag(cov)
    se = np.sqrt(np.where(np.isfinite(diag) & (diag >= 0), diag, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = beta / se
    q = norm.ppf(0.975)
    terms = [str(t) for t in x_frame.columns]
    for old, new in rename.items():
        terms = [t.replace(old, new) for t in terms]
    return pd.DataFrame(
        {
            "model": model,
            "term": terms,
            "coef": beta,
            "se": se,
            "ci_low": beta - q * se,
            "ci_high": beta + q * se,
            "pval": 2 * norm.sf(np.abs(z)),
            "n_obs": int(n_obs),
            "kind": "OLS",
            "cov_type": cov_type,
        },
        columns=TIDY_COLUMNS,
    )


def _categorical(column: pd.Series) -> pd.Categorical:
    """A categorical with string categories (so that the baseline level can be named as a string)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cat = column.cat.rename_categories([str(c) for c in column.cat.categories])
        return pd.Categorical(cat)
    return pd.Categorical(column.astype(str))


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
