"""Demographic sensitivity and group-fairness gaps (:mod:`analysis.demographics`)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import demographic_parity_difference, demographic_sensitivity, equalized_odds_difference


def test_demographic_sensitivity_toy():
    data = pd.DataFrame(
        {
            "item": [1, 1, 1, 2, 2, 1, 1, 3],
            "attr": ["gender", "gender", "gender", "gender", "gender", "age", "age", "age"],
            "value": ["f", "m", "nb", "f", "m", "young", "old", "young"],
            "rater": ["j"] * 8,
            "p": [0.2, 0.5, 0.3, 0.6, 0.6, 0.1, 0.4, 0.9],
        }
    )
    ds = demographic_sensitivity(data, "item", "p", "attr", "value", "rater").set_index("attribute")
    # gender: item 1 spread .3, item 2 spread 0 -> .15; age: item 1 spread .3 (item 3 has one framing) -> .3.
    assert ds.loc["gender", "ds"] == pytest.approx(0.15) and ds.loc["gender", "n_items"] == 2
    assert ds.loc["age", "ds"] == pytest.approx(0.3) and ds.loc["age", "n_items"] == 1
    assert ds.loc["ALL", "ds"] == pytest.approx(0.225)


def test_group_fairness_gaps():
    data = pd.DataFrame(
        {
            "group": ["a"] * 4 + ["b"] * 4,
            "pred": [0.9, 0.8, 0.2, 0.1, 0.9, 0.1, 0.1, 0.1],
            "gold": [1, 1, 0, 0, 1, 1, 0, 0],
        }
    )
    # positive rate a .5, b .25; TPR a 1, b .5; FPR a 0, b 0.
    assert demographic_parity_difference(data, "group", "pred") == pytest.approx(0.25)
    assert equalized_odds_difference(data, "group", "pred", "gold") == pytest.approx(0.5)
    by = equalized_odds_difference(data.assign(r="x"), "group", "pred", "gold", by="r")
    assert by.loc[0, "tpr_gap"] == pytest.approx(0.5) and by.loc[0, "fpr_gap"] == pytest.approx(0.0)
