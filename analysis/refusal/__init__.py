"""Refusal: rates, and comparisons of persona groups in which the persona, not the generation, is the unit.

* :mod:`analysis.refusal.rates`: refusal rates pooled over generations with Wilson CIs (:func:`refusal_rates`,
  :func:`refusal_rates_by_factor`) and summarised over personas (:func:`persona_refusal_rates`);
* :mod:`analysis.refusal.comparisons`: gender gaps (:func:`gender_gaps`) and refusal against the no-persona
  baseline (:func:`refusal_vs_baseline`), tested with Welch's t over persona rates by default (the
  two-proportion z-test over generations, :func:`two_proportion_ztest`, finds gaps that do not exist when
  personas differ), and Benjamini–Hochberg across a table (:func:`benjamini_hochberg`).

Their docstrings give the formulas, the choices and numbered references.
"""

from analysis.refusal.comparisons import (
    FEW_PERSONAS,
    benjamini_hochberg,
    gender_gaps,
    refusal_vs_baseline,
    two_proportion_ztest,
    welch_test,
)
from analysis.refusal.rates import (
    DEFAULT_REFUSAL_FACTORS,
    persona_refusal_rates,
    refusal_rates,
    refusal_rates_by_factor,
)

__all__ = [
    "DEFAULT_REFUSAL_FACTORS",
    "FEW_PERSONAS",
    "benjamini_hochberg",
    "gender_gaps",
    "persona_refusal_rates",
    "refusal_rates",
    "refusal_rates_by_factor",
    "refusal_vs_baseline",
    "two_proportion_ztest",
    "welch_test",
]
