"""A run's study headline: the study's tables (:func:`study_headline`) and its figure (:func:`headline_figure`).

Both dispatch on the study (:mod:`analysis.studies.detection`) to the study's own module, which computes its
tables and draws its figure; this module puts the ``study`` row first, keeps the study's table order and collects
the ``headline_notes``.
"""

from __future__ import annotations

import pandas as pd

from analysis.figures import Figure
from analysis.io import AnalysisFrame, RunTables, analysis_frame
from analysis.notes import Notes
from analysis.studies import demo_safetybench, persona_toxicity, ptp, value_inertia
from analysis.studies.demo_safetybench import demo_safetybench_figure, demo_safetybench_headline
from analysis.studies.detection import STUDIES, STUDY_TITLES, StudyDetection, study_detection
from analysis.studies.persona_toxicity import persona_toxicity_figure, persona_toxicity_headline
from analysis.studies.ptp import ptp_figure, ptp_headline
from analysis.studies.value_inertia import value_inertia_figure, value_inertia_headline

__all__ = ["HEADLINE_DESCRIPTIONS", "STUDY_TABLES", "headline_figure", "study_headline"]

#: The headline tables of each study, in the order the report shows them.
STUDY_TABLES: dict[str, tuple[str, ...]] = {
    "persona_toxicity": persona_toxicity.TABLES,
    "value_inertia": value_inertia.TABLES,
    "ptp_multilingual": ptp.TABLES,
    "demo_safetybench": demo_safetybench.TABLES,
}
#: What each headline table shows, one or two sentences for the report.
HEADLINE_DESCRIPTIONS: dict[str, str] = {
    **persona_toxicity.DESCRIPTIONS,
    **value_inertia.DESCRIPTIONS,
    **ptp.DESCRIPTIONS,
    **demo_safetybench.DESCRIPTIONS,
}


def study_headline(
    tables: RunTables,
    study: str | None = "auto",
    *,
    frame: AnalysisFrame | None = None,
    toxicity_dimension: str | None = None,
    threshold: float = 0.5,
    n_boot: int = 200,
    seed: int = 0,
    detect_on: RunTables | None = None,
) -> dict[str, pd.DataFrame]:
    """The headline tables of a run's study.

    Args:
        tables: The run's tables (:func:`analysis.io.load_run`).
        study: ``"auto"`` to detect it (:func:`analysis.studies.study_detection`), one of
            :data:`analysis.studies.STUDIES`, or ``None`` for none.
        frame: The run's :func:`analysis.io.analysis_frame`, when the caller has it already (it is not modified).
        toxicity_dimension: The toxicity dimension (default: the first rated dimension containing "tox").
        threshold: Toxicity threshold of the toxicity probability.
        n_boot: Bootstrap replicates of the amplification CIs.
        seed: Bootstrap seed.
        detect_on: The tables the study is recognised from, when they differ from ``tables`` (the analysis passes
            all of the run's ratings here and the trusted judges' as ``tables``).

    Returns:
        An ordered dict: ``study`` (one row: ``study, title, detected_from, reason, coverage``), then the study's
        ``headline_*`` tables that could be computed (in :data:`STUDY_TABLES` order), then ``headline_notes``
        (``table, reason``) when a headline table is missing or partial.

    Raises:
        ValueError: ``study`` is not ``"auto"``, ``None`` or one of :data:`analysis.studies.STUDIES`.
    """
    if study == "auto":
        detection = study_detection(detect_on if detect_on is not None else tables)
    elif study is None or study in STUDIES:
        detection = StudyDetection(study, "argument", "given by the caller" if study else "none requested")
    else:
        raise ValueError(f"unknown study {study!r}; choose one of {', '.join(STUDIES)}")
    af = frame if frame is not None else analysis_frame(tables)
    notes = Notes()
    out: dict[str, pd.DataFrame] = {}
    coverage = ""
    if detection.study == "persona_toxicity":
        coverage = persona_toxicity_headline(tables, af, out, notes, toxicity_dimension, n_boot, seed)
    elif detection.study == "value_inertia":
        coverage = value_inertia_headline(tables, af, out, notes)
    elif detection.study == "ptp_multilingual":
        coverage = ptp_headline(tables, af, out, notes, toxicity_dimension, threshold)
    elif detection.study == "demo_safetybench":
        coverage = demo_safetybench_headline(tables, af, out, notes)
    head = {
        "study": pd.DataFrame(
            [
                {
                    "study": detection.study,
                    "title": STUDY_TITLES.get(detection.study or "", ""),
                    "detected_from": detection.source,
                    "reason": detection.reason,
                    "coverage": coverage,
                }
            ]
        )
    }
    order = STUDY_TABLES.get(detection.study or "", ())
    head.update({name: out[name] for name in order if name in out})
    if len(notes):
        head["headline_notes"] = notes.frame()
    return head


def headline_figure(tables: dict[str, pd.DataFrame]) -> Figure | None:
    """The study's headline figure as (title, base64 PNG or ``None``, caption); ``None`` when there is no study.

    ``tables`` is the output of :func:`study_headline` (or of :func:`analysis.tables.analyze_tables`).
    """
    info = tables.get("study")
    if info is None or not len(info) or info["study"].iloc[0] is None:
        return None
    study = info["study"].iloc[0]
    coverage = str(info["coverage"].iloc[0] or "")
    if study == "persona_toxicity":
        return persona_toxicity_figure(tables, coverage)
    if study == "value_inertia":
        return value_inertia_figure(tables, coverage)
    if study == "ptp_multilingual":
        return ptp_figure(tables, coverage)
    return demo_safetybench_figure(tables, coverage)
