"""CR2, Satterthwaite degrees of freedom and HTZ from sufficient statistics, against direct computations.

The direct versions below build the row-level matrices (:math:`H`, :math:`(I-H_{gg})^{-1/2}`, the working
covariance :math:`\\Phi`) and apply the definitions of Bell & McCaffrey (2002), Pustejovsky & Tipton (2018) and
Tipton & Pustejovsky (2015) literally; the package computes the same from per-cluster ``p × p`` algebra.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

from analysis.regression.robust import cr1_covariance, cr2, htz_test, working_rho


def _psd_power(a: np.ndarray, power: float) -> np.ndarray:
    lam, vec = np.linalg.eigh((a + a.T) / 2)
    keep = lam > 1e-8
    out = np.zeros_like(lam)
    out[keep] = lam[keep] ** power
    return (vec * out) @ vec.T


def _direct(x, e, clusters, rho):
    """Row-level CR2 covariance, Satterthwaite df per coefficient and a function for the HTZ eta."""
    m = np.linalg.inv(x.T @ x)
    n = len(x)
    resid_maker = np.eye(n) - x @ m @ x.T
    same = (clusters[:, None] == clusters[None, :]).astype(float)
    work = resid_maker @ (np.eye(n) + rho * same) @ resid_maker  # (I-H) Φ (I-H)
    idx = [np.flatnonzero(clusters == g) for g in np.unique(clusters)]
    adj = [_psd_power(np.eye(len(i)) - (x @ m @ x.T)[np.ix_(i, i)], -0.5) for i in idx]
    cov = m @ sum(x[i].T @ a @ np.outer(e[i], e[i]) @ a @ x[i] for i, a in zip(idx, adj, strict=True)) @ m

    def p_blocks(c):
        return [a @ x[i] @ m @ c.T for i, a in zip(idx, adj, strict=True)]

    def df(j):
        pg = [p[:, 0] for p in p_blocks(np.eye(x.shape[1])[[j]])]
        t = np.array([[pa @ work[np.ix_(ia, ib)] @ pb for pb, ib in zip(pg, idx, strict=True)]
                      for pa, ia in zip(pg, idx, strict=True)])  # fmt: skip
        return np.trace(t) ** 2 / (t**2).sum()

    def eta(index):
        pm = p_blocks(np.eye(x.shape[1])[index])
        omega = sum(p.T @ work[np.ix_(i, i)] @ p for p, i in zip(pm, idx, strict=True))
        a = [p @ _psd_power(omega, -0.5) for p in pm]
        total = 0.0
        for ag, ig in zip(a, idx, strict=True):
            for ah, ih in zip(a, idx, strict=True):
                k = ag.T @ work[np.ix_(ig, ih)] @ ah
                total += np.trace(k @ k) + np.trace(k) ** 2
        return len(index) * (len(index) + 1) / total

    return cov, np.array([df(j) for j in range(x.shape[1])]), eta


@pytest.fixture
def unbalanced():
    """A persona grid: categories with 1, 2 and 3 personas, baseline prompts as clusters, unequal repeats."""
    rng = np.random.default_rng(0)
    rows = []
    for cat, n_personas in (("none", 1), ("a", 3), ("b", 2), ("c", 1)):
        for i in range(n_personas):
            for t in range(3):
                for m in range(2):
                    rows += [(cat, f"{cat}{i}", t, m)] * int(rng.integers(1, 4))
    data = pd.DataFrame(rows, columns=["cat", "pid", "t", "m"])
    x = patsy.dmatrix("C(cat, Treatment('none')) + C(t) + C(m)", data, return_type="dataframe").to_numpy()
    base = "base" + data["t"].astype(str) + data["m"].astype(str)
    clusters = pd.factorize(np.where(data["cat"] == "none", base, data["pid"]))[0]
    return data, x, clusters, rng


@pytest.mark.parametrize("rho", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cr2_df_and_htz_equal_the_direct_row_level_computation(unbalanced, rho, weighted):
    data, x0, clusters, rng = unbalanced
    w = rng.uniform(0.1, 0.25, len(x0)) if weighted else np.ones(len(x0))  # logit working weights
    x = x0 * np.sqrt(w)[:, None]
    beta = np.linalg.lstsq(x, rng.normal(size=len(x)), rcond=None)[0]
    e = rng.normal(size=len(x)) - x @ beta
    e = e - x @ np.linalg.lstsq(x, e, rcond=None)[0]  # residuals orthogonal to the design
    cov, df, eta = _direct(x, e, clusters, rho)
    res = cr2(x0, w, np.sqrt(w) * e, clusters, np.linalg.inv(x.T @ x), rho=rho)
    np.testing.assert_allclose(res.cov, cov, atol=1e-14)
    identified = res.identified
    assert identified.tolist() == [True, True, True, False, True, True, True]  # c has one persona
    np.testing.assert_allclose(res.df[identified], df[identified], rtol=1e-10)
    assert np.isnan(res.df[~identified]).all()
    for index in ([4, 5], [1, 2], [2]):
        out = htz_test(res, beta, np.array(index))
        assert out.df_denom == pytest.approx(eta(index) - len(index) + 1, rel=1e-10)
    assert htz_test(res, beta, np.array([2])).statistic == pytest.approx((beta[2] / np.sqrt(res.cov[2, 2])) ** 2)
    assert np.isnan(htz_test(res, beta, np.array([1, 3])).pval)  # includes the one-persona category


def test_cells_give_the_same_answer_as_rows(unbalanced):
    """Aggregating rows into (cluster, pattern) cells, with types shared between clusters, changes nothing."""
    data, x, clusters, rng = unbalanced
    y = rng.normal(size=len(x))
    bread = np.linalg.inv(x.T @ x)
    e = y - x @ (bread @ x.T @ y)
    rows = cr2(x, np.ones(len(x)), e, clusters, bread, rho=0.2)
    pattern = pd.factorize(data[["cat", "t", "m"]].apply(tuple, axis=1))[0]
    frame = pd.DataFrame({"cluster": clusters, "pattern": pattern, "e": e})
    cells = frame.groupby(["cluster", "pattern"]).agg(n=("e", "size"), r=("e", "sum")).reset_index()
    x_pattern = np.zeros((frame["pattern"].max() + 1, x.shape[1]))
    x_pattern[frame["pattern"]] = x
    agg = cr2(x_pattern[cells["pattern"]], cells["n"].to_numpy(float), cells["r"].to_numpy(), cells["cluster"],
              bread, counts=cells["n"].to_numpy(float), rho=0.2, signature=cells["pattern"].to_numpy())  # fmt: skip
    np.testing.assert_allclose(agg.cov, rows.cov, atol=1e-14)
    np.testing.assert_allclose(agg.df, rows.df, rtol=1e-10)


def test_balanced_two_group_closed_forms():
    """m clusters per arm, a cluster-level treatment: CR2 is s1²/m + s2²/m of the cluster means, df = 2(m - 1)."""
    rng = np.random.default_rng(1)
    m, n = 4, 5
    g = np.repeat(np.arange(2 * m), n)
    x = np.column_stack([np.ones(len(g)), (g >= m).astype(float)])
    y = rng.normal(size=len(g)) + rng.normal(size=2 * m)[g]
    bread = np.linalg.inv(x.T @ x)
    e = y - x @ bread @ x.T @ y
    means = np.array([y[g == k].mean() for k in range(2 * m)])
    for rho in (0.0, 0.5):
        res = cr2(x, np.ones(len(g)), e, g, bread, rho=rho)
        assert res.cov[1, 1] == pytest.approx(means[:m].var(ddof=1) / m + means[m:].var(ddof=1) / m, rel=1e-12)
        assert res.df.tolist() == pytest.approx([m - 1, 2 * (m - 1)])
    cr1, n_clusters = cr1_covariance(x, np.ones(len(g)), e, g, bread, len(g))
    assert n_clusters == 2 * m
    scores = np.array([x[g == k].T @ e[g == k] for k in range(2 * m)])
    expected = 2 * m / (2 * m - 1) * (len(g) - 1) / (len(g) - 2) * bread @ scores.T @ scores @ bread
    np.testing.assert_allclose(cr1, expected, rtol=1e-12)


def test_working_rho_is_the_moment_estimate_of_the_intraclass_correlation():
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(400), 6)
    e = rng.normal(size=len(g)) + rng.normal(0, np.sqrt(0.5), 400)[g]  # ICC 1/3
    assert working_rho(g, np.ones(len(g)), e, e**2) == pytest.approx(1 / 3, abs=0.04)
    assert working_rho(np.arange(50), np.ones(50), rng.normal(size=50), np.ones(50)) == 0.0  # no pairs
    assert working_rho(g, np.ones(len(g)), rng.normal(size=len(g)), np.ones(len(g))) < 0.05
