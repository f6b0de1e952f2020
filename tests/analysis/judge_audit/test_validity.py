"""A judge's validity against human labels (:mod:`analysis.judge_audit.validity`): reference values from sklearn,
scipy and the krippendorff package, simulations with a known truth, and the NaN-with-a-note contract."""

from __future__ import annotations

import json
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import f1_score, roc_auc_score

from analysis.agreement import krippendorff_alpha
from analysis.judge_audit.validity import CALIBRATION_COLUMNS, GROUP_COLUMNS, validity_vs_humans

# 10 items × 3 annotators (NaN: not labelled); the judge's scores have ties (0.3 twice, 0.8 three times)
LABELS = np.array(
    [
        [0.0, 0.0, 0.25],
        [0.0, 0.5, np.nan],
        [0.25, 0.25, 0.5],
        [1.0, 0.75, 1.0],
        [0.5, np.nan, 0.75],
        [0.75, 1.0, 1.0],
        [0.0, 0.25, 0.0],
        [1.0, 1.0, np.nan],
        [0.5, 0.25, 0.5],
        [0.75, 0.5, 1.0],
    ]
)
SCORES = np.array([0.05, 0.3, 0.3, 0.8, 0.55, 0.8, 0.1, 0.95, 0.8, 0.62])


def long_labels(labels: np.ndarray, annotators=("a", "b", "c")) -> pd.DataFrame:
    items, raters = np.nonzero(~np.isnan(labels))
    return pd.DataFrame({"item_id": items, "annotator": np.asarray(annotators)[raters], "label": labels[items, raters]})


def judge_frame(scores: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"item_id": np.arange(len(scores)), "score": scores})


@pytest.fixture(scope="module")
def example():
    return validity_vs_humans(judge_frame(SCORES), long_labels(LABELS), n_boot=200, seed=3)


def test_point_figures_match_sklearn_scipy_and_the_krippendorff_package(example):
    consensus = np.nanmean(LABELS, axis=1)
    truth = consensus >= 0.5
    summary = example.summary
    assert (summary["n_items"], summary["n_unscored"], summary["n_labels"], summary["n_annotators"]) == (10, 0, 27, 3)
    assert (summary["n_positive"], summary["n_negative"]) == (truth.sum(), (~truth).sum()) == (5, 5)
    assert summary["auc"] == pytest.approx(roc_auc_score(truth, SCORES), abs=1e-12)
    assert summary["spearman"] == pytest.approx(spearmanr(SCORES, consensus).statistic, abs=1e-12)
    assert summary["mae"] == pytest.approx(np.mean(np.abs(SCORES - consensus)), abs=1e-12)
    judge_vs_consensus = krippendorff.alpha(reliability_data=[SCORES, consensus], level_of_measurement="interval")
    assert summary["alpha_vs_humans"] == pytest.approx(judge_vs_consensus, abs=1e-12)
    human = krippendorff.alpha(reliability_data=LABELS.T, level_of_measurement="interval")
    assert summary["human_alpha"] == pytest.approx(human, abs=1e-12)
    assert summary["notes"] == []


def test_best_f1_matches_a_brute_force_scan_and_takes_the_lowest_threshold_on_ties(example):
    truth = np.nanmean(LABELS, axis=1) >= 0.5
    scan = [(f1_score(truth, t <= SCORES), t) for t in sorted(set(SCORES))]
    best = max(f for f, _ in scan)
    assert example.summary["best_f1"] == pytest.approx(best, abs=1e-12)
    assert example.summary["best_f1_threshold"] == min(t for f, t in scan if f == pytest.approx(best, abs=1e-12))
    # thresholds 0.2 (TP 2, FP 2) and 0.5 (TP 1, FN 1) both reach F1 = 2/3: the lower one is reported
    tied = validity_vs_humans(
        judge_frame(np.array([0.1, 0.2, 0.3, 0.4, 0.5])),
        pd.DataFrame({"item_id": range(5), "label": [0, 1, 0, 0, 1]}),
        n_boot=0,
    )
    assert (tied.summary["best_f1"], tied.summary["best_f1_threshold"]) == (pytest.approx(2 / 3), 0.2)


