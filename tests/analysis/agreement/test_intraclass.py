"""ICC against published values and pingouin (:mod:`analysis.agreement.intraclass`)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from analysis import icc
from tests.analysis.agreement.reference import SHROUT_FLEISS, SHROUT_FLEISS_ICC, long_from_matrix, pingouin_icc


def test_icc_shrout_fleiss_published_values():
    res = icc(long_from_matrix(SHROUT_FLEISS), "target", "judge", "score").set_index("Type")
    assert list(res.columns) == ["Description", "ICC", "F", "df1", "df2", "pval", "CI95", "note"]
    for form, published in SHROUT_FLEISS_ICC.items():
        assert round(res.loc[form, "ICC"], 2) == pytest.approx(published, abs=1e-9), form
    # Their F tests: BMS/WMS = 1.79 on (5, 18), BMS/EMS = 11.03 on (5, 15).
    assert res.loc["ICC1", "F"] == pytest.approx(1.795, abs=1e-3)
    assert res.loc["ICC3", "F"] == pytest.approx(11.027, abs=1e-3)
    assert (res.loc["ICC1", "df2"], res.loc["ICC2", "df2"]) == (18, 15)


def test_icc_shrout_fleiss_matches_pingouin():
    data = long_from_matrix(SHROUT_FLEISS)
    ours = icc(data, "target", "judge", "score").set_index("Type")
    ref = pingouin_icc(data, "target", "judge", "score")
    for form in SHROUT_FLEISS_ICC:
        assert ours.loc[form, "ICC"] == pytest.approx(ref.loc[form, "ICC"], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_icc_agrees_with_pingouin_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(20, 300), rng.integers(2, 7)
    y = rng.normal(size=(n, 1)) + rng.normal(0, 0.8, size=(n, k)) + rng.normal(0, 0.3, size=k)
    data = long_from_matrix(y, "t", "r", "y").sample(frac=1, random_state=seed)
    data["r"] = data["r"].map(lambda j: f"rater-{j}")
    ours = icc(data, "t", "r", "y").set_index("Type")
    ref = pingouin_icc(data, "t", "r", "y")
    for form in SHROUT_FLEISS_ICC:
        for col in ("ICC", "F", "pval"):
            assert ours.loc[form, col] == pytest.approx(ref.loc[form, col], abs=1e-9, rel=1e-9), (form, col)
        assert ours.loc[form, "df1"] == ref.loc[form, "df1"]
        assert ours.loc[form, "df2"] == pytest.approx(ref.loc[form, "df2"])
        np.testing.assert_allclose(ours.loc[form, "CI95"], ref.loc[form, "CI95"], atol=1e-9)


def test_icc_unbalanced_raise_and_omit():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(50, 3)) + rng.normal(size=(50, 1))
    y[[3, 7], [0, 2]] = np.nan
    data = long_from_matrix(y)
    with pytest.raises(ValueError, match="nan_policy='omit'"):
        icc(data, "target", "judge", "score")
    ours = icc(data, "target", "judge", "score", nan_policy="omit")
    assert ours.attrs["n_omitted"] == 2 and ours.attrs["n_targets"] == 48
    ref = pingouin_icc(data, "target", "judge", "score", nan_policy="omit")
    np.testing.assert_allclose(ours.set_index("Type")["ICC"], ref["ICC"].reindex(ours["Type"]), atol=1e-12)


def test_icc_too_small():
    with pytest.raises(ValueError, match="at least 2"):
        icc(long_from_matrix(np.array([[1.0, 2.0]])), "target", "judge", "score")


def test_icc_units_keyword_and_the_deprecated_targets_keyword():
    data = long_from_matrix(SHROUT_FLEISS)
    expected = icc(data, "target", "judge", "score")
    new = icc(data, units="target", raters="judge", ratings="score")
    assert new.equals(expected) and new.attrs["n_units"] == new.attrs["n_targets"] == 6
    with pytest.warns(DeprecationWarning, match=r"icc\(targets=\.\.\.\) is deprecated.*use icc\(units=\.\.\.\)"):
        old = icc(data, targets="target", raters="judge", ratings="score")
    assert old.equals(expected)
    with pytest.raises(TypeError, match="both 'targets' and 'units'"):
        icc(data, targets="target", units="target", raters="judge", ratings="score")
    assert list(inspect.signature(icc).parameters)[:4] == ["data", "units", "raters", "ratings"]


def test_docstring_examples_run():
    import doctest

    import analysis.agreement.intraclass as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed


def test_icc_rows_without_a_unit_id_are_dropped_and_counted_not_written_into_another_unit():
    # Rater "a" never rated unit 4; a rating by "b" whose unit id is missing must not fill that cell.
    data = pd.DataFrame(
        {"t": [1.0, 1, 2, 2, 3, 3, 4, np.nan], "r": list("abababbb"), "y": [1.0, 2, 3, 5, 6, 6, 2, 100]}
    )
    clean = data[data["t"].notna()]
    with pytest.raises(ValueError, match="1 row.*no unit or rater id"):
        icc(data, "t", "r", "y")
    ours = icc(data, "t", "r", "y", nan_policy="omit")
    expected = icc(clean, "t", "r", "y", nan_policy="omit")
    np.testing.assert_allclose(ours["ICC"], expected["ICC"], atol=1e-12)
    assert ours.attrs["n_omitted"] == 1 and ours.attrs["n_units"] == 3  # unit 4 misses rater a
    assert ours.attrs["n_dropped_missing_id"] == 1 and expected.attrs["n_dropped_missing_id"] == 0
    # The same with string and categorical unit ids.
    for t in (data["t"].map({1.0: "x", 2.0: "y", 3.0: "z", 4.0: "w"}), data["t"].astype("category")):
        res = icc(data.assign(t=t), "t", "r", "y", nan_policy="omit")
        np.testing.assert_allclose(res["ICC"], expected["ICC"], atol=1e-12)
        assert res.attrs["n_dropped_missing_id"] == 1


def test_icc_rows_without_a_rater_id_are_dropped_and_counted():
    # Unit 4 has no rating by "b" (the last rater); a rating of unit 4 with a missing rater id must not fill it.
    data = pd.DataFrame(
        {
            "t": [1, 1, 2, 2, 3, 3, 4, 4],
            "r": ["a", "b", "a", "b", "a", "b", "a", None],
            "y": [1.0, 2, 3, 5, 6, 6, 2, 100],
        }
    )
    res = icc(data, "t", "r", "y", nan_policy="omit")
    expected = icc(data.iloc[:7], "t", "r", "y", nan_policy="omit")
    np.testing.assert_allclose(res["ICC"], expected["ICC"], atol=1e-12)
    assert res.attrs["n_dropped_missing_id"] == 1 and res.attrs["n_omitted"] == 1


def test_icc_categorical_units_with_unused_categories():
    data = long_from_matrix(SHROUT_FLEISS)
    expected = icc(data, "target", "judge", "score")
    data["target"] = pd.Categorical(data["target"], categories=range(-2, 9))  # 5 categories unused
    data["judge"] = pd.Categorical(data["judge"], categories=range(6))  # 2 raters unused
    ours = icc(data, "target", "judge", "score")  # nan_policy="raise" must not see the unused ones as missing
    assert ours.equals(expected)
    omit = icc(data, "target", "judge", "score", nan_policy="omit")
    assert omit.attrs["n_omitted"] == 0 and omit.attrs["n_units"] == 6 and omit.attrs["n_raters"] == 4


def _intervals(res):
    low = np.array([c[0] for c in res["CI95"]])
    high = np.array([c[1] for c in res["CI95"]])
    return low, high


def test_icc_intervals_are_never_inverted_nor_above_one_on_small_designs():
    # 300 random 5 targets × 2 raters: McGraw & Wong's ICC2k interval is the Spearman-Brown step-up of ICC2's,
    # which has a pole at ICC2 = -1/(k-1); bounds beyond it used to come out above 1 and inverted.
    rng = np.random.default_rng(13)
    results = []
    for _ in range(300):
        y = rng.normal(size=(5, 2)) + rng.normal(0, rng.uniform(0, 1.5), size=(5, 1))
        results.append(icc(long_from_matrix(y), "target", "judge", "score"))
    low, high = np.concatenate([_intervals(r) for r in results], axis=1)
    est = np.concatenate([r["ICC"].to_numpy() for r in results])
    defined = ~(np.isnan(low) | np.isnan(high))
    assert (low[defined] <= high[defined]).all()
    assert (high[defined] <= 1).all() and (low[defined] <= 1).all()
    assert (est[~np.isnan(est)] <= 1).all()
    inside = defined & ~np.isnan(est)
    assert (low[inside] <= est[inside]).all() and (est[inside] <= high[inside]).all()
    # Every clamped, undefined or missing figure says why, and the small-n problem is common (one design in
    # four here), flagged rather than hidden.
    notes = np.concatenate([r["note"].to_numpy() for r in results])
    odd = ~defined | np.isnan(est) | np.isinf(low)
    assert (notes[odd] != "").all() and (notes[~odd] == "").all()
    assert 50 < sum((r["note"] != "").any() for r in results) < 150


def test_icc_intervals_on_published_examples_are_unchanged():
    pingouin = pytest.importorskip("pingouin")
    # Shrout & Fleiss (1979) and pingouin's own example (8 wines × 4 judges), whose docstring prints CI95
    # [0.43, 0.93] for the single forms and [0.75, 0.98] for the average ones.
    wine = pingouin.read_dataset("icc")
    for data, cols in (
        (long_from_matrix(SHROUT_FLEISS), ("target", "judge", "score")),
        (wine, ("Wine", "Judge", "Scores")),
    ):
        ours = icc(data, *cols).set_index("Type")
        ref = pingouin_icc(data, *cols)
        assert (ours["note"] == "").all()
        for form in SHROUT_FLEISS_ICC:
            np.testing.assert_allclose(ours.loc[form, "CI95"], ref.loc[form, "CI95"], atol=1e-12, rtol=0)
    ours = icc(wine, "Wine", "Judge", "Scores").set_index("Type")
    for form in ("ICC1", "ICC2", "ICC3"):
        assert list(np.round(ours.loc[form, "CI95"], 2)) == [0.43, 0.93]
    for form in ("ICC1k", "ICC2k", "ICC3k"):
        assert list(np.round(ours.loc[form, "CI95"], 2)) == [0.75, 0.98]


def test_icc_degenerate_designs_say_why():
    # Exact agreement: no error variance, so no F test (a p of exactly 0 would claim a certainty).
    y = np.repeat(np.arange(6.0)[:, None], 3, axis=1)
    res = icc(long_from_matrix(y), "target", "judge", "score").set_index("Type")
    np.testing.assert_allclose(res["ICC"], 1.0)
    assert res["pval"].isna().all() and res["note"].str.contains("no error variance").all()
    # Constant ratings: nothing is defined.
    res = icc(long_from_matrix(np.ones((5, 3))), "target", "judge", "score")
    assert res["ICC"].isna().all() and res["note"].str.contains("constant").all()
