"""The rater protocol: a batch of items in, one typed :class:`~raters.types.Rating` per item and dimension out.

Subclasses set ``kind`` (through :func:`raters.registry.register_rater`) and implement :meth:`Rater.rate`. A rater
never raises for a failed verdict: it returns an unscored rating with the reason. Construction is where a rater
checks its configuration and dependencies and raises ``ValueError``; loading heavy models waits until first use.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

from agents.base import Backend
from agents.types import content_key
from configs.schema import RaterSpec
from raters.rubric import Rubric, load_rubric
from raters.types import PROFILE_FRAMING, Framing, RaterIdentity, Rating, RatingItem, RatingOutcome


class Rater(abc.ABC):
    """A judge of texts.

    Class attributes:
        kind: the registered kind.
        description: one line for ``tribunal raters list``.
        default_dimensions: the dimensions rated when neither the rubric nor the spec says otherwise.
        default_rubric: the rubric used when the spec names none (``None``: the rater needs no rubric).
        needs_model: the spec must name a judge model (LLM judges).
        supports_framing: the rater can be put under a demographic framing.
    """

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_dimensions: ClassVar[tuple[str, ...]] = ()
    default_rubric: ClassVar[str | None] = None
    needs_model: ClassVar[bool] = False
    supports_framing: ClassVar[bool] = False

    def __init__(self, spec: RaterSpec, *, backend: Backend | None = None) -> None:
        if self.needs_model and backend is None:
            raise ValueError(f"rater kind {self.kind!r} needs a judge model ('model:')")
        if spec.framing is not None and not self.supports_framing:
            raise ValueError(f"rater kind {self.kind!r} cannot be framed (only LLM judges read a system prompt)")
        self.spec = spec
        self.backend = backend
        #: whether :meth:`aclose` closes ``backend`` (a judge model written inline, not shared with generation)
        self.owns_backend = False
        rubric_name = spec.rubric or self.default_rubric
        self.rubric: Rubric | None = load_rubric(rubric_name) if rubric_name else None
        available = self.rubric.dimension_ids if self.rubric else self.default_dimensions
        if spec.dimensions:
            unknown = [d for d in spec.dimensions if d not in available]
            if unknown:
                raise ValueError(f"unknown dimension(s) {', '.join(unknown)}; this rater has {', '.join(available)}")
            self.dimensions: tuple[str, ...] = tuple(spec.dimensions)
        else:
            self.dimensions = tuple(available)
        #: ``framing: profile``: each item is rated as its own demographic profile (``RatingItem.profile``)
        self.framed_by_profile = spec.framing == PROFILE_FRAMING
        if self.framed_by_profile:
            self.framing: Framing | None = Framing(attribute=PROFILE_FRAMING, value="per item")
        else:
            self.framing = Framing(**spec.framing.model_dump()) if spec.framing else None

    @property
    def name(self) -> str:
        return self.spec.name

    def model_label(self) -> str | None:
        """The judge model as stored (``rater_model``); LLM judges name their backend's model."""
        if self.backend is None:
            return None
        identity = self.backend.identity()
        return f"{identity.get('backend')}:{identity.get('model') or identity.get('name')}"

    def settings(self) -> dict[str, Any]:
        """What besides name, model, rubric and framing determines verdicts (default: the options)."""
        return {"options": self.spec.options, "dimensions": list(self.dimensions)}

    def identity(self) -> RaterIdentity:
        """The rater's identity (computed once: a rater's configuration does not change after construction)."""
        cached: RaterIdentity | None = self.__dict__.get("_identity")
        if cached is not None:
            return cached
        settings = self.settings()
        endpoint = self.backend.identity().get("base_url") if self.backend is not None else None
        if endpoint is not None:  # the judge's server is part of who judges (kept out of the shown model label)
            settings = {**settings, "base_url": endpoint}
        self._identity = RaterIdentity(
            name=self.name,
            kind=self.kind,
            model=self.model_label(),
            rubric=self.rubric.id if self.rubric else None,
            rubric_version=self.rubric.version if self.rubric else None,
            framing=self.framing,
            settings=content_key(settings)[:8] if settings else None,
        )
        return self._identity

    @abc.abstractmethod
    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        """Rate every item along every dimension of :attr:`dimensions`. Never raises for a failed verdict."""

    async def aclose(self) -> None:
        """Release models or connections the rater owns."""
        if self.owns_backend and self.backend is not None:
            await self.backend.aclose()

    # ----------------------------------------------------------------------------------------- helpers
    def scored(self, item: RatingItem, dimension: str, score: float, **fields: Any) -> Rating:
        return Rating(
            item_key=item.key,
            rater=self.identity(),
            dimension=dimension,
            score=min(1.0, max(0.0, float(score))),
            outcome=RatingOutcome.SCORED,
            **fields,
        )

    def unscored(self, item: RatingItem, dimension: str, outcome: RatingOutcome, **fields: Any) -> Rating:
        return Rating(item_key=item.key, rater=self.identity(), dimension=dimension, outcome=outcome, **fields)
