"""``alt-profanity-check`` as a rater: a linear classifier shipped in its wheel, thousands of texts per second.

It catches insults, slurs and swearing and misses implicit hate and threats (DESIGN.md); its probability is the
score of the dimension it stands for (``profanity`` by default; ``dimensions: [toxicity]`` to let it stand for
toxicity). Only the first dimension listed is rated.

Its classifier was trained on English text: ``languages`` (:class:`configs.options.ProfanityCheckOptions`) is
``[en]`` unless the config says otherwise, and the PolygloToxicityPrompts report flags every other language it
scored (:mod:`analysis.toxicity.scorers`).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import time
from collections.abc import Sequence
from typing import Any

from configs.options import ProfanityCheckOptions
from configs.schema import RaterSpec
from raters.base import Rater
from raters.registry import register_rater
from raters.types import Rating, RatingItem

INSTALL_HINT = "pip install alt-profanity-check"


@register_rater("profanity-check")
class ProfanityCheckRater(Rater):
    description = "alt-profanity-check's linear classifier (offline, CPU); insults, slurs and swearing"
    default_dimensions = ("profanity", "toxicity", "insult")
    Options = ProfanityCheckOptions  # only `languages`: any other option given is a typo

    def __init__(self, spec: RaterSpec, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        if importlib.util.find_spec("profanity_check") is None:
            raise ValueError(f"rater kind 'profanity-check' needs alt-profanity-check; install it with: {INSTALL_HINT}")
        self.dimensions = self.dimensions[:1]
        #: the languages its scores can be trusted on (declared, not measured; not part of its identity)
        self.languages: tuple[str, ...] = tuple(ProfanityCheckOptions.model_validate(spec.options).languages)
        self._version = importlib.metadata.version("alt-profanity-check")

    def model_label(self) -> str | None:
        return f"alt-profanity-check=={self._version}"

    def settings(self) -> dict[str, Any]:
        return {"dimensions": list(self.dimensions)}

    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        if not items:
            return []
        started = time.perf_counter()
        probabilities = await asyncio.to_thread(_predict, [item.text for item in items])
        latency = (time.perf_counter() - started) / len(items)
        dimension = self.dimensions[0]
        return [
            self.scored(item, dimension, p, raw=f"{p:.6f}", scale="probability", attempts=0, latency_s=latency)
            for item, p in zip(items, probabilities, strict=True)
        ]


def _predict(texts: list[str]) -> list[float]:
    from profanity_check import predict_prob

    return [float(p) for p in predict_prob(texts)]
