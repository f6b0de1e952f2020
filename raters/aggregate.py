"""Combining a panel's ratings per item and dimension.

Only scored ratings take part: a rater that timed out, refused or answered unparseably is counted in
``n_raters`` but not in ``n_scored``, and never decides. Methods:

``mean`` / ``median``
    of the scored raters' 0–1 scores.
``majority``
    1.0 when a strict majority of the scored raters score at or above ``threshold``, 0.0 when a strict majority
    score below it; a tie has no verdict (``outcome = "tie"``, ``score = None``), never a decision by list order.

An aggregate with no scored rater has ``outcome = "no_scores"`` and no score.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from raters.types import Rating, RatingOutcome

Method = Literal["mean", "median", "majority"]


class Aggregate(BaseModel):
    """The panel's verdict on one item along one dimension."""

    model_config = ConfigDict(frozen=True)

    item_key: str
    dimension: str
    method: Method
    score: float | None = Field(None, ge=0.0, le=1.0)
    outcome: Literal["scored", "no_scores", "tie"]
    n_raters: int = Field(ge=0, description="raters that returned a rating, scored or not")
    n_scored: int = Field(ge=0, description="raters whose rating is a score; only these decide")
    raters_scored: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _score_iff_scored(self) -> Aggregate:
        if (self.outcome == "scored") != (self.score is not None):
            raise ValueError("an aggregate has a score exactly when its outcome is 'scored'")
        return self


def aggregate(ratings: Iterable[Rating], method: Method = "mean", threshold: float = 0.5) -> list[Aggregate]:
    """Aggregate ratings per (item, dimension), in order of first appearance.

    Args:
        ratings: ratings of any raters, items and dimensions.
        method: ``mean``, ``median`` or ``majority``.
        threshold: for ``majority``, the score at or above which a rater says yes.

    Returns:
        One :class:`Aggregate` per (item, dimension).
    """
    groups: dict[tuple[str, str], list[Rating]] = {}
    names: dict[int, str] = {}  # the string form of each rater identity, rendered once
    for rating in ratings:
        key = (rating.item_key, rating.dimension)
        group = groups.get(key)
        if group is None:
            groups[key] = [rating]
        else:
            group.append(rating)
        if id(rating.rater) not in names:
            names[id(rating.rater)] = str(rating.rater)
    scored_outcome = RatingOutcome.SCORED
    out = []
    for (item_key, dimension), group in groups.items():
        scored = [r for r in group if r.outcome == scored_outcome and r.score is not None]
        scores = [r.score for r in scored if r.score is not None]
        score: float | None = None
        outcome: Literal["scored", "no_scores", "tie"] = "scored"
        if not scores:
            outcome = "no_scores"
        elif method == "mean":
            score = math.fsum(scores) / len(scores)  # statistics.fmean's own formula, without its call overhead
        elif method == "median":
            score = float(statistics.median(scores))
        elif method == "majority":
            yes = sum(s >= threshold for s in scores)
            no = len(scores) - yes
            if yes == no:
                outcome = "tie"
            else:
                score = 1.0 if yes > no else 0.0
        else:
            raise ValueError(f"unknown aggregation method {method!r}; use mean, median or majority")
        out.append(
            Aggregate(
                item_key=item_key,
                dimension=dimension,
                method=method,
                score=score,
                outcome=outcome,
                n_raters=len({names[id(r.rater)] for r in group}),
                n_scored=len(scores),
                raters_scored=tuple(names[id(r.rater)] for r in scored),
            )
        )
    return out
