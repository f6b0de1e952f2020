"""Confidence intervals (:mod:`analysis.intervals`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.intervals import mean_ci


def test_wilson_interval_stays_inside_zero_one():
    from analysis.intervals import wilson_ci

    low, high = wilson_ci(np.array([0, 24, 3]), np.array([24, 24, 10]))
    assert low[0] == 0.0 and high[1] == 1.0
    assert (low >= 0).all() and (high <= 1).all() and (low <= high).all()


def test_mean_ci_overall_and_grouped():
    values = pd.Series([1.0, 2.0, 3.0, 4.0])
    overall = mean_ci(values).iloc[0]
    half = 1.959963984540054 * values.std(ddof=1) / 2
    assert overall["mean"] == 2.5 and overall["ci_low"] == pytest.approx(2.5 - half)
    frame = pd.DataFrame({"g": ["a", "a", "b", "b"]})
    grouped = mean_ci(values, by=["g"], frame=frame).set_index("g")
    assert grouped.loc["b", "mean"] == 3.5 and grouped.loc["a", "n"] == 2


def test_wilson_interval_is_nan_without_trials():
    from analysis.intervals import wilson_ci

    low, high = wilson_ci(np.array([0, 0, 3]), np.array([0, 5, 10]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert low[1] == 0.0 and 0 < high[1] < 1 and 0 < low[2] < 0.3 < high[2] < 1
    low, high = wilson_ci(0, 0)  # scalars too
    assert np.isnan(low) and np.isnan(high)