def test_calibration_curve_and_ece_by_hand(example):
    consensus = np.nanmean(LABELS, axis=1)
    cal = example.calibration
    assert list(cal.columns) == CALIBRATION_COLUMNS
    # scores 0.05 | 0.1 | 0.3 0.3 | 0.55 | 0.62 | 0.8 0.8 0.8 | 0.95 fill bins 0, 1, 3, 5, 6, 8, 9
    assert cal["bin"].tolist() == [0, 1, 3, 5, 6, 8, 9]
    assert cal["n"].tolist() == [1, 1, 2, 1, 1, 3, 1]
    assert cal["lo"].tolist() == pytest.approx([0.0, 0.1, 0.3, 0.5, 0.6, 0.8, 0.9])
    assert cal["hi"].tolist() == pytest.approx([0.1, 0.2, 0.4, 0.6, 0.7, 0.9, 1.0])
    in_bin8 = [3, 5, 8]
    assert cal.loc[cal["bin"] == 8, "mean_human"].item() == pytest.approx(consensus[in_bin8].mean())
    gaps = [abs(SCORES[i] - consensus[i]) for i in (0, 6, 4, 9, 7)]  # the one-item bins
    gaps.append(2 * abs(0.3 - consensus[[1, 2]].mean()))
    gaps.append(3 * abs(0.8 - consensus[in_bin8].mean()))
    assert example.summary["ece"] == pytest.approx(sum(gaps) / 10, abs=1e-12)
    # a score of 1.0 falls in the last bin; 0.0 in the first
    edge = validity_vs_humans(judge_frame(np.array([0.0, 1.0])), pd.DataFrame({"item_id": [0, 1], "label": [0, 1]}))
    assert edge.calibration["bin"].tolist() == [0, 9]
    assert edge.summary["ece"] == 0.0


def test_human_loo_alpha_is_one_human_against_the_mean_of_the_others(example):
    expected = []
    for a in range(3):
        others = np.delete(LABELS, a, axis=1)
        rows = ~np.isnan(LABELS[:, a]) & (np.sum(~np.isnan(others), axis=1) >= 1)
        pair = [LABELS[rows, a], np.nanmean(others[rows], axis=1)]
        expected.append(krippendorff.alpha(reliability_data=pair, level_of_measurement="interval"))
    assert example.summary["human_loo_alpha"] == pytest.approx(np.mean(expected), abs=1e-12)
    # with two annotators who label every item, one against the other is the inter-rater alpha itself
    two = validity_vs_humans(judge_frame(SCORES), long_labels(LABELS[:, :2], annotators=("a", "b")), n_boot=0)
    assert two.summary["human_loo_alpha"] == pytest.approx(two.summary["human_alpha"], abs=1e-12)


def test_intervals_match_krippendorff_alphas_bootstrap_and_a_brute_force_loop(example):
    n_boot, seed, n = 200, 3, len(SCORES)
    consensus = np.nanmean(LABELS, axis=1)
    long = pd.DataFrame({"unit": np.tile(np.arange(n), 2), "coder": np.repeat([0, 1], n)})
    long["value"] = np.concatenate([SCORES, consensus])
    house = krippendorff_alpha(long, "unit", "coder", "value", bootstrap=n_boot, seed=seed)
    assert example.summary["alpha_vs_humans_ci"] == pytest.approx([house.ci_low, house.ci_high], abs=1e-12)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"spearman": [], "mae": [], "auc": []}
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        s, h = SCORES[idx], consensus[idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            draws["spearman"].append(spearmanr(s, h).statistic if np.ptp(s) and np.ptp(h) else np.nan)
        draws["mae"].append(np.mean(np.abs(s - h)))
        truth = h >= 0.5
        draws["auc"].append(roc_auc_score(truth, s) if 0 < truth.sum() < n else np.nan)
    for name, values in draws.items():
        expected = np.nanquantile(values, [0.025, 0.975])
        assert example.summary[f"{name}_ci"] == pytest.approx(expected, abs=1e-12), name


@pytest.mark.parametrize("seed", [0, 5])
def test_vectorized_bootstrap_in_blocks_equals_a_plain_loop_over_resamples(monkeypatch, seed):
    import analysis.judge_audit.validity as module

    # odd N, ties in both, resamples with one value (alpha, spearman undefined) and with one class (auc undefined)
    s, h = np.array([0.5, 0.5, 0.2, 0.9, 0.5]), np.array([0.5, 0.5, 0.0, 1.0, 1.0])
    monkeypatch.setattr(module, "_CHUNK_CELLS", 4 * len(s))  # blocks of 4 resamples, the last one of 3
    n_boot, n = 203, len(s)
    res = validity_vs_humans(judge_frame(s), pd.DataFrame({"item_id": range(n), "label": h}), n_boot=n_boot, seed=seed)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"alpha_vs_humans": [], "spearman": [], "mae": [], "auc": []}
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        a, b = s[idx], h[idx]
        one_value = np.ptp(np.concatenate([a, b])) == 0
        alpha = np.nan if one_value else krippendorff.alpha(reliability_data=[a, b], level_of_measurement="interval")
        draws["alpha_vs_humans"].append(alpha)
        draws["spearman"].append(spearmanr(a, b).statistic if np.ptp(a) and np.ptp(b) else np.nan)
        draws["mae"].append(np.mean(np.abs(a - b)))
        draws["auc"].append(roc_auc_score(b >= 0.5, a) if 0 < (b >= 0.5).sum() < n else np.nan)
    for name, values in draws.items():
        undefined = int(np.isnan(values).sum())
        assert 0 < undefined < n_boot / 2 or name == "mae", name  # the case exercises the NaN rules
        expected = np.nanquantile(values, [0.025, 0.975])
        assert res.summary[f"{name}_ci"] == pytest.approx(expected, abs=1e-12), name


