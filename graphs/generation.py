"""The generation nodes of the experiment graph: ``render`` each cell's chat, ``generate`` its reply.

``generate`` sends a chunk's requests to their models' backends, the cells of different models concurrently,
and puts the replies with text in ``pending`` for ``judge``; failures and filtered replies are kept as typed
results and never judged. With a :class:`~graphs.judging.Relay` in the state, a server backend's requests are
sent one by one and each reply with text is handed to the relay as it returns, so that its per-request judges
start at once (requests flow instead of waiting for the chunk's slowest generation); a batching backend (the
embedded model, vLLM offline) still gets its model's requests as one batch.

A cell with a given text (``grid.prompts`` with ``rate: prompt``) calls no model: its text is its result, with
``finish_reason`` ``given`` and 0 attempts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agents.base import Backend
from agents.types import CallFailure, Completion, Sampling
from graphs.judging import answers_each_request, item_for, rating_items
from graphs.records import generation_key
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
        relay = state.get("relay")

        async def batch(model: str, indices: list[int]) -> None:
            outputs = await backends[model].generate([requests[i] for i in indices])
            if len(outputs) != len(indices):
                raise RuntimeError(f"backend returned {len(outputs)} results for {len(indices)} requests")
            for index, output in zip(indices, outputs, strict=True):
                results[index] = output

        async def one(model: str, index: int) -> None:
            await batch(model, [index])
            output = results[index]
            if isinstance(output, Completion) and output.outcome == "ok":
                cell = cells[index]
                key = generation_key(cell.key, 0)
                relay.submit(item_for(key, output.text, cell.messages, cell.language, cell.profile))

        calls = []
        for model, indices in by_model.items():
            if relay and answers_each_request(backends[model]):
                calls.extend(one(model, i) for i in indices)
            else:
                calls.append(batch(model, indices))
        await asyncio.gather(*calls)
        done = [r for r in results if r is not None]
        return {"results": done, "pending": rating_items(cells, done)}

    return generate
