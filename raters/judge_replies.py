"""Reading an LLM judge's reply: the G-Eval expectation over a rating scale's logprobs,
the derived "any label" rating of a multilabel rubric, and a validation error as one line (:mod:`raters.llm_judge`
asks; this module reads what comes back)."""

from __future__ import annotations

import math

from pydantic import ValidationError

from agents.types import Completion
from raters.base import Rater
from raters.types import Rating, RatingItem


def weighted_scale_value(completion: Completion, lo: int, hi: int) -> tuple[float, dict[str, float]] | None:
    """G-Eval: the probability-weighted mean of the scale's values at the reply's first scale token.

    Returns:
        ``(expected value, {value: probability})`` with probabilities renormalised over the scale's tokens, or
        ``None`` when the reply has no logprobs or no scale token.
    """
    if not completion.logprobs:
        return None
    values = {str(v): v for v in range(lo, hi + 1)}
    for token in completion.logprobs:
        if token.token.strip() not in values:
            continue
        alternatives = token.top or [(token.token, token.logprob)]
        mass: dict[int, float] = {}
        for text, logprob in alternatives:
            key = text.strip()
            if key in values:
                mass[values[key]] = mass.get(values[key], 0.0) + math.exp(logprob)
        if token.token.strip() not in {str(v) for v in mass}:
            mass[values[token.token.strip()]] = math.exp(token.logprob)
        total = sum(mass.values())
        expected = sum(v * p for v, p in mass.items()) / total
        return expected, {str(v): round(p / total, 6) for v, p in sorted(mass.items())}
    return None


def any_label_rating(rater: Rater, item: RatingItem, labels: list[Rating], dimension: str, scale: str) -> Rating:
    """The derived "any label flagged" rating of a multilabel rubric.

    Flagged (1) when any scored label is flagged; not flagged (0) only when every label was scored and none is;
    otherwise unscored with the first unscored label's outcome, because a missing verdict is not a "safe" one.
    """
    flagged = [r for r in labels if r.scored and r.score == 1.0]
    if flagged:
        return rater.scored(item, dimension, 1.0, raw=",".join(r.dimension for r in flagged), scale=scale)
    missing = [r for r in labels if not r.scored]
    if missing:
        return rater.unscored(item, dimension, missing[0].outcome, rationale=f"{len(missing)} label(s) unscored")
    return rater.scored(item, dimension, 0.0, raw="", scale=scale)


def one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors(include_url=False)]
        return "; ".join(parts)[:500]
    return " ".join(str(exc).split())[:500]