def simulated(n_items: int, seed: int, human_noise: float = 0.15, judge_noise: float = 0.08):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 1, n_items)
    labels = np.clip(truth[:, None] + rng.normal(0, human_noise, (n_items, 3)), 0, 1)
    good = np.clip(truth + rng.normal(0, judge_noise, n_items), 0, 1)
    bad = rng.uniform(0, 1, n_items)
    return long_labels(labels), judge_frame(good), judge_frame(bad)


def test_simulated_good_judge_is_valid_and_a_bad_one_is_not():
    humans, good, bad = simulated(120, seed=11)
    big_humans, big_good, _ = simulated(20_000, seed=12)
    population = validity_vs_humans(big_good, big_humans, n_boot=0).summary["alpha_vs_humans"]
    res_good = validity_vs_humans(good, humans, n_boot=300, seed=1).summary
    res_bad = validity_vs_humans(bad, humans, n_boot=300, seed=1).summary
    assert res_good["alpha_vs_humans"] > 0.8
    low, high = res_good["alpha_vs_humans_ci"]
    assert low <= population <= high
    low, high = res_bad["alpha_vs_humans_ci"]
    assert low <= 0 <= high
    assert res_bad["spearman_ci"][0] <= 0 <= res_bad["spearman_ci"][1]
    assert res_good["alpha_vs_humans_ci"][0] > res_bad["alpha_vs_humans_ci"][1]
    # this judge is less noisy than one human (0.08 against 0.15): it clears the like-for-like ceiling
    assert res_good["alpha_vs_humans"] > res_good["human_loo_alpha"]


def test_intervals_cover_the_large_sample_values_at_about_their_level():
    big_humans, big_good, _ = simulated(20_000, seed=12)
    population = validity_vs_humans(big_good, big_humans, n_boot=0).summary["alpha_vs_humans"]
    covered_good = covered_zero = 0
    for seed in range(200, 230):
        humans, good, bad = simulated(120, seed=seed)
        low, high = validity_vs_humans(good, humans, n_boot=200, seed=seed).summary["alpha_vs_humans_ci"]
        covered_good += low <= population <= high
        low, high = validity_vs_humans(bad, humans, n_boot=200, seed=seed).summary["alpha_vs_humans_ci"]
        covered_zero += low <= 0 <= high
    # 95% intervals over 30 data sets: about 28 cover; fewer than 24 would be a broken interval
    assert covered_good >= 24 and covered_zero >= 24


def test_a_judge_that_is_one_more_human_scores_about_the_loo_ceiling():
    rng = np.random.default_rng(4)
    truth = rng.uniform(0, 1, 3000)
    labels = np.clip(truth[:, None] + rng.normal(0, 0.15, (3000, 4)), 0, 1)
    res = validity_vs_humans(judge_frame(labels[:, 3]), long_labels(labels[:, :3]), n_boot=0).summary
    # one human against one human < one against two others <= one against all three (the judge's target)
    assert res["human_alpha"] < res["human_loo_alpha"] <= res["alpha_vs_humans"]
    assert res["alpha_vs_humans"] - res["human_loo_alpha"] < 0.03
    assert res["human_loo_alpha"] - res["human_alpha"] > 0.02


