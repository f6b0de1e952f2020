"""The generation graph: render each cell's chat, then generate through its model's backend.

    START ──▶ render ──▶ generate ──▶ END

Nodes take the whole chunk: a chunk of 1 is a per-sample loop (good against API servers, many chunks in flight),
a large chunk is one batch for vLLM offline or the embedded model. Within a chunk, cells of different models go
to their backends concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.base import Backend
from agents.types import CallFailure, Completion, Sampling
from graphs.state import GenerationState


def build_generation_graph(backends: Mapping[str, Backend], sampling: Sampling) -> Any:
    """Compile the generation graph for these backends (keyed by model name) and sampling parameters."""

    def render(state: GenerationState) -> GenerationState:
        return {"requests": [cell.request(sampling) for cell in state["cells"]]}

    async def generate(state: GenerationState) -> GenerationState:
        cells, requests = state["cells"], state["requests"]
        by_model: dict[str, list[int]] = {}
        for index, cell in enumerate(cells):
            by_model.setdefault(cell.model, []).append(index)
        replies = await asyncio.gather(
            *(backends[model].generate([requests[i] for i in indices]) for model, indices in by_model.items())
        )
        results: list[Completion | CallFailure | None] = [None] * len(cells)
        for indices, outputs in zip(by_model.values(), replies, strict=True):
            if len(outputs) != len(indices):
                raise RuntimeError(f"backend returned {len(outputs)} results for {len(indices)} requests")
            for index, output in zip(indices, outputs, strict=True):
                results[index] = output
        return {"results": [r for r in results if r is not None]}

    graph = StateGraph(GenerationState)
    graph.add_node("render", render)
    graph.add_node("generate", generate)
    graph.add_edge(START, "render")
    graph.add_edge("render", "generate")
    graph.add_edge("generate", END)
    return graph.compile()
