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

from collections.abc import Mapping
from typing import Any

from agents.base import Backend
from agents.types import CallFailure, Completion, Sampling
from graphs.judging import generate_flowing, item_for, rating_items
from graphs.records import generation_key
from graphs.state import ExperimentState
from raters.types import RatingItem


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

        def item_of(index: int, reply: Completion) -> RatingItem:
            cell = cells[index]
            return item_for(generation_key(cell.key, 0), reply.text, cell.messages, cell.language, cell.profile)

        groups = [(backends[model], indices) for model, indices in by_model.items()]
        for index, reply in (await generate_flowing(groups, requests, state.get("relay"), item_of)).items():
            results[index] = reply
        done = [r for r in results if r is not None]
        return {"results": done, "pending": rating_items(cells, done)}

    return generate
