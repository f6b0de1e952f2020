"""Fleiss' and Cohen's kappa against a textbook example and statsmodels (:mod:`analysis.agreement.kappa`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import cohen_kappa_pairs, fleiss_kappa
from analysis.agreement import fleiss_kappa_from_table
from tests.analysis.agreement.reference import long_from_matrix

# Fleiss (1971) as worked on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_kappa_textbook_example():
    rows = []
    for subject, counts in enumerate(FLEISS_TABLE):
        labels = np.repeat(np.arange(1, 6), counts)
        rows += [{"subject": subject, "rater": r, "category": c} for r, c in enumerate(labels)]
    data = pd.DataFrame(rows)
    assert round(fleiss_kappa(data, "subject", "rater", "category"), 3) == 0.210
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    assert fleiss_kappa(data, "subject", "rater", "category") == pytest.approx(sm_fleiss(FLEISS_TABLE), abs=1e-12)
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa(data.iloc[1:], "subject", "rater", "category")


def test_cohen_kappa_pairs_matches_statsmodels():
    from statsmodels.stats.inter_rater import cohens_kappa

    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 300)
    y = np.stack([np.where(rng.random(300) < 0.7, truth, rng.integers(0, 3, 300)) for _ in range(3)], axis=1)
    data = long_from_matrix(y.astype(float), "u", "r", "c")
    pairs = cohen_kappa_pairs(data, "u", "r", "c")
    assert len(pairs) == 3 and list(pairs.columns) == ["rater_a", "rater_b", "n", "kappa"]
    for row in pairs.itertuples():
        table = pd.crosstab(y[:, row.rater_a], y[:, row.rater_b]).to_numpy()
        assert row.kappa == pytest.approx(cohens_kappa(table).kappa, abs=1e-12)
        w = cohen_kappa_pairs(data, "u", "r", "c", weights="linear")
        assert w.loc[row.Index, "kappa"] == pytest.approx(cohens_kappa(table, wt="linear").kappa, abs=1e-12)


def test_fleiss_kappa_units_keyword_and_the_deprecated_subjects_keyword():
    data = pd.DataFrame({"item": [1, 1, 2, 2, 3, 3], "rater": ["a", "b"] * 3, "label": [0, 0, 1, 1, 0, 1]})
    expected = fleiss_kappa(data, "item", "rater", "label")
    assert fleiss_kappa(data, units="item", raters="rater", ratings="label") == expected
    with pytest.warns(DeprecationWarning, match=r"fleiss_kappa\(subjects=\.\.\.\) is deprecated"):
        assert fleiss_kappa(data, subjects="item", raters="rater", ratings="label") == expected
    assert fleiss_kappa_from_table(np.array([[2, 0], [0, 2], [1, 1]])) == pytest.approx(expected)


def test_docstring_examples_run():
    import doctest

    import analysis.agreement.kappa as module

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted and not result.failed


def test_kappas_drop_and_count_rows_without_a_unit_id():
    # Rater "a" never rated unit 5; the label of a row by "b" without a unit id must not fill that cell.
    data = pd.DataFrame(
        {
            "u": [1.0, 1, 2, 2, 3, 3, 4, 4, 5, np.nan],
            "r": ["a", "b"] * 4 + ["b", "b"],
            "c": ["x", "x", "y", "y", "x", "y", "y", "y", "x", "y"],
        }
    )
    clean = data[data["u"].notna()]
    pairs = cohen_kappa_pairs(data, "u", "r", "c")
    expected = cohen_kappa_pairs(clean, "u", "r", "c")
    assert pairs.equals(expected) and pairs.loc[0, "n"] == 4
    assert pairs.attrs["n_dropped_missing_id"] == 1 and expected.attrs["n_dropped_missing_id"] == 0
    # Fleiss' kappa: the unit-less rating must not be counted in another unit.
    complete = data[data["u"].isin([1, 2, 3, 4]) | data["u"].isna()]
    assert fleiss_kappa(complete, "u", "r", "c") == pytest.approx(
        fleiss_kappa(complete.dropna(), "u", "r", "c"), abs=1e-12
    )
    strings = complete.assign(u=complete["u"].map({1.0: "p", 2.0: "q", 3.0: "s", 4.0: "t"}))
    assert fleiss_kappa(strings, "u", "r", "c") == pytest.approx(fleiss_kappa(complete.dropna(), "u", "r", "c"))
