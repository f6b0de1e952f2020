"""The generation nodes of the experiment graph: ``render`` each cell's chat, ``generate`` its reply.

``generate`` sends a chunk's requests to their models' backends, the cells of different models concurrently,
and puts the replies with text in ``pending`` for ``judge``; failures and filtered replies are kept as typed
results and never judged. A cell with a given text (``grid.prompts`` with ``rate: prompt``) calls no model: its
text is its result, with ``finish_reason`` ``given`` and 0 attempts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agents.base import Backend
from agents.types import CallFailure, Completion, Sampling
from graphs.judging import rating_items
from graphs.state import ExperimentState


def build_render(sampling: Sampling) -> Any:
    """The ``render`` node: one chat request per cell, with the cell's own seed."""

    async def render(state: ExperimentState) -> ExperimentState:
        return {"requests": [cell.request(sampling) for cell in state["cells"]], "round": 0}

    return render


def build_generate(backends: Mapping[str, Backend]) -> Any:
    """The ``generate`` node: each request to its model's backend, one batch per model."""

    async def generate(state: ExperimentState) -> ExperimentState:
        cells, requests = state["cells"], state["requests"]
        by_model: dict[str, list[int]] = {}
        results: list[Completion | CallFailure | None] = [None] * len(cells)
        for index, cell in enumerate(cells):
            if cell.given is not None:  # a given text is recorded as what it is: no call, no tokens, 0 attempts
                results[index] = Completion(text=cell.given, finish_reason="given", attempts=0)
                continue
            by_model.setdefault(cell.model, []).append(index)
        replies = await asyncio.gather(
            *(backends[model].generate([requests[i] for i in indices]) for model, indices in by_model.items())
        )
        for indices, outputs in zip(by_model.values(), replies, strict=True):
            if len(outputs) != len(indices):
                raise RuntimeError(f"backend returned {len(outputs)} results for {len(indices)} requests")
            for index, output in zip(indices, outputs, strict=True):
                results[index] = output
        done = [r for r in results if r is not None]
        return {"results": done, "pending": rating_items(cells, done)}

    return generate
