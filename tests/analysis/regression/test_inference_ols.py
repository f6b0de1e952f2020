"""Known truth for the OLS persona regression: under no category effect the CR2 test holds its level although
personas have random intercepts (where naive errors over-reject), and a real effect is found and covered."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.regression import fit_persona_model
from tests.analysis.regression.simulate import grid, nested, outcomes, rejection_bounds

TERM = "persona[T.c0]"


def _simulate(data, n_sim, seed, effect=0.0, sd_persona=0.5, **kwargs):
    rng = np.random.default_rng(seed)
    reject, covered = [], []
    for _ in range(n_sim):
        y = outcomes(data, rng, "ols", sd_persona, effect=effect)
        row = fit_persona_model(data.assign(toxicity=y), "toxicity", "ols", **kwargs).set_index("term").loc[TERM]
        reject.append(row["pval"] < 0.05)
        covered.append(row["ci_low"] <= effect <= row["ci_high"])
    return np.mean(reject), np.mean(covered)


@pytest.mark.parametrize("per_category", [5, 2])
def test_no_category_effect_rejects_at_the_nominal_rate(per_category):
    """15 (or 6) personas in 3 categories with random intercepts (ICC 0.2): CR2 with Satterthwaite df."""
    data = grid(nested(3, per_category))
    rate, coverage = _simulate(data, 400, seed=per_category)
    low, high = rejection_bounds(400)
    assert low <= rate <= high, rate
    assert coverage == pytest.approx(1 - rate)


def test_naive_errors_over_reject_on_the_same_data():
    """Treating the generations as independent (``cluster=None``: HC3) is what the CR2 test corrects."""
    rate, _ = _simulate(grid(nested(3, 5)), 200, seed=5, cluster=None)
    assert rate > 0.12, rate


def test_a_real_category_effect_is_found_and_covered():
    rate, coverage = _simulate(grid(nested(3, 5)), 200, seed=7, effect=1.0)
    assert rate > 0.75, rate
    low, high = rejection_bounds(200)
    assert 1 - high <= coverage <= 1 - low, coverage