def test_noiseless_identical_humans_agree_perfectly():
    truth = np.linspace(0.05, 0.95, 12)
    humans = long_labels(np.column_stack([truth, truth]), annotators=("a", "b"))
    res = validity_vs_humans(judge_frame(truth), humans, n_boot=50).summary
    assert res["human_alpha"] == pytest.approx(1.0)
    assert res["human_loo_alpha"] == pytest.approx(1.0)
    assert res["alpha_vs_humans"] == pytest.approx(1.0)
    assert res["mae"] == pytest.approx(0.0)


def test_intervals_are_ordered_and_reproducible_with_a_seed():
    humans, good, _ = simulated(60, seed=5)
    first = validity_vs_humans(good, humans, n_boot=200, seed=7).summary
    again = validity_vs_humans(good, humans, n_boot=200, seed=7).summary
    other = validity_vs_humans(good, humans, n_boot=200, seed=8).summary
    for name in ("alpha_vs_humans", "spearman", "mae", "auc"):
        low, high = first[f"{name}_ci"]
        assert low <= first[name] <= high, name
        assert first[f"{name}_ci"] == again[f"{name}_ci"], name
    assert first["alpha_vs_humans_ci"] != other["alpha_vs_humans_ci"]


def test_constant_judge_has_no_spearman_and_says_why():
    res = validity_vs_humans(judge_frame(np.full(10, 0.5)), long_labels(LABELS), n_boot=100).summary
    assert np.isnan(res["spearman"]) and np.isnan(res["spearman_ci"]).all()
    assert any("spearman is NaN" in note and "constant" in note for note in res["notes"])
    assert res["auc"] == 0.5  # every pair tied: counted half, not undefined
    assert np.isfinite(res["alpha_vs_humans"]) and res["alpha_vs_humans"] < 0.1


def test_one_class_labels_have_no_auc_or_best_f1_and_say_why():
    humans = long_labels(np.clip(LABELS, 0.6, 1.0))
    res = validity_vs_humans(judge_frame(SCORES), humans, n_boot=50).summary
    assert (res["n_positive"], res["n_negative"]) == (10, 0)
    assert np.isnan(res["auc"]) and np.isnan(res["auc_ci"]).all()
    assert np.isnan(res["best_f1"]) and np.isnan(res["best_f1_threshold"])
    assert any(note.startswith("auc is NaN: all 10 items are positive") for note in res["notes"])
    assert any(note.startswith("best_f1 is NaN") for note in res["notes"])


def test_unscored_items_are_dropped_and_counted():
    judge = judge_frame(SCORES).astype({"score": float})
    judge.loc[[1, 4], "score"] = np.nan
    judge = pd.concat([judge.drop(index=7), pd.DataFrame({"item_id": [99], "score": [0.4]})])  # 99 has no label
    res = validity_vs_humans(judge, long_labels(LABELS), n_boot=0).summary
    assert (res["n_items"], res["n_unscored"]) == (7, 3)
    assert res["n_labels"] == 27 - 3 * 2  # the two labels each of items 1, 4 and 7 are not counted
    kept = [0, 2, 3, 5, 6, 8, 9]
    assert res["mae"] == pytest.approx(np.mean(np.abs(SCORES[kept] - np.nanmean(LABELS[kept], axis=1))))


def test_repeated_scores_of_an_item_are_averaged():
    judge = pd.DataFrame({"item_id": [0, 0, 1, 2], "score": [0.2, 0.4, np.nan, 0.9]})
    humans = pd.DataFrame({"item_id": [0, 1, 2], "label": [0.3, 1.0, 1.0]})
    res = validity_vs_humans(judge, humans, n_boot=0)
    assert (res.summary["n_items"], res.summary["n_unscored"]) == (2, 1)
    assert res.calibration["mean_score"].tolist() == pytest.approx([0.3, 0.9])
    assert res.summary["n_annotators"] is None


