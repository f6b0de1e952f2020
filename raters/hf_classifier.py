"""Any Hugging Face text-classification model as a rater, from a local folder or a cached model id.

The model's labels map to tribunal dimensions through ``options.labels`` (``{model label: dimension}``); a
dimension's score is the summed probability of the labels mapped to it. Labels not mapped are ignored; a mapped
label the model never returns is a configuration error found on the first batch.

Options (:class:`configs.options.HFClassifierOptions`):
    ``path``: a local model folder or a model id already in the Hugging Face cache (never downloaded).
    ``labels``: the label mapping, e.g. ``{toxic: toxicity}`` or ``{LABEL_1: toxicity}``.
    ``device``: ``cpu`` (default), ``cuda``, ``cuda:1``, ...
    ``batch_size`` (default 32), ``max_length`` (default 512).
    ``languages``: the language codes the model was trained on (unknown when omitted); the PolygloToxicityPrompts
    report flags every language outside them (:mod:`analysis.toxicity.scorers`). Declared, not measured, and not
    part of the rater's identity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from agents.runtime import RUNTIME_LOCK
from configs.options import HFClassifierOptions
from configs.schema import RaterSpec
from raters.base import Rater
from raters.registry import register_rater
from raters.types import Rating, RatingItem

#: A text-classification pipeline: texts in, per text a list of ``{"label": ..., "score": ...}`` for every label.
Pipeline = Callable[..., list[list[dict[str, Any]]]]


@register_rater("hf-classifier")
class HFClassifierRater(Rater):
    description = "a Hugging Face text-classification model from a local path (label → dimension mapping)"
    Options = HFClassifierOptions

    def __init__(self, spec: RaterSpec, *, pipeline: Pipeline | None = None, **kwargs: Any) -> None:
        options = self.options = HFClassifierOptions.model_validate(spec.options)
        if options.path is None and pipeline is None:
            raise ValueError("rater kind 'hf-classifier' needs options.path (a local folder or a cached model id)")
        self.labels: dict[str, str] = dict(options.labels)
        self.default_dimensions = tuple(dict.fromkeys(self.labels.values()))  # type: ignore[misc]
        super().__init__(spec, **kwargs)
        self._pipeline = pipeline
        self.batch_size = options.batch_size
        self.max_length = options.max_length
        self.languages: tuple[str, ...] | None = tuple(options.languages) if options.languages else None

    def model_label(self) -> str | None:
        return self.options.path or "injected-pipeline"

    def settings(self) -> dict[str, Any]:
        return {"labels": self.labels, "max_length": self.max_length, "dimensions": list(self.dimensions)}

    def _load(self) -> Pipeline:
        if self._pipeline is None:
            with RUNTIME_LOCK:  # never beside another thread's first import of transformers (agents.runtime)
                from transformers import pipeline

                self._pipeline = pipeline(
                    "text-classification",
                    model=self.options.path,
                    device=self.options.device,
                    top_k=None,
                    local_files_only=True,
                )
        return self._pipeline

    def scores(self, outputs: list[list[dict[str, Any]]]) -> list[dict[str, float]]:
        """Map one batch of pipeline outputs to per-dimension scores."""
        mapped = []
        for labels in outputs:
            seen = {str(entry["label"]): float(entry["score"]) for entry in labels}
            missing = [label for label in self.labels if label not in seen]
            if missing:
                raise ValueError(
                    f"options.labels: the model has no label(s) {', '.join(missing)}; it returns {', '.join(seen)}"
                )
            by_dim: dict[str, float] = {}
            for label, dimension in self.labels.items():
                by_dim[dimension] = by_dim.get(dimension, 0.0) + seen[label]
            mapped.append(by_dim)
        return mapped

    def _run(self, texts: list[str]) -> list[dict[str, float]]:
        outputs = self._load()(texts, batch_size=self.batch_size, truncation=True, max_length=self.max_length)
        return self.scores([o if isinstance(o, list) else [o] for o in outputs])

    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        if not items:
            return []
        scores = await asyncio.to_thread(self._run, [item.text for item in items])
        return [
            self.scored(item, d, by_dim[d], raw=f"{by_dim[d]:.6f}", scale="probability", attempts=0)
            for item, by_dim in zip(items, scores, strict=True)
            for d in self.dimensions
        ]
