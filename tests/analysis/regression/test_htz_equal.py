"""The HTZ test's faster pair sums equal the code they replaced, to roundoff (``rtol`` 1e-10).

``old_htz_test`` and ``_old_htz_sums`` below are a verbatim copy of ``analysis.regression.robust`` before the
low-rank pair sums (only renamed); ``benchmarks/bench_htz.py`` times them against the current code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

import analysis.regression.blocks as blocks
from analysis.regression import interaction_tests
from analysis.regression.robust import MAX_FLOPS, CR2Result, HTZResult, _htz_sums, _Type, cr2, htz_test
from tests.analysis.regression.simulate import grid, outcomes

RTOL = 1e-10


# --- verbatim copy of the old implementation (names prefixed "old") -------------------------------------------


def _old_htz_sums(types: list[_Type], m: np.ndarray, ls: np.ndarray, rho: float, full: bool):
    r"""The pieces of :math:`K = L'P'(I-H)\Phi(I-H)PL` for the columns ``ls``, pooled over cluster types.

    :math:`K_{gh} = \delta_{gh}D_g - O_{gh}` with :math:`D_g = L'F_gL + \rho\alpha_g\alpha_g'` and
    :math:`O_{gh} = B_g'A_h + \rho(\alpha_g\beta_{gh}' + \beta_{hg}\alpha_h') - \rho B_g'\mathcal Z B_h`, where
    :math:`A_g = \tilde X_g'A_g\tilde X_gL`, :math:`B_g = MA_g`, :math:`\alpha_g = L'\tilde X_g'A_g1`,
    :math:`\beta_{kg} = B_g'z_k` and :math:`\mathcal Z = \sum_k z_kz_k'`. Returns ``(mult, D, O_gg)`` and, when
    ``full``, :math:`\sum_{g,h}[\operatorname{tr}(O_{gh}^2) + (\operatorname{tr}O_{gh})^2]` accumulated over
    row chunks (the ``(Tq)²`` matrix is never held at once).
    """
    mult = np.array([ty.count for ty in types], dtype=float)
    n_types, q = len(types), ls.shape[1]
    a_blocks = np.stack([ty.e(ls) for ty in types])  # (T, p, q)
    b_blocks = np.einsum("kl,tlq->tkq", m, a_blocks)
    d = np.stack([ls.T @ ty.f(ls) for ty in types])
    b2 = b_blocks.transpose(0, 2, 1).reshape(n_types * q, -1)  # rows (t, q)
    a2 = a_blocks.transpose(1, 0, 2).reshape(-1, n_types * q)  # columns (u, r)
    if rho > 0:
        z = np.stack([ty.z for ty in types])  # (T, p)
        zz = z.T @ (mult[:, None] * z)
        alpha = np.stack([ls.T @ ty.zeta for ty in types])  # (T, q)
        beta = (z @ b_blocks.transpose(1, 0, 2).reshape(-1, n_types * q)).reshape(n_types, n_types, q)  # B_g'z_k
        d = d + rho * np.einsum("tq,tr->tqr", alpha, alpha)
    if not full:  # the diagonal blocks alone: O_gg without the (Tq)² products
        o_self = np.einsum("tkq,tkr->tqr", b_blocks, a_blocks)
        if rho > 0:
            o_self -= rho * np.einsum("tkq,kl,tlr->tqr", b_blocks, zz, b_blocks, optimize=True)
            bd = beta[np.arange(n_types), np.arange(n_types)]  # beta_gg
            o_self += rho * (alpha[:, :, None] * bd[:, None, :] + bd[:, :, None] * alpha[:, None, :])
        return mult, d, o_self, 0.0
    if rho > 0:
        a2 = a2 - rho * (zz @ b2.T)  # folds -rho B_g' Z B_h into the one product per chunk
    chunk = max(1, int(4e6 // max(1, n_types * q * q)))
    o_self = np.empty((n_types, q, q))
    total = 0.0
    for start in range(0, n_types, chunk):
        ts = np.arange(start, min(n_types, start + chunk))
        rows = b2.reshape(n_types, q, -1)[ts].reshape(len(ts) * q, -1)
        o = (rows @ a2).reshape(len(ts), q, n_types, q).transpose(0, 2, 1, 3)  # (t, u, q, r)
        if rho > 0:
            o = o + rho * (alpha[ts][:, None, :, None] * beta[ts][:, :, None, :])
            o = o + rho * (beta[:, ts].transpose(1, 0, 2)[:, :, :, None] * alpha[None, :, None, :])
        o_self[ts] = o[np.arange(len(ts)), ts]
        trsq = np.einsum("tuqr,turq->tu", o, o)
        tr = np.einsum("tuqq->tu", o)
        total += float(mult[ts] @ (trsq + tr**2) @ mult)
    return mult, d, o_self, total


def old_htz_test(result: CR2Result, beta: np.ndarray, index: np.ndarray) -> HTZResult:
    """The HTZ small-sample Wald test that the coefficients ``index`` are all zero.

    Uses the working model of ``result.rho``. Refused (NaN with a note) when a coefficient of the block is not
    identified by the clusters, when the block's covariance is singular (more coefficients than the clusters can
    inform), when :math:`\\eta - q + 1 < 1`, or when the computation would exceed :data:`MAX_FLOPS`.
    """
    from scipy.stats import f as f_dist

    index = np.asarray(index)
    q = len(index)
    nan = HTZResult(np.nan, q, np.nan, np.nan, np.nan)
    if q == 0:
        nan.note = "no estimable coefficient in this block"
        return nan
    if not result.identified[index].all():
        nan.note = "a coefficient's variance rests on a single cluster (e.g. a category with one persona): no test"
        return nan
    m, types = result.bread, result.types
    p, n_types = m.shape[0], len(types)
    if (n_types * q) ** 2 * 2 * p > MAX_FLOPS:
        nan.note = f"too large for the small-sample test ({q} coefficients, {n_types} cluster types)"
        return nan
    v = result.cov[np.ix_(index, index)]
    lam_v = np.linalg.eigvalsh((v + v.T) / 2)
    mult, d, o_self, _ = _old_htz_sums(types, m, m[:, index], result.rho, full=False)
    omega = (mult[:, None, None] * (d - o_self)).sum(axis=0)  # E[V_JJ] under the working model
    lam, vec = np.linalg.eigh((omega + omega.T) / 2)
    if lam.min() <= 1e-10 * max(lam.max(), 1e-300) or lam_v.min() <= 1e-12 * max(lam_v.max(), 1e-300):
        nan.note = f"its {q} coefficients are more than the clusters can inform (singular covariance)"
        return nan
    mult, d, o_self, off = _old_htz_sums(types, m, m[:, index] @ (vec / np.sqrt(lam)) @ vec.T, result.rho, full=True)
    k_self = d - o_self

    def trsq(x):
        return np.einsum("...qr,...rq->...", x, x)

    def tr(x):
        return np.einsum("...qq->...", x)

    total = (mult * (trsq(k_self) + tr(k_self) ** 2 - trsq(o_self) - tr(o_self) ** 2)).sum() + off
    eta = q * (q + 1) / total if total > 0 else np.nan
    beta_j = np.asarray(beta, float)[index]
    wald = float(beta_j @ np.linalg.solve(v, beta_j))
    if not np.isfinite(eta) or eta - q + 1 < 1:
        out = HTZResult(np.nan, q, float(eta - q + 1) if np.isfinite(eta) else np.nan, np.nan, wald)
        out.note = f"too few clusters for a {q}-coefficient test (HTZ degrees of freedom {eta - q + 1:.2g} < 1)"
        return out
    stat = (eta - q + 1) / (eta * q) * wald
    return HTZResult(float(stat), q, float(eta - q + 1), float(f_dist.sf(stat, q, eta - q + 1)), wald)


# --- the tests ----------------------------------------------------------------------------------------------------
def _assert_same(new: HTZResult, old: HTZResult) -> None:
    assert new.note == old.note and new.df == old.df
    for name in ("statistic", "df_denom", "pval", "wald"):
        a, b = getattr(new, name), getattr(old, name)
        assert np.isnan(a) == np.isnan(b), name
        if not np.isnan(b):
            assert a == pytest.approx(b, rel=RTOL, abs=1e-300), name


def _cells(seed: int, weighted: bool):
    """Cells of a persona grid: categories of 1 (``c``), 2, 3 and 4 personas, baseline prompt clusters, unequal
    repeats (so clusters of one category have different weights: several cluster types per category)."""
    rng = np.random.default_rng(seed)
    rows = []
    for cat, n_personas in (("none", 1), ("a", 4), ("b", 3), ("c", 1), ("d", 2)):
        for i in range(n_personas):
            for t in range(4):
                for m in range(3):
                    rows.append((cat, f"{cat}{i}", t, m, int(rng.integers(1, 4)) if i % 2 else 2))
    data = pd.DataFrame(rows, columns=["cat", "pid", "t", "m", "n"])
    x = patsy.dmatrix("C(cat, Treatment('none')) * C(t) + C(m)", data, return_type="dataframe").to_numpy()
    n = data["n"].to_numpy(float)
    base = "base" + data["t"].astype(str) + data["m"].astype(str)
    clusters = pd.factorize(np.where(data["cat"] == "none", base, data["pid"]))[0]
    signature = pd.factorize(data["t"].astype(str) + data["m"].astype(str) + data["cat"])[0]
    a = n * (rng.uniform(0.1, 0.25, signature.max() + 1)[signature] if weighted else 1.0)  # logit working weights
    bread = np.linalg.inv(x.T @ (x * a[:, None]))
    beta = rng.normal(size=x.shape[1])
    r = rng.normal(size=len(x)) * np.sqrt(a)
    return x, a, r, n, clusters, signature, bread, beta


@pytest.mark.parametrize("rho", [0.0, 0.35])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_htz_equals_the_old_code_on_cell_designs(rho, weighted, seed):
    x, a, r, n, clusters, signature, bread, beta = _cells(seed, weighted)
    res = cr2(x, a, r, clusters, bread, counts=n, rho=rho, signature=signature, with_df=False)
    assert len(res.types) < res.n_clusters and not res.identified.all()  # shared types; category c: one persona
    ok = np.flatnonzero(res.identified)
    inter = ok[ok >= 8]  # the identified category × target terms: more than a persona cluster's rank (6)
    blocks_ = [[1, 2], [1, 2, 4], [5, 6, 7], inter, inter[:3], ok[1:], [3], [3, 4]]
    tested = 0
    for index in blocks_:
        new = htz_test(res, beta, np.array(index))
        tested += np.isfinite(new.statistic)
        _assert_same(new, old_htz_test(res, beta, np.array(index)))
    assert tested >= 3
    for index in blocks_:
        _assert_same(htz_test(res, beta, np.array(index)), old_htz_test(res, beta, np.array(index)))
    ls = bread[:, 5:]  # the sums themselves, full and diagonal only, on an arbitrary L
    for full in (False, True):
        new, old = _htz_sums(res.types, bread, ls, rho, full), _old_htz_sums(res.types, bread, ls, rho, full)
        for u, v in zip(new, old, strict=True):
            np.testing.assert_allclose(u, v, rtol=RTOL, atol=1e-13 * np.abs(v).max())


def test_htz_equals_the_old_code_when_every_cluster_is_its_own_type():
    x, a, r, n, clusters, _, bread, beta = _cells(2, True)
    res = cr2(x, a, r, clusters, bread, counts=n, rho=0.2, with_df=False)  # signature None: cells are unique
    ok = np.flatnonzero(res.identified)
    for index in ([1, 2], [5, 6, 7], ok[ok >= 8], ok[1:]):
        _assert_same(htz_test(res, beta, np.array(index)), old_htz_test(res, beta, np.array(index)))


def _grid_data(kind: str, seed: int) -> pd.DataFrame:
    """A persona grid with unequal categories (one of a single persona), unequal cluster sizes, a template style
    shared by two templates, and a persona × template cell left empty (an aliased interaction term)."""
    personas = {"a0": "a", "a1": "a", "a2": "a", "b0": "b", "b1": "b", "c0": "c", "d0": "d", "d1": "d", "d2": "d"}
    data = grid(personas, targets=4, templates=3, repeats=3)
    rng = np.random.default_rng(seed)
    data = data.iloc[np.sort(rng.choice(len(data), int(0.85 * len(data)), replace=False))]
    data = data[~((data["persona_category"] == "b") & (data["template_id"] == "m2"))].reset_index(drop=True)
    data["template_style"] = data["template_id"].map({"m0": "s0", "m1": "s0", "m2": "s1"})
    outcome = "toxicity" if kind == "ols" else "refusal"
    return data.assign(**{outcome: outcomes(data, rng, kind, 0.5, sd_slope=0.3)})


@pytest.mark.parametrize("kind", ["ols", "logit"])
def test_interaction_tests_equal_the_old_code(kind, monkeypatch):
    data = _grid_data(kind, 5)
    outcome = "toxicity" if kind == "ols" else "refusal"
    kwargs = dict(fixed_personas=None, min_clusters=2)
    new = interaction_tests(data, outcome, kind, **kwargs)
    monkeypatch.setattr(blocks, "htz_test", old_htz_test)
    old = interaction_tests(data, outcome, kind, **kwargs)
    assert (new["test"] == "HTZ Wald F (CR2)").sum() >= 3
    assert new["note"].str.contains("aliased").any()
    pd.testing.assert_frame_equal(new, old, rtol=RTOL, atol=0)
