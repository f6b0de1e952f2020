"""Study reports: recognise which study a run reproduces and compute that study's headline figures.

Modules:

* :mod:`analysis.studies.detection`: which study a run is (named in its config, or inferred from its data; the
  rules are in that module's docstring): :func:`study_detection`, :func:`detect_study`, :func:`read_run_config`;
* one module per study, each with its headline tables (``TABLES``, described in ``DESCRIPTIONS``), the function
  computing them and the study's figure: :mod:`analysis.studies.persona_toxicity` (after Deshpande et al. 2023),
  :mod:`analysis.studies.value_inertia`, :mod:`analysis.studies.ptp` (PolygloToxicityPrompts, Jain et al. 2024)
  and :mod:`analysis.studies.demo_safetybench` (its prompt-level tables, judges framed by each DICES sample's
  profile beside the humans, in :mod:`analysis.studies.demo_profiles`);
* :mod:`analysis.studies.headline`: :func:`study_headline` and :func:`headline_figure`, dispatching to the study;
* :mod:`analysis.studies.common`: what the study modules share (the toxicity dimension, coverage wording).

Every headline table that cannot be computed is replaced by a note saying why, in ``headline_notes``.
"""

from analysis.studies.common import MORAL_FOUNDATIONS, pick_toxicity_dimension
from analysis.studies.detection import (
    STUDIES,
    STUDY_TITLES,
    StudyDetection,
    detect_study,
    read_run_config,
    study_detection,
)
from analysis.studies.headline import HEADLINE_DESCRIPTIONS, STUDY_TABLES, headline_figure, study_headline
from analysis.studies.value_inertia import MORAL_PROBE_KIND

__all__ = [
    "HEADLINE_DESCRIPTIONS",
    "MORAL_FOUNDATIONS",
    "MORAL_PROBE_KIND",
    "STUDIES",
    "STUDY_TABLES",
    "STUDY_TITLES",
    "StudyDetection",
    "detect_study",
    "headline_figure",
    "pick_toxicity_dimension",
    "read_run_config",
    "study_detection",
    "study_headline",
]
