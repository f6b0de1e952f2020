"""Toxicity: the prompted-toxicity metrics, the scales they need, and persona amplification over the baseline.

* :mod:`analysis.toxicity.prompted`: expected maximum toxicity, toxicity probability and average toxicity
  (Gehman et al. 2020; Jain et al. 2024; :func:`ptp_metrics`), and the kinds of scale a rating can be on
  (:func:`scale_kind`, :func:`rating_scales`, :func:`mixed_scales_reason`): the metrics need probability-like
  scores, so they are left out of an aggregate that mixes kinds;
* :mod:`analysis.toxicity.amplification`: toxicity of each persona, category or category × valence over the
  no-persona baseline (after Deshpande et al. 2023; :func:`toxicity_amplification`), with bootstrap CIs that
  resample personas as well as prompts when a group holds several personas.

Their docstrings give the formulas, the choices and numbered references.
"""

from analysis.toxicity.amplification import FEW_CLUSTERS, toxicity_amplification
from analysis.toxicity.prompted import SCALE_KINDS, mixed_scales_reason, ptp_metrics, rating_scales, scale_kind

__all__ = [
    "FEW_CLUSTERS",
    "SCALE_KINDS",
    "mixed_scales_reason",
    "ptp_metrics",
    "rating_scales",
    "scale_kind",
    "toxicity_amplification",
]
