"""Krippendorff's alpha against the 2011 worked example and the krippendorff package
(:mod:`analysis.agreement.krippendorff`)."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

import analysis.agreement.krippendorff as krippendorff_mod
from analysis import krippendorff_alpha
from tests.analysis.agreement.reference import long_from_matrix

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", reliability data with missing values:
# 4 observers × 12 units.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
    ]
)


@pytest.fixture
def kripp_long():
    return long_from_matrix(KRIPPENDORFF_2011.T, "unit", "coder", "value")


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("interval", 0.849), ("ordinal", 0.815), ("ratio", 0.797)]
)
def test_krippendorff_2011_example(kripp_long, level, published):
    value = krippendorff_alpha(kripp_long, "unit", "coder", "value", level=level)
    assert round(value, 3) == published
    assert value == pytest.approx(krippendorff.alpha(KRIPPENDORFF_2011, level_of_measurement=level), abs=1e-12)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_large_path_matches_package(monkeypatch, level):
    rng = np.random.default_rng(7)
    truth = rng.integers(1, 6, 400)
    y = np.clip(truth[None, :] + rng.integers(-1, 2, (5, 400)), 1, 5).astype(float)
    y[rng.random(y.shape) < 0.2] = np.nan
    data = long_from_matrix(y.T, "u", "c", "v")
    expected = krippendorff.alpha(y, level_of_measurement=level)
    monkeypatch.setattr(krippendorff_mod, "_DENSE_CELLS", 0)  # force the sparse / closed-form path
    assert krippendorff_alpha(data, "u", "c", "v", level=level) == pytest.approx(expected, abs=1e-12)


def test_krippendorff_continuous_interval_closed_form():
    rng = np.random.default_rng(8)
    y = rng.random((3, 2000))[:, :] * 0.3 + rng.random(2000)
    y[rng.random(y.shape) < 0.1] = np.nan
    data = long_from_matrix(y.T, "u", "c", "v")
    sub = y[:, :200]
    expected = krippendorff.alpha(sub, level_of_measurement="interval")
    got = krippendorff_alpha(data[data["u"] < 200], "u", "c", "v")
    assert got == pytest.approx(expected, abs=1e-10)
    assert 0 < krippendorff_alpha(data, "u", "c", "v") < 1


def test_krippendorff_bootstrap_and_errors(kripp_long):
    res = krippendorff_alpha(kripp_long, "unit", "coder", "value", bootstrap=200, seed=1)
    assert res.ci_low <= res.alpha <= res.ci_high and res.n_boot == 200
    again = krippendorff_alpha(kripp_long, "unit", "coder", "value", bootstrap=200, seed=1)
    assert again == res
    with pytest.raises(ValueError, match="twice"):
        krippendorff_alpha(pd.concat([kripp_long, kripp_long.head(1)]), "unit", "coder", "value")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(kripp_long, "unit", "coder", "value", level="cardinal")
    constant = kripp_long.assign(value=1.0)
    with pytest.raises(ValueError, match="distinct values"):
        krippendorff_alpha(constant, "unit", "coder", "value")


def test_docstring_examples_run():
    import doctest

    import analysis.agreement.krippendorff as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed


def test_krippendorff_ignores_rows_without_a_unit_or_rater_id(kripp_long):
    expected = krippendorff_alpha(kripp_long, "unit", "coder", "value")
    stray = pd.DataFrame({"unit": [np.nan, 3.0], "coder": [0.0, np.nan], "value": [5.0, 1.0]})
    dirty = pd.concat([kripp_long.astype({"unit": float, "coder": float}), stray], ignore_index=True)
    assert krippendorff_alpha(dirty, "unit", "coder", "value") == pytest.approx(expected, abs=1e-12)


def test_krippendorff_bootstrap_ignores_unused_unit_categories(kripp_long):
    expected = krippendorff_alpha(kripp_long, "unit", "coder", "value", bootstrap=200, seed=3)
    cat = kripp_long.assign(unit=pd.Categorical(kripp_long["unit"], categories=range(40)))
    assert krippendorff_alpha(cat, "unit", "coder", "value", bootstrap=200, seed=3) == expected
