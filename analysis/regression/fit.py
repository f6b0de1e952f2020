"""Fitting one persona regression: the estimates, their covariance and what the tests need (:class:`FittedModel`).

The method (cells, CR2 on persona clusters, Firth under separation, aliasing) is described in the package
docstring (:mod:`analysis.regression`); the tidy tables are built from a :class:`FittedModel` by
:mod:`analysis.regression.coefficients` and :mod:`analysis.regression.blocks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from analysis.frames import require_columns
from analysis.regression.design import DegenerateDataError, Design, build_design
from analysis.regression.logistic import LogitFit, logistic_fit, separation
from analysis.regression.robust import CR2Result, cr1_covariance, cr2, hc3_covariance, working_rho

__all__ = ["P_FLOOR", "PROMPT_COLUMNS", "CovType", "FittedModel", "fit_model", "kept_names", "pvalue_floor"]

#: Columns that identify the prompt of a baseline generation (its cluster), where present.
PROMPT_COLUMNS = ("target_id", "template_id", "language")
#: The smallest p-value reported; a smaller one is shown as this bound, with a note.
P_FLOOR = 1e-300
CovType = Literal["auto", "CR2", "CR1", "HC3", "model"]


@dataclass
class FittedModel:
    """One fitted persona regression: the design, the estimates of its kept columns and their inference."""

    design: Design
    kind: str
    cov_type: str
    beta: np.ndarray
    cov: np.ndarray
    #: Degrees of freedom of each coefficient's t (``inf`` for the normal, NaN where there is none).
    df: np.ndarray
    #: Whether each coefficient's variance can be estimated (not carried by a single cluster).
    identified: np.ndarray
    n_obs: int
    n_clusters: int
    model: str | None
    robust: CR2Result | None = None
    logit: LogitFit | None = None
    #: Pattern design (kept columns), successes and trials: what the likelihood-ratio tests refit.
    pattern_x: np.ndarray | None = None
    pattern_s: np.ndarray | None = None
    pattern_n: np.ndarray | None = None
    #: Coefficients involved in a separation (Firth fits).
    separated: np.ndarray | None = None
    #: Residual degrees of freedom and variance (OLS).
    df_resid: float = np.inf
    sigma2: float = 1.0
    #: :math:`(X'WX)^{-1}` (the model-based covariance, times ``sigma2`` for OLS).
    bread: np.ndarray | None = None
    #: Fewer personas than this get a note on every persona term.
    min_clusters: int = 20
    #: Compute profile intervals for separated coefficients.
    profiles: bool = True
    #: Notes for every coefficient of the model.
    model_notes: list[str] = field(default_factory=list)

    @property
    def kept_names(self) -> list[str]:
        return [n for n, k in zip(self.design.names, self.design.keep, strict=True) if k]


def pvalue_floor(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p-values floored at :data:`P_FLOOR` (never exactly 0) and which were floored."""
    p = np.asarray(p, float)
    low = np.isfinite(p) & (p < P_FLOOR)
    return np.where(low, P_FLOOR, p), low


