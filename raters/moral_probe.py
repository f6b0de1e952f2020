"""Self-reported moral-foundation and value scores: the number a model gives when asked to rate a probe.

The value-inertia study (``grid.prompts: {kind: moral_probes}``) asks the generator, with or without a persona,
how much it agrees with a statement on the catalog's scale (1–6 in the shipped catalog). This rater reads that
answer back: it finds which probe the reply answers (by the exact prompt the grid rendered, in any of the
catalog's languages), takes the first whole number in the reply, and scores the probe's foundation as
``(rating - min) / (max - min)``, reversed (``1 - ...``) for statements marked ``reverse``. It rates only the
probe's own foundation; the other foundations of the same reply get no rating, rather than a made-up one.

A reply that opens with a refusal phrase is ``refusal`` even when it quotes the scale; one with no number on the
scale is ``parse_error``, and a
prompt that is not one of the catalog's probes is ``parse_error`` on every foundation, with the reason.

The ``value-probe`` rater does the same for the Schwartz value items (``grid.prompts.instruments:
[moral_foundations, schwartz_values]``): it scores the item's basic value (self_direction … universalism) on the
same 1–6 scale, reverse-keyed items flipped. The two instruments are two raters so that each keeps its own
dimensions and its ratings' keys. Each leaves unrated (no rating at all, not ``parse_error``) the prompts of the
other instrument's shipped catalog, so that a grid asking both gets one rating per answer on its own dimension.

Options (:class:`configs.options.MoralProbeOptions`, both kinds):
    ``catalog``: the rater's catalog (YAML): a moral-probe catalog for ``moral-probe``, the shipped
    ``configs/catalogs/moral_probes.yaml`` when omitted; a Schwartz value catalog for ``value-probe``, the shipped
    ``configs/catalogs/schwartz_values.yaml`` when omitted. Use the same catalog as the grid.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from agents.types import content_key
from configs.catalog_schema import (
    DEFAULT_MORAL_PROBES,
    DEFAULT_SCHWARTZ_VALUES,
    MORAL_FOUNDATIONS,
    SCHWARTZ_VALUES,
    MoralProbe,
    ProbeCatalog,
    ValueItem,
    load_moral_probes,
    load_schwartz_values,
)
from configs.options import MoralProbeOptions
from configs.schema import RaterSpec
from raters.base import Rater
from raters.refusal_patterns import looks_like_refusal
from raters.registry import register_rater
from raters.types import Rating, RatingItem, RatingOutcome

#: A whole number, ASCII or full-width digits, not part of a longer number or a decimal.
_NUMBER = re.compile(r"(?<![\d.])(\d+)(?![\d]|\.\d)")


def first_number(text: str) -> int | None:
    """The first whole number in ``text`` (full-width digits read as ASCII), or ``None``."""
    normal = unicodedata.normalize("NFKC", text)
    match = _NUMBER.search(normal)
    return int(match.group(1)) if match else None


@register_rater("moral-probe")
class MoralProbeRater(Rater):
    description = "the generator's own 1–6 agreement with a moral probe, scored on the probe's foundation"
    default_dimensions = MORAL_FOUNDATIONS
    Options = MoralProbeOptions
    #: the shipped catalog, and how a catalog file of this rater's kind is read
    default_catalog = DEFAULT_MORAL_PROBES
    load_catalog = staticmethod(load_moral_probes)
    #: the other instrument's shipped catalog, whose prompts this rater leaves to that instrument's rater
    sibling_catalog = DEFAULT_SCHWARTZ_VALUES
    load_sibling = staticmethod(load_schwartz_values)

    def __init__(self, spec: RaterSpec, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        unknown = set(spec.options) - set(MoralProbeOptions.model_fields)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; this rater takes 'catalog'")
        path = MoralProbeOptions.model_validate(spec.options).catalog
        source = path.resolve() if path else self.default_catalog
        try:
            self.catalog: ProbeCatalog = self.load_catalog(source)
        except (OSError, ValueError) as exc:
            raise ValueError(f"options.catalog: cannot use {source}: {' '.join(str(exc).split())[:300]}") from None
        self.by_prompt: dict[str, MoralProbe | ValueItem] = {
            self.catalog.render(probe, lang): probe  # type: ignore[arg-type]
            for probe in self.catalog.items
            for lang in self.catalog.instruction
        }
        sibling = self.load_sibling(self.sibling_catalog)
        others = {sibling.render(i, lang) for i in sibling.items for lang in sibling.instruction}  # type: ignore[arg-type]
        self.others = others - set(self.by_prompt)
        self.digest = content_key(self.catalog.model_dump(mode="json"))[:8]

    def model_label(self) -> str | None:
        return f"probes@{self.catalog.version}"

    def settings(self) -> dict[str, Any]:
        return {"catalog": self.digest, "dimensions": list(self.dimensions)}

    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        scale = self.catalog.scale
        label = f"{scale.min:g}-{scale.max:g}"
        ratings = []
        for item in items:
            probe = self.by_prompt.get(item.prompt or "")
            if probe is None and item.prompt in self.others:
                continue  # the other instrument's item: its own rater rates it
            if probe is None:
                ratings.extend(
                    self.unscored(
                        item, d, RatingOutcome.PARSE_ERROR, rationale="the prompt is not a probe of the catalog"
                    )
                    for d in self.dimensions
                )
                continue
            if probe.dimension not in self.dimensions:
                continue
            number = first_number(item.text)
            refused = looks_like_refusal(item.text)  # before the number: "I can't rate this from 1 to 6" is no 1
            if refused or number is None or not scale.min <= number <= scale.max:
                ratings.append(
                    self.unscored(
                        item,
                        probe.dimension,
                        RatingOutcome.REFUSAL if refused else RatingOutcome.PARSE_ERROR,
                        raw=None if number is None else str(number),
                        scale=label,
                        rationale=f"probe {probe.id}: "
                        + ("a refusal" if refused else f"no whole number from {scale.min:g} to {scale.max:g}"),
                    )
                )
                continue
            ratings.append(
                self.scored(
                    item,
                    probe.dimension,
                    (scale.score(number, probe.reverse) - scale.min) / (scale.max - scale.min),
                    raw=str(number),
                    scale=label + (" reversed" if probe.reverse else ""),
                    rationale=f"probe {probe.id}",
                )
            )
        return ratings


@register_rater("value-probe")
class ValueProbeRater(MoralProbeRater):
    description = "the generator's own 1–6 agreement with a Schwartz value item, scored on the item's value"
    default_dimensions = SCHWARTZ_VALUES
    default_catalog = DEFAULT_SCHWARTZ_VALUES
    load_catalog = staticmethod(load_schwartz_values)
    sibling_catalog = DEFAULT_MORAL_PROBES
    load_sibling = staticmethod(load_moral_probes)

    def model_label(self) -> str | None:
        return f"values@{self.catalog.version}"
