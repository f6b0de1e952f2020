"""Known truth for the refusal logit: under no category effect the CR2 test holds its level although personas
have random intercepts on the logit scale (where model-based errors over-reject); a real effect is found."""

from __future__ import annotations

import numpy as np

from analysis.regression import fit_persona_model
from tests.analysis.regression.simulate import grid, nested, outcomes, rejection_bounds

TERM = "persona[T.c0]"


def _simulate(data, n_sim, seed, effect=0.0, sd_persona=1.0, **kwargs):
    rng = np.random.default_rng(seed)
    reject, covered = [], []
    for _ in range(n_sim):
        y = outcomes(data, rng, "logit", sd_persona, effect=effect)
        row = fit_persona_model(data.assign(refusal=y), "refusal", "logit", **kwargs).set_index("term").loc[TERM]
        reject.append(row["pval"] < 0.05)
        covered.append(row["ci_low"] <= effect <= row["ci_high"])
    return np.mean(reject), np.mean(covered)


def test_no_category_effect_rejects_at_the_nominal_rate():
    """15 personas in 3 categories, persona intercepts with SD 1 on the logit scale, 24 generations each."""
    rate, _ = _simulate(grid(nested(3, 5)), 400, seed=11)
    low, high = rejection_bounds(400)
    assert low <= rate <= high, rate


def test_model_based_errors_over_reject_on_the_same_data():
    rate, _ = _simulate(grid(nested(3, 5)), 200, seed=11, cluster=None)
    assert rate > 0.1, rate


def test_a_real_category_effect_is_found_and_covered():
    rate, coverage = _simulate(grid(nested(3, 5), repeats=4), 200, seed=12, effect=1.5, sd_persona=0.5)
    assert rate > 0.7, rate
    low, high = rejection_bounds(200)
    assert 1 - high <= coverage <= 1 - low, coverage
