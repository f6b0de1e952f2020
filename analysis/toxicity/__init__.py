"""Toxicity: the prompted-toxicity metrics, the scales they need, and persona amplification over the baseline.

* :mod:`analysis.toxicity.prompted`: expected maximum toxicity, toxicity probability and average toxicity
  (Gehman et al. 2020; Jain et al. 2024; :func:`ptp_metrics`), and the kinds of scale a rating can be on
  (:func:`scale_kind`, :func:`rating_scales`, :func:`mixed_scales_reason`): the metrics need probability-like
  scores, so they are left out of an aggregate that mixes kinds;
* :mod:`analysis.toxicity.ptp_intervals`: their confidence intervals, the prompt being the unit (:func:`ptp_table`),
  and paired differences between models on the same prompts (:func:`ptp_differences`);
* :mod:`analysis.toxicity.scorers`: the one probability scorer of those metrics (:func:`choose_scorer`), the
  languages it was trained on (:func:`scorer_languages`) and each language's resource class
  (:func:`language_resources`);
* :mod:`analysis.toxicity.amplification`: toxicity of each persona, category or category × valence over the
  no-persona baseline (after Deshpande et al. 2023; :func:`toxicity_amplification`), with bootstrap CIs that
  resample personas as well as prompts when a group holds several personas.

Their docstrings give the formulas, the choices and numbered references.
"""

from analysis.toxicity.amplification import FEW_CLUSTERS, toxicity_amplification
from analysis.toxicity.prompted import SCALE_KINDS, mixed_scales_reason, ptp_metrics, rating_scales, scale_kind
from analysis.toxicity.ptp_intervals import ptp_differences, ptp_table
from analysis.toxicity.scorers import (
    KNOWN_SCORER_LANGUAGES,
    choose_scorer,
    language_resources,
    scorer_languages,
)

__all__ = [
    "FEW_CLUSTERS",
    "KNOWN_SCORER_LANGUAGES",
    "SCALE_KINDS",
    "choose_scorer",
    "language_resources",
    "mixed_scales_reason",
    "ptp_differences",
    "ptp_metrics",
    "ptp_table",
    "rating_scales",
    "scale_kind",
    "scorer_languages",
    "toxicity_amplification",
]
