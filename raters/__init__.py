"""Judges: the rater protocol and registry, typed ratings, rubrics, LLM and classifier judges, panel aggregation.

Built-in rater kinds (``tribunal raters list``):

* ``llm`` (:mod:`raters.llm_judge`): an LLM judge on any backend, schema-constrained JSON or a logprob scale;
  with ``rubric: refusal`` it is the LLM refusal detector;
* ``refusal-patterns`` (:mod:`raters.refusal_patterns`): English and Chinese refusal phrases;
* ``profanity-check`` (:mod:`raters.profanity`): alt-profanity-check's classifier;
* ``prototype`` (:mod:`raters.prototype`): nearest labelled examples in MiniLM embedding space;
* ``hf-classifier`` (:mod:`raters.hf_classifier`): any local Hugging Face text-classification model.

Third-party raters subclass :class:`Rater` and register with :func:`register_rater`, the entry-point group
``tribunal.raters`` or ``kind: module:Class`` in a config. Rubrics are YAML data in ``raters/rubrics/``.
"""

from raters.aggregate import Aggregate, aggregate
from raters.base import Rater
from raters.panel import Panel, PanelError, build_panel
from raters.registry import ENTRY_POINT_GROUP, available_raters, create_rater, rater_class, register_rater
from raters.rubric import Rubric, builtin_rubrics, load_rubric
from raters.types import Framing, RaterIdentity, Rating, RatingItem, RatingOutcome, rating_key

__all__ = [
    "ENTRY_POINT_GROUP",
    "Aggregate",
    "Framing",
    "Panel",
    "PanelError",
    "Rater",
    "RaterIdentity",
    "Rating",
    "RatingItem",
    "RatingOutcome",
    "Rubric",
    "aggregate",
    "available_raters",
    "build_panel",
    "builtin_rubrics",
    "create_rater",
    "load_rubric",
    "rater_class",
    "rating_key",
    "register_rater",
]
