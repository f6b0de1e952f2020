"""Refusal rates, gender gaps, refusal against the baseline and Benjamini–Hochberg (:mod:`analysis.refusal`).

The persona-level tests are checked against scipy's Welch test and by simulation: under no true effect (personas
with random propensities, many generations each) they reject at about the nominal 5%, where the
generation-level z-test rejects most of the time; with an effect they find it and cover it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import benjamini_hochberg, gender_gaps, refusal_rates, refusal_rates_by_factor, two_proportion_ztest
from analysis.refusal import persona_refusal_rates, refusal_vs_baseline, welch_test

#: 400 simulated datasets at alpha 0.05: an exact binomial 99.9% band for the rejection rate is about 0.022–0.087.
N_SIM = 400
NULL_BAND = (0.02, 0.09)


def test_refusal_rates_and_unclustered_gender_gaps_with_bh():
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

    # No persona_id column: the generation-level z-test, and a note saying what that assumes.
    gaps = gender_gaps(data, by=["model", "persona_category"]).set_index("persona_category")
    from statsmodels.stats.proportion import proportions_ztest

    z_a, p_a = proportions_ztest([30, 10], [100, 100])
    z_b, p_b = proportions_ztest([20, 18], [50, 50])
    assert (gaps["test"] == "two_proportion_z").all()
    assert gaps.loc["A", "statistic"] == pytest.approx(z_a) and gaps.loc["A", "pval"] == pytest.approx(p_a)
    assert gaps.loc["B", "pval"] == pytest.approx(p_b)
    assert "treated as independent" in gaps.loc["A", "note"]
    # BH with m = 2: the smaller p is doubled, the larger stays (monotone).
    assert gaps.loc["A", "pval_bh"] == pytest.approx(min(1, 2 * p_a))
    assert gaps.loc["B", "pval_bh"] == pytest.approx(p_b)
    assert bool(gaps.loc["A", "significant"]) and not bool(gaps.loc["B", "significant"])
    assert gaps.loc["A", "gap"] == pytest.approx(0.2)
    se = np.sqrt(0.3 * 0.7 / 100 + 0.1 * 0.9 / 100)  # Wald interval of the difference
    assert gaps.loc["A", "ci_low"] == pytest.approx(0.2 - 1.959964 * se, abs=1e-6)

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


def test_welch_test_matches_scipy():
    a = np.array([0.2, 0.35, 0.1, 0.5, 0.3])
    b = np.array([0.05, 0.1, 0.2, 0.15, 0.0, 0.1, 0.12])
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    t, df, p, lo, hi = welch_test(
        a.mean() - b.mean(), a.var(ddof=1) / len(a), len(a) - 1, b.var(ddof=1) / len(b), len(b) - 1
    )
    assert t == pytest.approx(ref.statistic, rel=1e-12) and df == pytest.approx(ref.df, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)
    assert (lo, hi) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))
    # A standard error of 0 gives no test at all, not p = 0.
    t, df, p, lo, hi = welch_test(0.3, 0.0, 4, 0.0, 4)
    assert np.isnan([t, df, p, lo, hi]).all()


def _personas(rates: dict[str, list[float]], n: int = 20, model: str = "m") -> pd.DataFrame:
    """``n`` generations per persona, the first ``round(rate · n)`` of them refused."""
    rows = []
    for gender, values in rates.items():
        for i, rate in enumerate(values):
            pid = f"{gender}-{i}"
            refused = int(round(rate * n))
            rows += [{"model": model, "persona_id": pid, "persona_gender": gender, "refusal": int(j < refused)}
                     for j in range(n)]  # fmt: skip
    return pd.DataFrame(rows)


def test_gender_gap_is_tested_over_personas():
    rates = {"female": [0.2, 0.4, 0.6, 0.3, 0.5], "male": [0.1, 0.3, 0.2, 0.0, 0.15, 0.25]}
    data = _personas(rates)
    gap = gender_gaps(data, by="model").iloc[0]
    ref = stats.ttest_ind(rates["female"], rates["male"], equal_var=False)
    assert gap["test"] == "welch_t_personas"
    assert (gap["n_personas_a"], gap["n_personas_b"], gap["n_a"], gap["n_b"]) == (5, 6, 100, 120)
    assert gap["rate_a"] == pytest.approx(0.4) and gap["gap"] == pytest.approx(0.4 - np.mean(rates["male"]))
    assert gap["statistic"] == pytest.approx(ref.statistic) and gap["pval"] == pytest.approx(ref.pvalue)
    assert gap["ci_low"] == pytest.approx(ref.confidence_interval().low)
    assert gap["note"] == ""
    summary = persona_refusal_rates(data, "persona_gender").set_index("persona_gender")
    assert summary.loc["male", "persona_var"] == pytest.approx(np.var(rates["male"], ddof=1))


def test_too_few_personas_and_no_variation_are_noted_not_tested():
    one_each = gender_gaps(_personas({"female": [0.9], "male": [0.1]}), by="model").iloc[0]
    assert np.isnan(one_each["pval"]) and not one_each["significant"]
    assert "fewer than 2 personas" in one_each["note"] and one_each["gap"] == pytest.approx(0.8)
    # Every female persona always refuses and no male one does: SE 0, so no p of exactly 0 is reported.
    split = gender_gaps(_personas({"female": [1.0, 1.0, 1.0], "male": [0.0, 0.0, 0.0]}), by="model").iloc[0]
    assert np.isnan(split["pval"]) and np.isnan(split["ci_low"]) and "no variation" in split["note"]
    few = gender_gaps(_personas({"female": [0.1, 0.3], "male": [0.2, 0.4, 0.3]}), by="model").iloc[0]
    assert np.isfinite(few["pval"]) and "little power" in few["note"]


def _simulate(rng: np.random.Generator, a: tuple[float, float], b: tuple[float, float], n_gen: int = 40):
    """19 female personas with Beta(a) propensities and 23 male with Beta(b), ``n_gen`` generations each."""
    p = np.r_[rng.beta(*a, 19), rng.beta(*b, 23)]
    k = len(p)
    return pd.DataFrame(
        {
            "model": "m",
            "persona_id": np.repeat(np.arange(k), n_gen),
            "persona_gender": np.repeat(np.array(["female"] * 19 + ["male"] * 23), n_gen),
            "refusal": rng.binomial(1, np.repeat(p, n_gen)),
        }
    )


def test_no_gender_effect_rejects_at_the_nominal_level():
    rng = np.random.default_rng(13)
    clustered = generations = 0
    for _ in range(N_SIM):
        data = _simulate(rng, (2, 8), (2, 8))
        clustered += gender_gaps(data, by="model").loc[0, "pval"] < 0.05
        x = data.groupby("persona_gender")["refusal"].agg(["sum", "size"])
        _, p = two_proportion_ztest(x.loc["female", "sum"], x.loc["female", "size"], x.loc["male", "sum"],
                                    x.loc["male", "size"])  # fmt: skip
        generations += p < 0.05
    assert NULL_BAND[0] <= clustered / N_SIM <= NULL_BAND[1], clustered / N_SIM
    # The old generation-level z-test finds a "gap" in a large share of datasets that have none.
    assert generations / N_SIM > 0.3, generations / N_SIM


def test_a_gender_effect_is_found_and_covered():
    rng = np.random.default_rng(7)
    rejected = covered = 0
    for _ in range(N_SIM):
        gap = gender_gaps(_simulate(rng, (3, 7), (2, 8)), by="model").iloc[0]  # mean propensities 0.3 vs 0.2
        rejected += gap["pval"] < 0.05
        covered += gap["ci_low"] <= 0.1 <= gap["ci_high"]
    assert rejected / N_SIM > 0.4, rejected / N_SIM
    assert 0.92 <= covered / N_SIM <= 0.98, covered / N_SIM  # 95% CI: exact binomial 99.9% band 0.925..0.973


def _with_baseline(rng: np.random.Generator, p0: float, k: int = 8, n_gen: int = 40, n0: int = 400):
    """``k`` personas with Beta propensities of mean ``p0`` (so no true difference), and a baseline at ``p0``."""
    p = rng.beta(2, 2 * (1 - p0) / p0, k)
    persona = pd.DataFrame(
        {
            "persona_id": np.repeat(np.arange(k).astype(str), n_gen),
            "persona_kind": "character",
            "persona_category": "politician",
            "is_baseline": 0,
            "refusal": rng.binomial(1, np.repeat(p, n_gen)),
        }
    )
    base = pd.DataFrame(
        {"persona_id": "none", "persona_kind": "none", "persona_category": "none", "is_baseline": 1,
         "refusal": rng.binomial(1, p0, n0)}
    )  # fmt: skip
    return pd.concat([persona, base], ignore_index=True).assign(model="m")


def test_refusal_vs_baseline_is_tested_over_personas():
    rng = np.random.default_rng(3)
    data = _with_baseline(rng, 0.2)
    res = refusal_vs_baseline(data, factors=("persona_category",)).iloc[0]
    rates = data[data["is_baseline"] == 0].groupby("persona_id")["refusal"].mean()
    base = data.loc[data["is_baseline"] == 1, "refusal"]
    p0, n0, k = base.mean(), len(base), len(rates)
    v1, v2 = rates.var(ddof=1) / k, p0 * (1 - p0) / n0
    df = (v1 + v2) ** 2 / (v1**2 / (k - 1) + v2**2 / (n0 - 1))
    t = (rates.mean() - p0) / np.sqrt(v1 + v2)
    assert (res["level"], res["n_personas"], res["baseline_n"]) == ("politician", k, n0)
    assert res["rate"] == pytest.approx(rates.mean()) and res["gap"] == pytest.approx(rates.mean() - p0)
    assert res["statistic"] == pytest.approx(t) and res["df"] == pytest.approx(df)
    assert res["pval"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert res["ci_low"] == pytest.approx(rates.mean() - stats.t.ppf(0.975, k - 1) * rates.std(ddof=1) / np.sqrt(k))
    assert res["gap_ci_low"] < res["gap"] < res["gap_ci_high"]
    # Without persona ids: the pooled z-test, with a note.
    flat = refusal_vs_baseline(data.drop(columns="persona_id"), factors=("persona_category",)).iloc[0]
    assert flat["test"] == "two_proportion_z" and "treated as independent" in flat["note"]
    # A model without baseline generations has empty baseline columns and no test.
    other = data[data["is_baseline"] == 0].assign(model="m2")
    res2 = refusal_vs_baseline(pd.concat([data, other]), factors=("persona_category",)).set_index("model")
    assert np.isnan(res2.loc["m2", "pval"]) and "no baseline" in res2.loc["m2", "note"]


def test_refusal_vs_baseline_rejects_at_the_nominal_level_under_no_effect():
    rng = np.random.default_rng(11)
    clustered = generations = 0
    for _ in range(N_SIM):
        data = _with_baseline(rng, 0.2)
        clustered += refusal_vs_baseline(data, factors=("persona_category",)).loc[0, "pval"] < 0.05
        x = data.groupby("is_baseline")["refusal"].agg(["sum", "size"])
        _, p = two_proportion_ztest(x.loc[0, "sum"], x.loc[0, "size"], x.loc[1, "sum"], x.loc[1, "size"])
        generations += p < 0.05
    assert NULL_BAND[0] <= clustered / N_SIM <= NULL_BAND[1], clustered / N_SIM
    # The generation-level z-test (what the headline used) rejects several times more often than it should.
    assert generations / N_SIM > 0.15, generations / N_SIM