def fit_model(
    data: pd.DataFrame,
    outcome: str,
    kind: Literal["logit", "ols"],
    persona: str = "persona_category",
    target: str = "target_category",
    template: str = "template_id",
    baseline: str = "none",
    interactions: tuple[str, ...] = (),
    cluster: str | None = "persona_id",
    prompt: tuple[str, ...] = PROMPT_COLUMNS,
    aggregate: bool = True,
    cov_type: CovType = "auto",
    firth: bool | Literal["auto"] = "auto",
    min_clusters: int = 20,
    model: str | None = None,
    profiles: bool = True,
    with_df: bool = True,
) -> FittedModel:
    """Fit one persona regression; the arguments are those of :func:`~analysis.regression.fit_persona_model`.

    ``profiles=False`` skips the profile intervals of separated coefficients and ``with_df=False`` the
    per-coefficient Satterthwaite degrees of freedom (what the block tests do not need).
    """
    if kind not in ("logit", "ols"):
        raise ValueError(f"kind must be 'logit' or 'ols', got {kind!r}")
    require_columns(data, [outcome, persona, target, template])
    label = f"model {model!r}" if model is not None else "the data"
    use_cluster = cluster is not None and cluster in data.columns
    if cov_type == "auto":
        cov_type = "CR2" if use_cluster else ("HC3" if kind == "ols" else "model")
    if cov_type not in ("CR2", "CR1", "HC3", "model"):
        raise ValueError(f"cov_type must be 'auto', 'CR2', 'CR1', 'HC3' or 'model', got {cov_type!r}")
    if cov_type in ("CR2", "CR1") and not use_cluster:
        raise ValueError(f"cov_type={cov_type!r} needs a cluster column; {cluster!r} is not in the data")
    if cov_type == "HC3" and kind == "logit":
        raise ValueError("HC3 is for OLS; use cov_type='CR2' (clustered) or 'model' for the logit")
    if kind == "logit":
        values = pd.to_numeric(data[outcome], errors="raise").dropna().unique()
        if not set(np.asarray(values, float)) <= {0.0, 1.0}:
            raise ValueError(f"{label}: {outcome!r} must be 0/1 for a logit")
    unknown = sorted(set(interactions) - {"target", "template"})
    if unknown:
        raise ValueError(f"interactions are with 'target' and/or 'template', got {unknown}")
    inter = tuple(dict.fromkeys(interactions))
    design = build_design(
        data,
        outcome,
        persona,
        target,
        template,
        baseline,
        inter,
        cluster if cov_type in ("CR2", "CR1") else None,
        prompt,
        aggregate,
        label,
    )
    cells = design.cells
    x_pat = design.x[:, design.keep]
    xc = x_pat[cells["pattern"].to_numpy()]
    n, s = cells["n"].to_numpy(), cells["s"].to_numpy()
    n_obs, n_par = float(n.sum()), x_pat.shape[1]
    if n_obs <= n_par:
        raise DegenerateDataError(f"{label}: {int(n_obs)} observations for {n_par} parameters; no errors to estimate")
    n_patterns = len(design.patterns)
    s_pat = np.bincount(cells["pattern"], weights=s, minlength=n_patterns)
    n_pat = np.bincount(cells["pattern"], weights=n, minlength=n_patterns)
    fitted = FittedModel(
        design, kind, cov_type, np.zeros(n_par), np.zeros((n_par, n_par)), np.full(n_par, np.inf),
        np.ones(n_par, bool), int(n_obs), 0, model, pattern_x=x_pat, pattern_s=s_pat, pattern_n=n_pat,
    )  # fmt: skip
    if kind == "ols":
        xtx = xc.T @ (xc * n[:, None])
        bread = np.linalg.inv(xtx)
        beta = bread @ (xc.T @ s)
        yhat = xc @ beta
        a, r = n, s - n * yhat
        rss = cells["q"].to_numpy() - 2 * yhat * s + n * yhat**2
        e_sum, e_sq = r, rss
        fitted.df_resid = n_obs - n_par
        fitted.sigma2 = float(rss.sum() / fitted.df_resid)
    else:
        _, sep_coefs = separation(x_pat, s_pat, n_pat)
        if sep_coefs.any() and firth is False:
            terms = kept_names(fitted, sep_coefs)
            raise DegenerateDataError(
                f"{label}: perfect separation in the logit (terms {terms}): the MLE is infinite; use firth='auto'"
            )
        use_firth = firth is True or bool(sep_coefs.any())
        fit = logistic_fit(x_pat, s_pat, n_pat, firth=use_firth)
        fitted.logit, fitted.separated = fit, sep_coefs
        if sep_coefs.any():
            fitted.model_notes.append("Firth penalized likelihood (the logit is separated)")
        elif use_firth:
            fitted.model_notes.append("Firth penalized likelihood fit")
        if not fit.converged:
            fitted.model_notes.append("the logit did not converge: estimates are approximate")
        bread, beta = fit.cov, fit.beta
        mu = fit.mu[cells["pattern"].to_numpy()]
        a, r = n * mu * (1 - mu), s - n * mu
        rss = None
        var = mu * (1 - mu)
        e_sum, e_sq = r / np.sqrt(var), (s * (1 - mu) ** 2 + (n - s) * mu**2) / var
    fitted.beta = beta
    clusters = cells["cluster"].to_numpy()
    if cov_type == "CR2":
        rho = working_rho(clusters, n, e_sum, e_sq)
        fitted.robust = cr2(
            xc, a, r, clusters, bread, counts=n, rho=rho, signature=cells["pattern"].to_numpy(), with_df=with_df
        )
        fitted.cov, fitted.df, fitted.identified = fitted.robust.cov, fitted.robust.df, fitted.robust.identified
        fitted.n_clusters = fitted.robust.n_clusters
        if fitted.robust.df_refused:
            fitted.model_notes.append("too large for Satterthwaite degrees of freedom: no p-values or intervals")
    elif cov_type == "CR1":
        fitted.cov, g = cr1_covariance(xc, a, r, clusters, bread, n_obs)
        fitted.df, fitted.n_clusters = np.full(n_par, g - 1.0), g
        check = cr2(xc, a, r, clusters, bread, signature=cells["pattern"].to_numpy(), with_df=False)
        fitted.robust, fitted.identified = check, check.identified
    elif cov_type == "HC3":
        rss_pat = np.bincount(cells["pattern"], weights=rss, minlength=n_patterns)
        fitted.cov = hc3_covariance(x_pat, n_pat, rss_pat, bread)
    elif kind == "ols":
        fitted.cov = fitted.sigma2 * bread
        fitted.df = np.full(n_par, fitted.df_resid)
    else:
        fitted.cov = bread
    fitted.bread, fitted.min_clusters, fitted.profiles = bread, min_clusters, profiles
    return fitted


def kept_names(fitted: FittedModel, mask: np.ndarray) -> str:
    """The names of the kept columns in ``mask``, at most four and a count."""
    names = [n for n, m in zip(fitted.kept_names, mask, strict=True) if m]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
