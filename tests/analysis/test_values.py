"""Value inertia (:mod:`analysis.values`): a hand-checked toy, statsmodels' Type II ANOVA as the reference for the
two-way persona effect, and simulations with known truth for the estimate and its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from analysis import value_inertia
from analysis.values import P_FLOOR


def test_value_inertia_toy():
    data = pd.DataFrame(
        {
            "dimension": ["care"] * 7,
            "persona_id": ["none", "p1", "p1", "p2", "p2", "p3", "p3"],
            "score": [0.8, 0.7, 0.9, 0.6, 0.6, 0.2, 0.4],
        }
    )
    res = value_inertia(data).iloc[0]  # the old call: no item or language column
    assert res["default_mean"] == pytest.approx(0.8)
    assert res["n_personas"] == 3
    assert res["persona_mean"] == pytest.approx((0.8 + 0.6 + 0.3) / 3)
    # persona rows: grand mean 0.5667; SS_between = 2[(.8-.5667)^2 + (.6-.5667)^2 + (.3-.5667)^2]
    grand = np.mean([0.7, 0.9, 0.6, 0.6, 0.2, 0.4])
    ssb = 2 * sum((m - grand) ** 2 for m in (0.8, 0.6, 0.3))
    sst = sum((v - grand) ** 2 for v in (0.7, 0.9, 0.6, 0.6, 0.2, 0.4))
    assert res["eta_squared"] == pytest.approx(ssb / sst)
    assert res["n_same_side"] == 2 and res["share_same_side"] == pytest.approx(2 / 3)
    # Without items the two-way model is the one-way one: the same share, and a note that says so.
    assert res["persona_eta_squared"] == pytest.approx(ssb / sst)
    assert (res["df_persona"], res["df_residual"], res["n_items"]) == (2, 3, 0)
    assert res["persona_f"] == pytest.approx((ssb / 2) / ((sst - ssb) / 3))
    assert "no item column 'item' and language column 'language'" in res["note"]


@pytest.mark.parametrize(("n_personas", "n_probes"), [(15, 5), (4, 30)])  # either factor is the absorbed one
def test_two_way_persona_effect_matches_statsmodels_type2(n_personas, n_probes):
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(3)
    n = 400  # unbalanced: personas, probes and languages drawn at random per answer
    data = pd.DataFrame(
        {
            "dimension": "care",
            "persona_id": rng.integers(0, n_personas, n).astype(str),
            "item": rng.integers(0, n_probes, n).astype(str),
            "language": rng.choice(["en", "zh"], n),
        }
    )
    data["score"] = (
        0.08 * data["persona_id"].astype(int) + 0.3 * data["item"].astype(int) + rng.normal(0, 0.5, n)
    ) + np.where(data["language"] == "zh", 0.4, 0.0)
    res = value_inertia(data).iloc[0]
    cells = data.assign(cell=data["item"] + data["language"])
    table = sm.stats.anova_lm(smf.ols("score ~ C(persona_id) + C(cell)", cells).fit(), typ=2)
    ss_p, ss_e = table.loc["C(persona_id)", "sum_sq"], table.loc["Residual", "sum_sq"]
    df1, df2 = table.loc["C(persona_id)", "df"], table.loc["Residual", "df"]
    assert res["persona_eta_squared"] == pytest.approx(ss_p / (ss_p + ss_e), rel=1e-10)
    assert res["persona_f"] == pytest.approx(table.loc["C(persona_id)", "F"], rel=1e-10)
    assert (res["df_persona"], res["df_residual"], res["note"]) == (df1, df2, "")
    assert res["n_items"] == cells["cell"].nunique()
    omega = (ss_p - df1 * ss_e / df2) / (ss_p + (n - df1) * ss_e / df2)  # Olejnik & Algina (2003)
    assert res["persona_omega_squared"] == pytest.approx(omega, rel=1e-10)
    assert res["persona_eta_squared_ci_low"] < res["persona_omega_squared"] < res["persona_eta_squared_ci_high"]


def _simulate(rng, n_sets, share, n_personas=30, n_items=4, n_languages=2, repeats=2, item_sd=2.0, language_sd=1.0):
    """``n_sets`` datasets (one per ``dimension``): persona effects with a population partial eta squared of exactly
    ``share`` (unit error variance), strong item and language effects, independent normal errors."""
    q, i, lang, _ = (a.ravel() for a in np.indices((n_personas, n_items, n_languages, repeats)))
    frames = []
    for d in range(n_sets):
        alpha = rng.normal(size=n_personas)
        alpha = (alpha - alpha.mean()) / alpha.std() * np.sqrt(share / (1 - share)) if share else 0 * alpha
        y = alpha[q] + rng.normal(0, item_sd, n_items)[i] + rng.normal(0, language_sd, n_languages)[lang]
        y = y + rng.normal(size=len(q))
        frames.append(pd.DataFrame({"dimension": d, "persona_id": q, "item": i, "language": lang, "score": y}))
    return pd.concat(frames, ignore_index=True)


def test_strong_persona_effect_is_measured_where_the_pooled_eta_squared_reads_it_as_tiny():
    data = _simulate(np.random.default_rng(11), 1, 0.68, n_personas=50, n_items=6, repeats=3, item_sd=5.0)
    res = value_inertia(data).iloc[0]
    assert res["eta_squared"] < 0.12  # the old figure: probe differences count as noise
    assert res["persona_omega_squared"] == pytest.approx(0.68, abs=0.04)
    assert res["persona_eta_squared"] == pytest.approx(0.68, abs=0.05)
    assert res["persona_eta_squared_ci_low"] < 0.68 < res["persona_eta_squared_ci_high"]
    assert res["persona_eta_squared_ci_low"] > 0.6 and res["persona_eta_squared_ci_high"] < 0.75


def test_null_persona_effect_is_small_and_its_interval_covers_zero():
    data = _simulate(np.random.default_rng(5), 1, 0.0, n_personas=200, n_items=6, repeats=3)
    res = value_inertia(data).iloc[0]
    assert res["persona_eta_squared"] < 0.08 and res["persona_omega_squared"] < 0.01
    assert res["persona_eta_squared_ci_low"] == 0 and res["persona_eta_squared_ci_high"] < 0.02


@pytest.mark.parametrize("share", [0.0, 0.2, 0.68])
def test_interval_covers_the_true_share_at_its_level(share):
    n_sets = 400
    data = _simulate(np.random.default_rng(int(share * 100) + 1), n_sets, share)
    res = value_inertia(data, confidence=0.95)
    assert len(res) == n_sets and (res["note"] == "").all()
    covered = ((res["persona_eta_squared_ci_low"] <= share) & (share <= res["persona_eta_squared_ci_high"])).sum()
    if share == 0:  # the lower bound is 0 unless the persona F test rejects at 2.5% (one-sided)
        low, high = binom.ppf(0.0005, n_sets, 0.975), binom.isf(0.0005, n_sets, 0.975)
    else:
        low, high = binom.ppf(0.0005, n_sets, 0.95), binom.isf(0.0005, n_sets, 0.95)
    assert low <= covered <= high
    assert res["persona_omega_squared"].mean() == pytest.approx(share, abs=0.02)  # nearly unbiased
    assert (res["persona_eta_squared_ci_low"] <= res["persona_eta_squared_ci_high"]).all()


def test_language_effect_alone_is_removed():
    rng = np.random.default_rng(2)
    persona = np.repeat(np.arange(20), 4)
    language = np.tile(["en", "en", "zh", "zh"], 20)
    y = np.where(language == "zh", 3.0, 0.0) + rng.normal(size=len(persona))
    data = pd.DataFrame({"dimension": "care", "persona_id": persona, "lang": language, "score": y})
    res = value_inertia(data, item=None, language="lang").iloc[0]
    assert res["n_items"] == 2 and res["persona_eta_squared_ci_low"] == 0
    assert res["note"] == ""  # item=None: there is no probe column, nothing to note


def test_undefined_persona_effects_say_why():
    # Each persona answered its own probe: persona and item are aliased.
    scores = [0.1, 0.2, 0.8, 0.9]
    aliased = pd.DataFrame({"dimension": "care", "persona_id": list("aabb"), "item": list("xxyy"), "score": scores})
    res = value_inertia(aliased, language=None).iloc[0]
    assert np.isnan(res["persona_eta_squared"]) and "aliased" in res["note"] and res["df_persona"] == 0
    # One answer per persona on one probe: nothing is left for the noise.
    single = aliased.assign(item="x").drop_duplicates("persona_id")
    res = value_inertia(single, language=None).iloc[0]
    assert np.isnan(res["persona_eta_squared"]) and "no residual degrees of freedom" in res["note"]
    # Identical answers: no variance to share.
    same = pd.DataFrame({"dimension": "care", "persona_id": list("aabb"), "item": list("xyxy"), "score": 0.5})
    res = value_inertia(same, language=None).iloc[0]
    assert np.isnan(res["persona_eta_squared"]) and "every persona answer is the same" in res["note"]
    # Answers without a probe id are left out of the model, and counted.
    gap = pd.concat([same.assign(score=[0.1, 0.3, 0.6, 0.9]), same.iloc[:1].assign(item=None)], ignore_index=True)
    res = value_inertia(gap, language=None).iloc[0]
    assert res["n_persona_answers"] == 4 and "1 of 5 answers without item left out" in res["note"]
    with pytest.raises(ValueError, match="confidence"):
        value_inertia(same, confidence=95)


def test_the_null_share_is_what_noise_alone_gives_and_the_f_test_holds_its_level():
    # 400 datasets with no persona effect: the sample partial eta² averages its null, nu1 / (nu1 + nu2), and the
    # F test rejects at about 5%; with a real effect it rejects nearly always.
    n_sets = 400
    res = value_inertia(_simulate(np.random.default_rng(23), n_sets, 0.0))
    null = res["df_persona"] / (res["df_persona"] + res["df_residual"])
    # 480 answers, rank 30 + 7: nu1 = 29, nu2 = 443
    assert np.allclose(res["persona_eta_squared_null"], null) and null.iloc[0] == pytest.approx(29 / (29 + 443))
    assert res["persona_eta_squared"].mean() == pytest.approx(null.iloc[0], rel=0.05)
    rejected = int((res["persona_p"] < 0.05).sum())
    assert binom.ppf(0.0005, n_sets, 0.05) <= rejected <= binom.isf(0.0005, n_sets, 0.05)
    assert ((res["persona_p"] > 0) & (res["persona_p"] <= 1)).all()
    strong = value_inertia(_simulate(np.random.default_rng(24), 50, 0.2))
    assert (strong["persona_p"] < 0.05).mean() > 0.95


def test_the_f_test_p_matches_scipy_and_never_reads_zero():
    from scipy.stats import f

    data = _simulate(np.random.default_rng(9), 1, 0.3)
    row = value_inertia(data).iloc[0]
    assert row["persona_p"] == pytest.approx(f.sf(row["persona_f"], row["df_persona"], row["df_residual"]), rel=1e-12)
    # persona effects a thousand times the noise: the p underflows the double range and reads as the floor
    q = np.repeat(np.arange(40), 8)
    huge = pd.DataFrame({"dimension": "care", "persona_id": q, "item": np.tile(np.arange(8), 40)})
    huge["score"] = q + np.random.default_rng(1).normal(0, 0.001, len(q))
    row = value_inertia(huge, language=None).iloc[0]
    assert row["persona_p"] == P_FLOOR > 0 and "below 1e-300" in row["note"]
    # scipy's noncentral F gives NaN that far out: no interval rather than a solver crash, and the note says so
    assert np.isnan(row["persona_eta_squared_ci_low"]) and "no interval" in row["note"]
    assert row["persona_omega_squared"] == pytest.approx(1, abs=1e-6)
    # no test where the model cannot be fitted: both figures empty, as the note says
    single = pd.DataFrame({"dimension": "care", "persona_id": list("ab"), "item": "x", "score": [0.1, 0.9]})
    row = value_inertia(single, language=None).iloc[0]
    assert np.isnan(row["persona_p"]) and np.isnan(row["persona_eta_squared_null"]) and row["note"]