def test_group_breakdown_finds_the_group_the_judge_agrees_with():
    rng = np.random.default_rng(2)
    truth = rng.uniform(0, 1, 80)
    same = np.clip(truth[:, None] + rng.normal(0, 0.1, (80, 2)), 0, 1)
    opposite = np.clip(1 - truth[:, None] + rng.normal(0, 0.1, (80, 2)), 0, 1)
    humans = long_labels(np.column_stack([same, opposite]), annotators=("a1", "a2", "b1", "b2"))
    humans["group"] = humans["annotator"].str[0]
    humans["a1_or_not"] = np.where(humans["annotator"] == "a1", "a1", "others")
    judge = judge_frame(np.clip(truth + rng.normal(0, 0.05, 80), 0, 1))
    res = validity_vs_humans(judge, humans, group_columns=["group", "a1_or_not"], n_boot=0)
    table = res.by_group.set_index(["attribute", "value"])
    assert list(res.by_group.columns) == GROUP_COLUMNS
    assert table.loc[("group", "a"), "alpha_vs_humans"] > 0.8
    assert table.loc[("group", "b"), "alpha_vs_humans"] < -0.5
    assert table.loc[("group", "a"), "spearman"] > 0.8 > -0.8 > table.loc[("group", "b"), "spearman"]
    assert table.loc[("group", "a"), "auc"] > 0.9 > 0.1 > table.loc[("group", "b"), "auc"]
    assert (table.loc["group", "human_alpha"] > 0.7).all()  # each group agrees within itself
    assert table.loc[("group", "a"), "n_items"] == 80 and table.loc[("group", "a"), "n_annotators"] == 2
    assert (table.loc["group", "note"] == "").all()
    assert table.loc[("a1_or_not", "a1"), "alpha_vs_humans"] > 0.8
    # a group of one annotator: no item has two labels there, so no inter-rater alpha
    assert np.isnan(table.loc[("a1_or_not", "a1"), "human_alpha"])
    assert table.loc[("a1_or_not", "a1"), "note"].startswith("human_alpha is NaN: no item has two")
    assert table.loc[("a1_or_not", "others"), "n_annotators"] == 3
    # mixing the groups, the overall consensus is near 0.5 everywhere and the judge cannot follow it
    assert res.summary["alpha_vs_humans"] < table.loc[("group", "a"), "alpha_vs_humans"]


def test_as_dict_is_strict_json():
    res = validity_vs_humans(judge_frame(np.full(10, 0.5)), long_labels(LABELS), group_columns=(), n_boot=20)
    data = res.as_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["summary"]["spearman"] is None
    assert data["summary"]["spearman_ci"] == [None, None]
    assert data["calibration"][0] == {"bin": 5, "lo": 0.5, "hi": 0.6, "n": 10, "mean_score": 0.5,
                                      "mean_human": pytest.approx(np.nanmean(LABELS, axis=1).mean())}  # fmt: skip
    assert data["by_group"] == []


def test_too_few_items_and_no_overlap_give_nan_with_notes():
    two = validity_vs_humans(judge_frame(np.array([0.2, 0.8])), pd.DataFrame({"item_id": [0, 1], "label": [0, 1]}))
    assert np.isnan(two.summary["spearman"]) and np.isnan(two.summary["alpha_vs_humans_ci"]).all()
    assert any("at least 3 items" in note for note in two.summary["notes"])
    assert any(note.startswith("human_alpha is NaN: no item has two") for note in two.summary["notes"])
    none = validity_vs_humans(judge_frame(np.array([0.2])), pd.DataFrame({"item_id": [5], "label": [1.0]}))
    assert none.summary["n_items"] == 0 and none.summary["n_unscored"] == 1
    assert np.isnan(none.summary["alpha_vs_humans"]) and np.isnan(none.summary["ece"])
    assert none.calibration.empty and list(none.calibration.columns) == CALIBRATION_COLUMNS


def test_bad_inputs_say_what_to_do():
    humans = long_labels(LABELS)
    with pytest.raises(ValueError, match="rescale"):
        validity_vs_humans(judge_frame(SCORES * 10), humans)
    with pytest.raises(ValueError, match="labelled an item twice"):
        validity_vs_humans(judge_frame(SCORES), pd.concat([humans, humans.iloc[:1]]))
    with pytest.raises(KeyError, match="group"):
        validity_vs_humans(judge_frame(SCORES), humans, group_columns=["group"])
    with pytest.raises(ValueError, match="n_boot"):
        validity_vs_humans(judge_frame(SCORES), humans, n_boot=-1)


def test_docstring_example():
    import doctest

    import analysis.judge_audit.validity as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed
