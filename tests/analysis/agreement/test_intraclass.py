"""ICC against published values and pingouin (:mod:`analysis.agreement.intraclass`)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from analysis import icc
from tests.analysis.agreement.reference import SHROUT_FLEISS, SHROUT_FLEISS_ICC, long_from_matrix, pingouin_icc


def test_icc_shrout_fleiss_published_values():
    res = icc(long_from_matrix(SHROUT_FLEISS), "target", "judge", "score").set_index("Type")
    assert list(res.columns) == ["Description", "ICC", "F", "df1", "df2", "pval", "CI95"]
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
