"""Refusal rates, gender gaps and Benjamini–Hochberg (:mod:`analysis.refusal`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import benjamini_hochberg, gender_gaps, refusal_rates, refusal_rates_by_factor, two_proportion_ztest


def test_refusal_rates_and_gender_gaps_with_bh():
    rows = []
    # category A: female 30/100 refuse, male 10/100; category B: female 20/50, male 18/50.
    for cat, sex, n, x in [
        ("A", "female", 100, 30),
        ("A", "male", 100, 10),
        ("B", "female", 50, 20),
        ("B", "male", 50, 18),
    ]:
        rows += [{"persona_category": cat, "persona_gender": sex, "refusal": int(i < x)} for i in range(n)]
    rows.append({"persona_category": "A", "persona_gender": "male", "refusal": np.nan})
    data = pd.DataFrame(rows).assign(model="m")
    rates = refusal_rates(data, ["persona_category", "persona_gender"]).set_index(
        ["persona_category", "persona_gender"]
    )
    assert rates.loc[("A", "female"), "rate"] == pytest.approx(0.3)
    assert rates.loc[("A", "male"), "n_unknown"] == 1 and rates.loc[("A", "male"), "n"] == 100
    # Wilson interval of 30/100: (0.2189, 0.3958).
    assert rates.loc[("A", "female"), "ci_low"] == pytest.approx(0.21886, abs=1e-4)
    assert rates.loc[("A", "female"), "ci_high"] == pytest.approx(0.39580, abs=1e-4)

    gaps = gender_gaps(data, by=["model", "persona_category"]).set_index("persona_category")
    from statsmodels.stats.proportion import proportions_ztest

    z_a, p_a = proportions_ztest([30, 10], [100, 100])
    z_b, p_b = proportions_ztest([20, 18], [50, 50])
    assert gaps.loc["A", "z"] == pytest.approx(z_a) and gaps.loc["A", "pval"] == pytest.approx(p_a)
    assert gaps.loc["B", "pval"] == pytest.approx(p_b)
    # BH with m = 2: the smaller p is doubled, the larger stays (monotone).
    assert gaps.loc["A", "pval_bh"] == pytest.approx(min(1, 2 * p_a))
    assert gaps.loc["B", "pval_bh"] == pytest.approx(p_b)
    assert bool(gaps.loc["A", "significant"]) and not bool(gaps.loc["B", "significant"])
    assert gaps.loc["A", "gap"] == pytest.approx(0.2)

    long = refusal_rates_by_factor(data, factors=("persona_gender", "persona_category"))
    assert set(long["factor"]) == {"persona_gender", "persona_category"}


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.5, 0.001, np.nan])
    ours = benjamini_hochberg(p)
    ref = multipletests(p[:-1], method="fdr_bh")[1]
    np.testing.assert_allclose(ours[:-1], ref)
    assert np.isnan(ours[-1])
    z, pval = two_proportion_ztest([0], [10], [0], [10])
    assert np.isnan(z[0]) and pval[0] == 1.0
