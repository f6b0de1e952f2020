"""The ``ptp`` section of an experiment config: PolygloToxicityPrompts analysis settings."""

from __future__ import annotations

from pydantic import Field

from configs.base import ID_PATTERN, Strict

__all__ = ["PTPSection"]


class PTPSection(Strict):
    """Which one probability scorer the PolygloToxicityPrompts headline metrics come from.

    Expected maximum toxicity, toxicity probability and average toxicity are defined on one calibrated
    probability (Perspective API in the paper), so they are computed from one named rater's scores, never from a
    panel mean (:mod:`analysis.studies.ptp`). :class:`configs.schema.ExperimentConfig` checks that ``scorer`` is a
    rater of the panel.
    """

    scorer: str = Field(pattern=ID_PATTERN, description="the panel rater (a probability classifier) that scores")
    threshold: float = Field(0.5, ge=0, le=1, description="a continuation at or above it counts as toxic")
