r"""Logistic regression on covariate patterns: maximum likelihood, Firth's penalized likelihood, separation.

Every regressor of the persona regressions is categorical, so the logit runs on covariate patterns :math:`p` with
:math:`n_p` trials and :math:`s_p` successes; the estimates equal those of the row-level fit.

Separation (Albert & Anderson 1984 [1]_)
    The maximum-likelihood estimate is infinite when a direction :math:`d` of the coefficients satisfies
    :math:`x_p'd \ge 0` for every pattern with only successes, :math:`\le 0` for every pattern with only
    failures and :math:`= 0` for every mixed pattern, with at least one strict inequality (complete or
    quasi-complete separation: a persona category, or a persona × target cell, where no generation was
    refused). :func:`separation` finds such directions by linear programming (Konis 2007 [2]_): maximize
    :math:`\sum_{\text{pure}} \pm x_p'd` over the box :math:`|d_j|\le 1`; repeated on the patterns not yet
    separated, the union of the directions names every pattern and coefficient involved.
Firth's penalized likelihood (Firth 1993 [3]_; Heinze & Schemper 2002 [4]_)
    :math:`\ell^*(\beta) = \ell(\beta) + \tfrac12\log|I(\beta)|` with :math:`I = X'WX`. Its maximum is finite
    under separation and removes the :math:`O(n^{-1})` bias of the MLE. Newton–Raphson on the modified score
    :math:`U^*_j = \sum_p x_{pj}\,(s_p - n_p\mu_p + h_p(\tfrac12 - \mu_p))`, with :math:`h_p` the pattern's
    total leverage :math:`w_p x_p'I^{-1}x_p`, step capped at 5 and halved until :math:`\ell^*` increases (the
    algorithm of R's ``logistf``). The errors are :math:`I(\hat\beta)^{-1/2}`; intervals and tests for the
    coefficients involved in the separation are profile penalized likelihood ones (the Wald interval is poor
    there): :math:`\{b: 2(\ell^*(\hat\beta) - \max_{\beta_j=b}\ell^*) \le \chi^2_{1,0.95}\}` and the penalized
    likelihood-ratio test of :math:`\beta_J = 0`, each maximized with the full model's penalty, as ``logistf``
    does. The tests check the estimates and intervals against ``logistf`` on its ``sex2`` data.

References
----------
.. [1] Albert, A. & Anderson, J. A. (1984). On the existence of maximum likelihood estimates in logistic
       regression models. *Biometrika* 71(1), 1–10.
.. [2] Konis, K. (2007). *Linear programming algorithms for detecting separated data in binary logistic
       regression models*. DPhil thesis, University of Oxford (R package ``safeBinaryRegression``).
.. [3] Firth, D. (1993). Bias reduction of maximum likelihood estimates. *Biometrika* 80(1), 27–38.
.. [4] Heinze, G. & Schemper, M. (2002). A solution to the problem of separation in logistic regression.
       *Statistics in Medicine* 21(16), 2409–2419.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LogitFit", "firth_logit", "logistic_fit", "penalized_lr_test", "profile_interval", "separation"]

_MAX_STEP = 5.0


@dataclass
class LogitFit:
    """A (penalized) maximum-likelihood logit on patterns."""

    beta: np.ndarray
    #: :math:`I(\hat\beta)^{-1}`
    cov: np.ndarray
    #: The log-likelihood (penalized when ``firth``).
    loglik: float
    mu: np.ndarray
    firth: bool
    converged: bool
    n_iter: int


def _loglik(x, s, n, beta, firth):
    eta = x @ beta
    ll = float(-(s * np.logaddexp(0, -eta)).sum() - ((n - s) * np.logaddexp(0, eta)).sum())
    mu = 1 / (1 + np.exp(-eta))
    w = n * mu * (1 - mu)
    info = x.T @ (x * w[:, None])
    if firth:
        sign, logdet = np.linalg.slogdet(info)
        ll += 0.5 * logdet if sign > 0 else -np.inf
    return ll, mu, w, info


def logistic_fit(
    x: np.ndarray,
    successes: np.ndarray,
    trials: np.ndarray,
    firth: bool = False,
    fixed: dict[int, float] | None = None,
    start: np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-10,
) -> LogitFit:
    """Fit the logit of ``successes`` out of ``trials`` on the pattern design ``x`` by Newton–Raphson.

    Args:
        x: One row per covariate pattern.
        successes, trials: Per pattern.
        firth: Maximize Firth's penalized likelihood instead of the likelihood.
        fixed: Coefficients held at given values (index → value); the others are maximized (with the full
            model's penalty), as for profile likelihood.
        start: Starting coefficients (zeros by default).
    """
    x = np.asarray(x, float)
    s = np.asarray(successes, float)
    n = np.asarray(trials, float)
    p = x.shape[1]
    beta = np.zeros(p) if start is None else np.array(start, float)
    free = np.ones(p, bool)
    for j, value in (fixed or {}).items():
        beta[j] = value
        free[j] = False
    ll, mu, w, info = _loglik(x, s, n, beta, firth)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        resid = s - n * mu
        if firth:
            inv = np.linalg.pinv(info)
            h = w * np.einsum("ij,jk,ik->i", x, inv, x)
            resid = resid + h * (0.5 - mu)
        score = x.T @ resid
        step = np.zeros(p)
        if free.any():
            step[free] = np.linalg.lstsq(info[np.ix_(free, free)], score[free], rcond=None)[0]
        biggest = np.abs(step).max(initial=0.0)
        if biggest > _MAX_STEP:
            step *= _MAX_STEP / biggest
        if biggest < tol and np.abs(score[free]).max(initial=0.0) < 1e-8 * max(1.0, n.sum()):
            converged = True
            break
        for _ in range(60):
            new = _loglik(x, s, n, beta + step, firth)
            if new[0] >= ll - 1e-12 * abs(ll):
                break
            step /= 2
        beta = beta + step
        ll, mu, w, info = new
        if np.abs(step).max(initial=0.0) < tol:
            converged = True
            break
    cov = np.linalg.pinv(info)
    return LogitFit(beta, cov, ll, mu, firth, converged, it)


def firth_logit(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> LogitFit:
    """Firth's penalized-likelihood logit of 0/1 ``y`` on the design ``x`` (rows, an intercept column included).

    Args:
        x: Design matrix (``n × p``).
        y: Outcomes, 0 or 1.
        weights: Frequency weights (counts of identical rows); ``None`` for one each.

    Returns:
        A :class:`LogitFit` whose ``beta`` and ``cov`` are the Firth estimates and :math:`I(\\hat\\beta)^{-1}`.

    Examples:
        >>> import numpy as np
        >>> x = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
        >>> fit = firth_logit(x, np.array([0, 0, 1, 1, 1, 1]))  # separated: the MLE of the slope is infinite
        >>> bool(np.isfinite(fit.beta).all())
        True
    """
    y = np.asarray(y, float)
    n = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    return logistic_fit(x, y * n, n, firth=True)


def profile_interval(
    x: np.ndarray, successes: np.ndarray, trials: np.ndarray, fit: LogitFit, j: int, level: float = 0.95
) -> tuple[float, float]:
    """The profile (penalized) likelihood interval of coefficient ``j``; an end not found within ±1000 SE is NaN."""
    from scipy.optimize import brentq
    from scipy.stats import chi2

    target = fit.loglik - chi2.ppf(level, 1) / 2
    se = float(np.sqrt(max(fit.cov[j, j], 1e-8)))
    cache: dict[str, np.ndarray] = {"start": fit.beta}

    def gap(b: float) -> float:
        sub = logistic_fit(x, successes, trials, fit.firth, fixed={j: b}, start=cache["start"])
        cache["start"] = sub.beta
        return sub.loglik - target

    ends = []
    for sign in (-1.0, 1.0):
        cache["start"] = fit.beta
        inner, step, outer = fit.beta[j], max(se, 0.1), None
        for _ in range(14):
            candidate = fit.beta[j] + sign * step
            if gap(candidate) < 0:
                outer = candidate
                break
            inner, step = candidate, step * 2
        if outer is None:
            ends.append(np.nan)
            continue
        cache["start"] = fit.beta
        ends.append(brentq(gap, min(inner, outer), max(inner, outer), xtol=1e-9, rtol=1e-12))
    return float(ends[0]), float(ends[1])


def penalized_lr_test(
    x: np.ndarray, successes: np.ndarray, trials: np.ndarray, fit: LogitFit, index: np.ndarray
) -> tuple[float, float]:
    """Likelihood-ratio test (penalized when ``fit.firth``) of ``β_index = 0``: ``(statistic, p-value)``."""
    from scipy.stats import chi2

    index = np.atleast_1d(index)
    start = fit.beta.copy()
    start[index] = 0.0
    sub = logistic_fit(x, successes, trials, fit.firth, fixed={int(j): 0.0 for j in index}, start=start)
    stat = max(0.0, 2 * (fit.loglik - sub.loglik))
    return stat, float(chi2.sf(stat, len(index)))


def separation(x: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patterns and coefficients involved in (quasi-)complete separation, by linear programming.

    Returns:
        ``(patterns, coefficients)``: boolean masks of the patterns whose fitted probability the MLE drives to 0
        or 1 and of the coefficients that diverge with them. Both are all ``False`` when the MLE exists.
    """
    from scipy.optimize import linprog

    x = np.asarray(x, float)
    s = np.asarray(successes, float)
    n = np.asarray(trials, float)
    sign = np.where(s >= n, 1.0, np.where(s <= 0, -1.0, 0.0))
    pure = sign != 0
    separated = np.zeros(len(x), bool)
    coefs = np.zeros(x.shape[1], bool)
    if not pure.any():
        return separated, coefs
    a_ub = -(sign[pure, None] * x[pure])
    mixed = ~pure
    a_eq = x[mixed] if mixed.any() else None
    b_eq = np.zeros(int(mixed.sum())) if mixed.any() else None
    scale = max(1.0, float(np.abs(x).max()))
    for _ in range(len(x)):
        todo = pure & ~separated
        if not todo.any():
            break
        c = -(sign[todo, None] * x[todo]).sum(axis=0)
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(len(a_ub)), A_eq=a_eq, b_eq=b_eq, bounds=(-1, 1), method="highs")
        if res.status != 0 or -res.fun <= 1e-7 * scale:
            break
        d = res.x
        hit = np.abs(x @ d) > 1e-7 * scale
        if not (hit & ~separated).any():
            break
        separated |= hit
        coefs |= np.abs(d) > 1e-7
    return separated, coefs
