"""``aggregate`` gives exactly the verdicts of its plain formulation (issue #19 rewrote its loop for speed).

The reference below is the function as it stood before (``statistics.fmean``, ``Rating.scored``, one pass per
group); on random panels (repeated raters, unscored outcomes, several items and dimensions, every method) both
return equal :class:`Aggregate` records, floats compared exactly.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable

import pytest

from raters import RaterIdentity, Rating, RatingOutcome, aggregate
from raters.aggregate import Aggregate


def reference(ratings: Iterable[Rating], method: str = "mean", threshold: float = 0.5) -> list[Aggregate]:
    groups: dict[tuple[str, str], list[Rating]] = {}
    for rating in ratings:
        groups.setdefault((rating.item_key, rating.dimension), []).append(rating)
    out = []
    for (item_key, dimension), group in groups.items():
        scored = [r for r in group if r.scored and r.score is not None]
        scores = [r.score for r in scored if r.score is not None]
        score, outcome = None, "scored"
        if not scores:
            outcome = "no_scores"
        elif method == "mean":
            score = statistics.fmean(scores)
        elif method == "median":
            score = float(statistics.median(scores))
        else:
            yes = sum(s >= threshold for s in scores)
            if yes == len(scores) - yes:
                outcome = "tie"
            else:
                score = 1.0 if yes > len(scores) - yes else 0.0
        out.append(
            Aggregate(
                item_key=item_key,
                dimension=dimension,
                method=method,
                score=score,
                outcome=outcome,
                n_raters=len({str(r.rater) for r in group}),
                n_scored=len(scores),
                raters_scored=tuple(str(r.rater) for r in scored),
            )
        )
    return out


def panel(rng: random.Random) -> list[Rating]:
    raters = [RaterIdentity(name=f"r{i}", kind="llm", model=f"m{i % 2}") for i in range(rng.randint(1, 5))]
    ratings = []
    for item in range(rng.randint(1, 6)):
        for dimension in rng.sample(["toxicity", "insult", "refusal"], rng.randint(1, 3)):
            for rater in rng.choices(raters, k=rng.randint(1, 6)):  # a rater may rate an item twice
                outcome = rng.choice([RatingOutcome.SCORED] * 3 + list(RatingOutcome))
                score = rng.choice([0.0, 0.25, 0.5, 1.0, rng.random()]) if outcome == RatingOutcome.SCORED else None
                ratings.append(
                    Rating(item_key=f"g{item}", rater=rater, dimension=dimension, score=score, outcome=outcome)
                )
    rng.shuffle(ratings)
    return ratings


@pytest.mark.parametrize("method", ["mean", "median", "majority"])
def test_aggregate_equals_its_plain_formulation(method: str) -> None:
    rng = random.Random(method)
    for _ in range(300):
        ratings = panel(rng)
        threshold = rng.choice([0.5, 0.3, 1.0])
        assert aggregate(ratings, method, threshold) == reference(ratings, method, threshold)  # type: ignore[arg-type]


def test_an_unknown_method_fails_only_when_there_is_something_to_aggregate() -> None:
    assert aggregate([], "mode") == []  # type: ignore[arg-type]
    scored = [r for r in panel(random.Random(1)) if r.scored]
    with pytest.raises(ValueError, match="unknown aggregation method 'mode'"):
        aggregate(scored, "mode")  # type: ignore[arg-type]
