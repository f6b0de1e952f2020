"""A fast multilingual refusal detector: phrase patterns per language (``raters/data/refusal_patterns.yaml``).

It scores ``refusal`` 1.0 when a refusal phrase of any listed language opens the text (within the file's
``window``), else 0.0; the matched phrase is kept as ``raw``. Thousands of texts per second, no model. It misses
soft refusals that deflect without a stock phrase: pair it with an LLM judge on the ``refusal`` rubric where
that matters.

Options (:class:`configs.options.RefusalPatternsOptions`):
    ``patterns``: a YAML file of the same shape to use instead of the built-in list.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from agents.types import content_key
from configs.inputs import read_yaml_file
from configs.options import RefusalPatternsOptions
from configs.schema import RaterSpec
from raters.base import Rater
from raters.registry import register_rater
from raters.types import Rating, RatingItem

PATTERNS_FILE = Path(__file__).parent / "data" / "refusal_patterns.yaml"


class RefusalPatterns:
    """Compiled refusal patterns of one file."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version = str(data.get("version", "1"))
        self.window = int(data.get("window", 300))
        self.by_language = {
            lang: [re.compile(p, re.IGNORECASE) for p in patterns] for lang, patterns in data["patterns"].items()
        }
        self.digest = content_key(data)[:8]

    def find(self, text: str) -> str | None:
        """The first refusal phrase found near the start of ``text``, or ``None``."""
        head = text[: self.window]
        for patterns in self.by_language.values():
            for pattern in patterns:
                if match := pattern.search(head):
                    return match.group(0)
        return None


@cache
def load_patterns(path: Path = PATTERNS_FILE) -> RefusalPatterns:
    """A pattern file, read within bounds (:func:`configs.inputs.read_yaml_file`)."""
    return RefusalPatterns(read_yaml_file(path))


def looks_like_refusal(text: str) -> bool:
    """Whether ``text`` opens with a refusal phrase of the built-in list."""
    return load_patterns().find(text) is not None


@register_rater("refusal-patterns")
class PatternRefusalRater(Rater):
    description = "refusal phrases in English and Chinese (regular expressions, no model)"
    default_dimensions = ("refusal",)
    Options = RefusalPatternsOptions

    def __init__(self, spec: RaterSpec, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        path = RefusalPatternsOptions.model_validate(spec.options).patterns
        try:
            self.patterns = load_patterns(path.resolve() if path else PATTERNS_FILE)
        except (OSError, KeyError, TypeError, AttributeError, ValueError, re.error) as exc:
            raise ValueError(f"options.patterns: cannot use {path}: {' '.join(str(exc).split())[:300]}") from None

    def model_label(self) -> str | None:
        return f"patterns@{self.patterns.version}"

    def settings(self) -> dict[str, Any]:
        return {"patterns": self.patterns.digest}

    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        ratings = []
        for item in items:
            started = time.perf_counter()
            phrase = self.patterns.find(item.text)
            ratings.append(
                self.scored(
                    item,
                    "refusal",
                    1.0 if phrase else 0.0,
                    raw=phrase or "",
                    scale="binary",
                    attempts=0,
                    latency_s=time.perf_counter() - started,
                )
            )
        return ratings
