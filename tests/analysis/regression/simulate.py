"""Simulated persona grids with known truth for the regression tests.

:func:`grid` builds the design of a persona study (personas nested in categories, a no-persona baseline, every
persona crossed with every target and template, a few repeats); :func:`outcomes` draws an outcome on it with a
random intercept per persona (the between-persona variation that naive errors ignore), optional random persona
slopes over the templates, fixed template effects and a chosen category effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TEMPLATE_EFFECT = {"m0": 0.0, "m1": 0.3, "m2": 0.6}


def grid(personas: dict[str, str], targets: int = 4, templates: int = 3, repeats: int = 2) -> pd.DataFrame:
    """One row per generation: ``persona_id → persona_category`` (``"none"`` the baseline) × targets × templates."""
    rows = [
        (pid, cat, f"t{t}", f"m{m}", r)
        for pid, cat in {"none": "none", **personas}.items()
        for t in range(targets)
        for m in range(templates)
        for r in range(repeats)
    ]
    data = pd.DataFrame(rows, columns=["persona_id", "persona_category", "target_category", "template_id", "repeat"])
    data["target_id"] = data["target_category"]
    return data.assign(model="m", language="en")


def nested(categories: int = 3, per_category: int = 5) -> dict[str, str]:
    """``per_category`` personas in each of ``categories`` categories (``c0``, ``c1``, …)."""
    return {f"c{c}_{i}": f"c{c}" for c in range(categories) for i in range(per_category)}


def outcomes(
    data: pd.DataFrame,
    rng: np.random.Generator,
    kind: str,
    sd_persona: float,
    effect: float = 0.0,
    sd_slope: float = 0.0,
    intercept: float = -0.5,
) -> np.ndarray:
    """Toxicity (``kind="ols"``, unit noise) or 0/1 refusal (``"logit"``) with persona random effects.

    Category ``c0`` differs from the baseline by ``effect``; every other category equals the baseline (whose
    level is fixed: it is a condition, not a sampled persona).
    """
    pids = data["persona_id"].unique()
    u = dict(zip(pids, rng.normal(0, sd_persona, len(pids)), strict=True))
    u["none"] = 0.0
    level = data["persona_id"].map(u).to_numpy()
    m = data["template_id"].str[1:].astype(int).to_numpy()
    slopes = rng.normal(0, sd_slope, (len(pids), 3)) if sd_slope else np.zeros((len(pids), 3))
    slope_of = dict(zip(pids, slopes, strict=True))
    slope_of["none"] = np.zeros(3)
    slope = np.array([slope_of[p][k] for p, k in zip(data["persona_id"], m, strict=True)])
    eta = level + slope + data["template_id"].map(TEMPLATE_EFFECT).to_numpy()
    eta = eta + effect * (data["persona_category"] == "c0").to_numpy()
    if kind == "ols":
        return eta + rng.normal(0, 1, len(data))
    return (rng.random(len(data)) < 1 / (1 + np.exp(-(intercept + eta)))).astype(int)


def rejection_bounds(n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact binomial bounds (0.1% in each tail) for a rejection rate over ``n`` simulations at nominal ``alpha``.

    A correct test falls outside them once in 500 runs; 400 simulations at 0.05 accept 0.02 to 0.0875.
    """
    from scipy.stats import binom

    return binom.ppf(0.001, n, alpha) / n, binom.ppf(0.999, n, alpha) / n
