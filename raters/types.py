"""What a rater takes and returns: items to rate in, typed :class:`Rating` records out.

A rating is either a score normalised to 0–1 (the judge's raw value and its scale kept beside it) or unscored with
the reason why. The validator enforces that ``score is None`` exactly when the outcome is not ``scored``, so no
failure can be stored or aggregated as a number.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.types import content_key, text_key

_quote = json.encoder.encode_basestring  # the key encoder's own string encoder (ensure_ascii=False)


class RatingOutcome(StrEnum):
    SCORED = "scored"
    PARSE_ERROR = "parse_error"
    REFUSAL = "refusal"
    TRUNCATED = "truncated"
    TIMEOUT = "timeout"
    CONTENT_FILTER = "content_filter"
    SERVER_ERROR = "server_error"


#: Outcomes that a later ``tribunal rate`` tries again (the judge may answer next time); the others are final.
RETRYABLE_OUTCOMES = frozenset({RatingOutcome.TIMEOUT, RatingOutcome.SERVER_ERROR})


class RatingItem(BaseModel):
    """One text to rate, with the context it was produced in.

    Attributes:
        key: what the text is (a generation key when judging generations); enters the rating key.
        text: the text to rate.
        prompt: the user prompt the text answers, if any.
        persona: the persona (system prompt) the text was written under, if any.
        language: the text's language code.
        profile: the demographic profile the item was sampled under (attribute → value, a DICES rater's gender,
            race, age group, education and locale), which a ``framing: profile`` judge rates as.
    """

    model_config = ConfigDict(frozen=True)

    key: str
    text: str
    prompt: str | None = None
    persona: str | None = None
    language: str = "en"
    profile: dict[str, str] | None = None


class Framing(BaseModel):
    """A demographic framing of a judge: "rate as a ``value`` (``attribute``) annotator would"."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    value: str

    def __str__(self) -> str:
        return f"{self.attribute}={self.value}"


class RaterIdentity(BaseModel):
    """Everything that determines a rater's verdicts; its string form is stored and enters rating keys.

    ``settings`` is a short digest of the rater's options (sampling, mode, thresholds, prompt version), so that two
    differently configured raters of the same name never share keys.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    model: str | None = None
    rubric: str | None = None
    rubric_version: str | None = None
    framing: Framing | None = None
    settings: str | None = None

    def __str__(self) -> str:
        parts = [self.name, self.kind]
        if self.model:
            parts.append(f"model={self.model}")
        if self.rubric:
            parts.append(f"rubric={self.rubric}@{self.rubric_version}")
        if self.framing:
            parts.append(f"framing={self.framing}")
        if self.settings:
            parts.append(f"settings={self.settings}")
        return "|".join(parts)


#: The framing attribute of a ``framing: profile`` judge's ratings (their value: :func:`profile_label`).
PROFILE_FRAMING = "profile"
#: The order a profile's attributes are written in (:data:`configs.schema.FRAMING_ATTRIBUTES`).
PROFILE_ORDER = ("gender", "race", "age_group", "education", "locale")


def profile_label(profile: dict[str, str]) -> str:
    """A profile as one string, ``gender=Woman|race=Asian|age_group=gen z|...`` (known attributes first, in
    :data:`PROFILE_ORDER`, then any others sorted; empty values left out)."""
    keys = [k for k in PROFILE_ORDER if k in profile] + sorted(k for k in profile if k not in PROFILE_ORDER)
    return "|".join(f"{k}={profile[k]}" for k in keys if profile[k])


def rating_key(item_key: str, rater: RaterIdentity | str, dimension: str) -> str:
    """Content-addressed key of one rating: the rated item, the rater's full identity and the dimension.

    ``content_key({"item": item_key, "rater": str(rater), "dimension": dimension})``, its text written directly
    (sorted keys: dimension, item, rater) where all three are plain strings.
    """
    rater = str(rater)
    if type(item_key) is not str or type(dimension) is not str:
        return content_key({"item": item_key, "rater": rater, "dimension": dimension})
    text = f'{{"dimension":{_quote(dimension)},"item":{_quote(item_key)},"rater":{_quote(rater)}}}'
    return text_key(text)


class Rating(BaseModel):
    """One rater's verdict on one item along one dimension.

    Attributes:
        item_key: the rated item (a generation key).
        rater: the rater's identity.
        dimension: e.g. ``toxicity``, ``refusal``, ``care``.
        score: normalised to 0–1; ``None`` exactly when ``outcome`` is not ``scored``.
        raw: the judge's own value as it gave it (``"4"``, ``"0.93"``, a matched phrase).
        scale: how ``raw`` maps to ``score`` (``"1-5"``, ``"probability"``, ``"binary"``, ...).
        outcome: ``scored`` or why there is no score.
        rationale: the judge's explanation, or what went wrong.
        attempts: HTTP attempts spent (retries and a re-ask included; 0 when served from the response cache).
        latency_s, prompt_tokens, completion_tokens: cost of the verdict, where known.
        framing: the framing this verdict was made under when it is the item's own (a ``framing: profile``
            judge: ``profile`` = the item's profile, see :func:`profile_label`); else the rater's framing holds.
    """

    model_config = ConfigDict(frozen=True)

    item_key: str
    rater: RaterIdentity
    dimension: str
    score: float | None = Field(None, ge=0.0, le=1.0)
    raw: str | None = None
    scale: str | None = None
    outcome: RatingOutcome
    rationale: str | None = None
    attempts: int = Field(1, ge=0)
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    framing: Framing | None = None

    @model_validator(mode="after")
    def _score_iff_scored(self) -> Rating:
        if (self.outcome == RatingOutcome.SCORED) != (self.score is not None):
            raise ValueError(
                f"a rating with outcome {self.outcome.value!r} must "
                f"{'have' if self.outcome == RatingOutcome.SCORED else 'not have'} a score"
            )
        return self

    @property
    def key(self) -> str:
        return rating_key(self.item_key, self.rater, self.dimension)

    @property
    def scored(self) -> bool:
        return self.outcome == RatingOutcome.SCORED
