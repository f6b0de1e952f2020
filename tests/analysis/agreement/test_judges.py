"""Spearman matrix, judge error correlation and the effective number of judges (:mod:`analysis.agreement.judges`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import judge_error_correlation, spearman_matrix
from tests.analysis.agreement.reference import long_from_matrix


def test_spearman_and_judge_errors():
    rng = np.random.default_rng(5)
    truth = rng.random(3000)
    shared = rng.normal(0, 0.2, 3000)
    y = np.stack(
        [truth + shared + rng.normal(0, 0.1, 3000), truth + shared + rng.normal(0, 0.1, 3000)]
        + [truth + rng.normal(0, 0.2, 3000) for _ in range(2)],
        axis=1,
    )
    data = long_from_matrix(y, "u", "r", "s")
    rho = spearman_matrix(data, "u", "r", "s")
    assert rho.shape == (4, 4) and np.allclose(np.diag(rho), 1)
    je = judge_error_correlation(data, "u", "r", "s")
    assert je.n_eff_null == 3
    # Judges 0 and 1 share an error component: their residuals correlate far above the -1/(k-1) baseline.
    assert je.correlation.iloc[0, 1] > 0.3 > je.correlation.iloc[2, 3]
    r = je.correlation.to_numpy()
    lam = np.linalg.eigvalsh(r)
    assert je.n_eff == pytest.approx(lam.sum() ** 2 / (lam**2).sum())
    with_truth = judge_error_correlation(data.assign(t=np.repeat(truth, 4)), "u", "r", "s", truth="t")
    assert with_truth.n_eff_null == 4 and with_truth.n_eff < 4
    assert len(je.summary()) == 4


def test_spearman_matches_pandas_with_missing_values():
    rng = np.random.default_rng(9)
    y = rng.random((400, 3))
    y[rng.random(y.shape) < 0.2] = np.nan
    data = long_from_matrix(y, "u", "r", "s")
    expected = pd.DataFrame(y).corr(method="spearman").to_numpy()
    np.testing.assert_allclose(spearman_matrix(data, "u", "r", "s").to_numpy(), expected, atol=1e-12)


def test_spearman_and_judge_errors_drop_and_count_rows_without_a_unit_id():
    rng = np.random.default_rng(10)
    y = rng.random((40, 1)) + rng.normal(0, 0.3, (40, 3))
    y[39, 0] = np.nan  # rater 0 never rated unit 39 ...
    data = long_from_matrix(y, "u", "r", "s").astype({"u": float})
    stray = pd.DataFrame({"u": [np.nan], "r": [2], "s": [50.0]})  # ... and a rating of rater 2 has no unit
    dirty = pd.concat([data, stray], ignore_index=True)
    rho = spearman_matrix(dirty, "u", "r", "s")
    np.testing.assert_allclose(rho.to_numpy(), spearman_matrix(data, "u", "r", "s").to_numpy(), atol=1e-12)
    assert rho.attrs["n_dropped_missing_id"] == 1
    je = judge_error_correlation(dirty, "u", "r", "s")
    ref = judge_error_correlation(data, "u", "r", "s")
    assert je.n_units == ref.n_units == 39 and je.n_eff == pytest.approx(ref.n_eff, abs=1e-12)
    assert je.n_dropped_missing_id == 1 and ref.n_dropped_missing_id == 0
