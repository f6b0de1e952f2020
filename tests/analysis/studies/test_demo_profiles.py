"""The prompt-level Demo-SafetyBench headline (:mod:`analysis.studies.demo_profiles`) on a scripted run whose
judges' demographic sensitivity is known (``tests/graphs/stage1/dices_study.py``): the rows a researcher cites."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import analyze_run
from analysis.demographics import demographic_sensitivity, ds_confidence_interval
from tests.conftest import run_config
from tests.graphs.stage1.dices_study import GENDER_SPREAD, dices_study_config
from tests.helpers.prompt_grids import write_yaml


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("dices")
    run_config(write_yaml(root / "study.yaml", dices_study_config(root / "run", root)))
    samples = pd.DataFrame(
        [
            {"id": r["id"], "item": r["metadata"]["item_id"], "human": r["metadata"]["human_unsafe"], **r["profile"]}
            for r in map(json.loads, (root / "run" / "stage1" / "benchmark.jsonl").read_text().splitlines())
        ]
    )
    return analyze_run(root / "run"), samples


def _icc_by_hand(y: np.ndarray) -> dict[str, float]:
    """Shrout & Fleiss (1979) ICC(2,1) and ICC(3,1) from the two-way ANOVA mean squares."""
    n, k = y.shape
    grand = y.mean()
    msr = k * ((y.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((y.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    sse = ((y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    return {
        "ICC2": (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
        "ICC3": (msr - mse) / (msr + (k - 1) * mse),
    }


def test_reliability_across_the_profile_framed_judges(study):
    tables, samples = study
    agr = tables["headline_agreement"].set_index("metric")
    women = (samples["gender"] == "Woman").to_numpy()
    y = np.column_stack([np.where(women, 0.75, 0.25), np.where(women, 1.0, 0.25)])  # judge-a, judge-b
    for form, value in _icc_by_hand(y).items():
        assert agr.loc[form, "value"] == pytest.approx(value, abs=1e-9)
        assert agr.loc[form, "ci_low"] < agr.loc[form, "value"] < agr.loc[form, "ci_high"]
    assert agr.loc["ICC2", "n_units"] == 16 and agr.loc["ICC2", "n_raters"] == 2
    assert agr.loc["ICC2", "judges"] == "judge-a, judge-b"  # the unframed judge-c is not among them


def test_demographic_sensitivity_in_the_seeds_form(study):
    tables, samples = study
    ds = tables["headline_demographic_sensitivity"].set_index(["judge", "attribute"])
    for judge, spread in GENDER_SPREAD.items():
        row = ds.loc[(judge, "gender")]
        assert row["framing"] == "profile" and row["ds"] == pytest.approx(spread)
        # every conversation has the same spread: the bootstrap over conversations cannot move it
        assert row["ds_ci_low"] == pytest.approx(spread) and row["ds_ci_high"] == pytest.approx(spread)
        # exact null: a shuffle of an item's 2 + 2 gender labels reaches the spread in 2 of 6 arrangements, so
        # p = (1/3)^4 = 1/81 over the 4 conversations; the shared shift needs one direction: 2 · (1/6)^4
        assert row["ds_null"] < spread and row["p_value"] == pytest.approx(1 / 81, abs=0.012) and row["n_items"] == 4
        assert row["shift"] == pytest.approx(spread) and row["shift_p"] < 0.01
        assert ds.loc[(judge, "ALL"), "ds"] == pytest.approx(spread)  # race, age and education follow gender here
    control = ds.loc[("judge-c", "ALL")]
    assert control["framing"] == "none" and control["ds"] == 0 and control["p_value"] == 1
    # the humans' between-group spread, computed here from the benchmark's per-profile mean ratings
    means = samples.groupby(["item", "gender"])["human"].mean().unstack()
    human = ds.loc[("humans (DICES)", "gender")]
    assert human["ds"] == pytest.approx((means.max(axis=1) - means.min(axis=1)).mean())
    assert human["dimension"] == "Q_overall" and np.isfinite(human["ds_null"]) and 0 < human["p_value"] <= 1

    versus = tables["headline_ds_llm_vs_humans"].set_index(["judge", "attribute"])
    assert versus.loc[("judge-a", "gender"), "ds"] == pytest.approx(0.5)
    assert versus.loc[("judge-a", "gender"), "human_ds"] == pytest.approx(human["ds"])
    assert versus.loc[("judge-b", "ALL"), "human_p_value"] == pytest.approx(
        ds.loc[("humans (DICES)", "ALL"), "p_value"]
    )


def test_each_framed_judge_against_the_humans_of_its_profile(study):
    tables, samples = study
    rows = tables["headline_llm_vs_humans"].set_index(["judge", "attribute", "value"])
    women = samples[samples["gender"] == "Woman"]
    row = rows.loc[("judge-b", "gender", "Woman")]
    assert row["n_samples"] == len(women) == 8 and row["n_conversations"] == 4
    assert row["mean_judge"] == pytest.approx(1.0) and row["mean_humans"] == pytest.approx(women["human"].mean())
    assert np.isnan(row["spearman_rho"]) and "constant" in row["note"]  # judge-b says 5 to every woman
    overall = rows.loc[("judge-a", "ALL", "ALL")]
    judge_a = np.where(samples["gender"] == "Woman", 0.75, 0.25)
    expected = pd.Series(judge_a).corr(samples["human"].reset_index(drop=True), method="spearman")
    assert overall["spearman_rho"] == pytest.approx(expected) and overall["n_samples"] == 16
    assert overall["ci_low"] <= overall["spearman_rho"] <= overall["ci_high"]
    assert overall["mean_abs_gap"] == pytest.approx(np.abs(judge_a - samples["human"].to_numpy()).mean())


def test_threshold_sweep_reports_each_pair(study):
    tables, _ = study
    sweep = tables["headline_threshold_sweep"]
    built = sweep[sweep["built"]]
    assert set(built["delta"]) == {0.5} and set(built["tau"]) == {10} and set(built["judge"]) == {"judge-a", "judge-b"}
    assert (built["n_samples"] == 16).all() and (built["n_rated"] == 16).all()
    assert built.set_index("judge").loc["judge-a", "ds"] == pytest.approx(0.5)
    empty = sweep[sweep["delta"] == 0.95].iloc[0]
    assert empty["n_samples"] == 0 and np.isnan(empty["icc2"]) and "no sample passes" in empty["note"]
    counts = tables["headline_sweep_counts"]
    at_built = counts[(counts["delta"] == 0.5) & (counts["tau"] == 10)].set_index("domain")["samples"]
    assert at_built["financial_crime,property_crime,theft"] == 4 and at_built["animal_abuse"] == 4
    assert at_built["violence,aiding_and_abetting,incitement"] == 8  # the dog conversation is in two domains
    assert counts.loc[counts["delta"] == 0.95, "samples"].eq(0).all()


def test_ds_interval_matches_ds_and_covers_a_simulated_truth():
    """With item-level framing effects drawn around a known mean, the interval covers it in most simulations."""
    rng = np.random.default_rng(7)
    covered, n_sims = 0, 60
    for _ in range(n_sims):
        n = 40
        effect = rng.uniform(0.0, 0.4, n)  # true DS = 0.2: the mean of the per-item spreads
        items = np.repeat(np.arange(n), 2)
        values = np.tile(["f", "m"], n)
        score = np.where(values == "f", 0.3, 0.3 + np.repeat(effect, 2))
        data = pd.DataFrame({"item": items, "attribute": "gender", "value": values, "p": score})
        ci = ds_confidence_interval(data, "item", "p", "attribute", "value", rater=None, n_boot=400)
        row = ci.set_index("attribute").loc["gender"]
        ds = demographic_sensitivity(data, "item", "p", "attribute", "value", rater=None, n_permutations=0)
        assert row["ds"] == pytest.approx(ds.set_index("attribute").loc["gender", "ds"])
        covered += row["ds_ci_low"] <= 0.2 <= row["ds_ci_high"]
    assert covered >= 0.85 * n_sims


def test_a_ds_interval_without_width_says_why():
    """A judge whose framing never moves its score has DS 0 in every resample: the interval [0, 0] carries a note,
    and an ordinary interval none."""
    items, values = np.repeat(np.arange(10), 2), np.tile(["f", "m"], 10)
    flat = pd.DataFrame({"item": items, "attribute": "gender", "value": values, "p": 0.4})
    row = ds_confidence_interval(flat, "item", "p", "attribute", "value", rater=None).set_index("attribute")
    assert (row.loc["gender", "ds_ci_low"], row.loc["gender", "ds_ci_high"]) == (0.0, 0.0)
    assert "no width" in row.loc["gender", "note"] and "no width" in row.loc["ALL", "note"]
    moved = flat.assign(p=np.where(values == "f", 0.4, 0.4 + np.linspace(0, 0.5, 20)))
    row = ds_confidence_interval(moved, "item", "p", "attribute", "value", rater=None).set_index("attribute")
    assert row.loc["gender", "ds_ci_low"] < row.loc["gender", "ds_ci_high"] and row.loc["gender", "note"] == ""
