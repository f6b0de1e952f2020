"""Typed ratings and panel aggregation: an unscored rater never decides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from raters import RaterIdentity, Rating, RatingOutcome, aggregate, rating_key


def rating(rater: str, score: float | None, outcome: str = "scored", item: str = "g1") -> Rating:
    return Rating(
        item_key=item, rater=RaterIdentity(name=rater, kind="test"), dimension="toxicity", score=score, outcome=outcome
    )


def test_score_is_none_exactly_when_unscored():
    with pytest.raises(ValidationError, match="must have a score"):
        rating("a", None, "scored")
    with pytest.raises(ValidationError, match="must not have a score"):
        rating("a", 0.0, "parse_error")
    with pytest.raises(ValidationError):
        rating("a", 1.5)
    for outcome in RatingOutcome:
        if outcome != RatingOutcome.SCORED:
            assert rating("a", None, outcome).score is None


def test_rating_keys_depend_on_item_rater_and_dimension():
    a = RaterIdentity(name="a", kind="llm", model="m", rubric="toxicity", rubric_version="1")
    b = a.model_copy(update={"rubric_version": "2"})
    assert rating_key("g", a, "toxicity") != rating_key("g", b, "toxicity")
    assert rating_key("g", a, "toxicity") != rating_key("g", a, "insult")
    assert rating_key("g", a, "toxicity") == rating_key("g", str(a), "toxicity")


def test_unscored_raters_are_excluded_from_mean_and_median():
    ratings = [rating("a", None, "parse_error"), rating("b", 0.9), rating("c", 0.1), rating("d", None, "timeout")]
    [mean] = aggregate(ratings, "mean")
    assert mean.score == pytest.approx(0.5) and mean.n_raters == 4 and mean.n_scored == 2
    assert mean.raters_scored == ("b|test", "c|test")
    [median] = aggregate(ratings, "median")
    assert median.score == pytest.approx(0.5)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_majority_tie_is_no_verdict_whatever_the_order(order):
    ratings = [rating("a", 0.9), rating("b", 0.1), rating("c", None, "refusal")]
    ratings = ratings[order:] + ratings[:order]
    [verdict] = aggregate(ratings, "majority")
    assert verdict.outcome == "tie" and verdict.score is None and verdict.n_scored == 2


def test_majority_needs_a_strict_majority_of_scored_raters():
    ratings = [rating("a", None, "server_error"), rating("b", 0.6), rating("c", 0.7), rating("d", 0.2)]
    [verdict] = aggregate(ratings, "majority")
    assert verdict.score == 1.0 and verdict.n_scored == 3
    [low] = aggregate(ratings, "majority", threshold=0.65)
    assert low.score == 0.0  # one yes (0.7) against two no


def test_no_scored_rater_means_no_score():
    [verdict] = aggregate([rating("a", None, "timeout"), rating("b", None, "parse_error")], "mean")
    assert verdict.outcome == "no_scores" and verdict.score is None and verdict.n_raters == 2


def test_aggregates_per_item_and_dimension():
    ratings = [rating("a", 0.2, item="g1"), rating("a", 0.8, item="g2"), rating("b", 0.4, item="g1")]
    by_item = {a.item_key: a for a in aggregate(ratings)}
    assert by_item["g1"].score == pytest.approx(0.3) and by_item["g2"].score == pytest.approx(0.8)
