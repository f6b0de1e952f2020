"""Firth's penalized-likelihood logit and the detection of separation.

Reference values: R's ``logistf`` (Heinze & Ploner; the implementation of Heinze & Schemper 2002) on its
``sex2`` data (urinary tract infection in 239 women, Cytel's LogXact manual): coefficients, penalized
log-likelihood and profile penalized-likelihood 95% intervals, as printed by ``logistf`` and reproduced in the
``firthlogist`` test suite. ``dia`` is quasi-completely separated (every woman with ``dia = 1`` is a case): its
MLE is infinite, its Firth estimate 3.096. The likelihood-ratio tests, which ``logistf`` versions compute
differently, are checked against an independent maximization with scipy instead.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.special import gammaln

from analysis.regression import firth_logit
from analysis.regression.logistic import logistic_fit, penalized_lr_test, profile_interval, separation

#: sex2 as covariate patterns: age, oc, vic, vicl, vis, dia, cases, women.
SEX2 = [
    (0, 0, 0, 0, 1, 0, 1, 2),
    (0, 0, 1, 0, 0, 0, 14, 16),
    (0, 0, 1, 0, 1, 0, 3, 4),
    (0, 0, 1, 1, 0, 0, 10, 18),
    (0, 0, 1, 1, 1, 0, 12, 30),
    (0, 0, 1, 1, 1, 1, 1, 1),
    (0, 1, 0, 0, 0, 0, 44, 86),
    (0, 1, 0, 0, 0, 1, 3, 3),
    (0, 1, 0, 0, 1, 0, 0, 1),
    (0, 1, 1, 0, 0, 0, 15, 16),
    (0, 1, 1, 0, 0, 1, 1, 1),
    (0, 1, 1, 0, 1, 0, 2, 2),
    (0, 1, 1, 1, 0, 0, 7, 12),
    (0, 1, 1, 1, 1, 0, 3, 9),
    (1, 0, 1, 0, 0, 0, 2, 2),
    (1, 0, 1, 0, 1, 0, 1, 1),
    (1, 0, 1, 0, 1, 1, 1, 1),
    (1, 0, 1, 1, 0, 0, 1, 3),
    (1, 0, 1, 1, 1, 0, 0, 4),
    (1, 0, 1, 1, 1, 1, 1, 1),
    (1, 1, 0, 0, 0, 0, 5, 19),
    (1, 1, 0, 0, 1, 0, 0, 1),
    (1, 1, 1, 0, 0, 0, 3, 4),
    (1, 1, 1, 1, 1, 0, 0, 2),
]
LOGISTF_COEF = [0.12025405, -1.10598131, -0.06881673, 2.26887464, -2.11140817, -0.78831694, 3.09601166]
LOGISTF_CI = [
    (-0.8185591, 1.07315122),
    (-1.9737884, -0.30742514),
    (-0.9414363, 0.78920202),
    (1.2730216, 3.43543273),
    (-3.2608611, -1.11773495),
    (-1.6080879, 0.01518468),
    (0.7745682, 8.03029352),
]
LOGISTF_LOGLIK = -132.5394


@pytest.fixture
def sex2():
    table = np.array(SEX2, dtype=float)
    x = np.column_stack([np.ones(len(table)), table[:, :6]])
    return x, table[:, 6], table[:, 7]


def _penalized_loglik(beta, x, s, n):
    eta = x @ beta
    mu = 1 / (1 + np.exp(-eta))
    info = x.T @ (x * (n * mu * (1 - mu))[:, None])
    return (
        -(s * np.logaddexp(0, -eta)).sum() - ((n - s) * np.logaddexp(0, eta)).sum() + 0.5 * np.linalg.slogdet(info)[1]
    )


def _scipy_max(x, s, n, fixed=None):
    """Maximize the penalized log-likelihood with scipy (BFGS), optionally holding coefficients at 0."""
    free = np.ones(x.shape[1], bool)
    if fixed is not None:
        free[fixed] = False

    def neg(b):
        beta = np.zeros(x.shape[1])
        beta[free] = b
        return -_penalized_loglik(beta, x, s, n)

    res = minimize(neg, np.zeros(free.sum()), method="BFGS", options={"gtol": 1e-10})
    return -res.fun


def test_firth_matches_logistf_on_sex2(sex2):
    x, s, n = sex2
    fit = logistic_fit(x, s, n, firth=True)
    assert fit.converged
    np.testing.assert_allclose(fit.beta, LOGISTF_COEF, atol=5e-7)
    assert fit.loglik == pytest.approx(LOGISTF_LOGLIK, abs=5e-5)
    for j, (low, high) in enumerate(LOGISTF_CI):
        assert profile_interval(x, s, n, fit, j) == pytest.approx((low, high), abs=2e-6)


def test_firth_on_rows_equals_firth_on_patterns(sex2):
    x, s, n = sex2
    rows_x = np.repeat(x, n.astype(int), axis=0)
    y = np.concatenate([np.r_[np.ones(int(a)), np.zeros(int(b - a))] for a, b in zip(s, n, strict=True)])
    fit = firth_logit(rows_x, y)
    np.testing.assert_allclose(fit.beta, logistic_fit(x, s, n, firth=True).beta, atol=1e-9)


def test_penalized_likelihood_ratio_tests_against_scipy(sex2):
    x, s, n = sex2
    fit = logistic_fit(x, s, n, firth=True)
    assert fit.loglik == pytest.approx(_scipy_max(x, s, n), abs=1e-7)
    for j in (1, 3, 6):
        stat, p = penalized_lr_test(x, s, n, fit, np.array([j]))
        assert stat == pytest.approx(2 * (fit.loglik - _scipy_max(x, s, n, fixed=[j])), abs=1e-6)
        assert 0 < p < 0.01
    stat, _ = penalized_lr_test(x, s, n, fit, np.array([2, 5]))
    assert stat == pytest.approx(2 * (fit.loglik - _scipy_max(x, s, n, fixed=[2, 5])), abs=1e-6)


def test_separation_detection(sex2):
    x, s, n = sex2
    patterns, coefs = separation(x, s, n)
    assert coefs.tolist() == [False] * 6 + [True]  # dia
    assert patterns.tolist() == (x[:, 6] == 1).tolist()
    ok = s.copy()
    ok[np.flatnonzero(x[:, 6] == 1)[0]] -= 1  # one non-case with dia = 1: the MLE exists
    assert not separation(x, ok, n)[1].any()
    # complete separation: the outcome is the sign of a covariate
    t = np.arange(-5.0, 5.0)
    xc = np.column_stack([np.ones(10), t])
    assert separation(xc, (t > 0).astype(float), np.ones(10))[1].tolist() == [True, True]


def test_firth_on_complete_separation_is_finite_and_the_penalized_maximum():
    t = np.arange(-5.0, 5.0)
    x = np.column_stack([np.ones(10), t])
    y = (t > 0).astype(float)
    fit = firth_logit(x, y)
    assert np.isfinite(fit.beta).all() and fit.converged
    assert fit.loglik == pytest.approx(_scipy_max(x, y, np.ones(10)), abs=1e-8)
    low, high = profile_interval(x, y, np.ones(10), fit, 1)
    assert 0 < low < fit.beta[1] < high < np.inf


def test_maximum_likelihood_matches_statsmodels(sex2):
    x, s, n = sex2
    keep = x[:, 6] == 0  # without the separated dia patterns, and without the dia column
    xs, ss, ns = x[keep][:, :6], s[keep], n[keep]
    fit = logistic_fit(xs, ss, ns)
    ref = sm.GLM(np.column_stack([ss, ns - ss]), xs, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(fit.beta, ref.params, atol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), ref.bse, rtol=1e-6)  # statsmodels stops at 1e-8
    log_binom = gammaln(ns + 1) - gammaln(ss + 1) - gammaln(ns - ss + 1)
    assert fit.loglik == pytest.approx(ref.llf - log_binom.sum(), abs=1e-8)
