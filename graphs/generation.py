"""The generation graph: render each cell's chat, generate through its model's backend, judge with the panel.

    START ──▶ render ──▶ generate ──▶ judge ──▶ END

``judge`` runs the panel's judging subgraph (:mod:`graphs.judging`) on the chunk's replies; with an empty panel
it adds nothing.

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
from graphs.judging import build_judging_graph, rating_items
from graphs.state import GenerationState
from raters.aggregate import Aggregate
from raters.panel import Panel
from raters.types import Rating


class JudgedGenerationState(GenerationState, total=False):
    """:class:`GenerationState` plus the panel's output.

    Attributes:
        ratings: every rating of the chunk's replies (one per reply, rater and dimension).
        aggregates: the panel's verdict per reply and dimension.
    """

    ratings: list[Rating]
    aggregates: list[Aggregate]


def build_generation_graph(backends: Mapping[str, Backend], sampling: Sampling, panel: Panel | None = None) -> Any:
    """Compile the generation graph for these backends (keyed by model name), sampling parameters and panel."""
    judging = build_judging_graph(panel or Panel())

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

    async def judge(state: JudgedGenerationState) -> JudgedGenerationState:
        items = rating_items(state["cells"], state["results"])
        if not items or not panel:
            return {"ratings": [], "aggregates": []}
        verdict = await judging.ainvoke({"items": items})
        return {"ratings": verdict["ratings"], "aggregates": verdict["aggregates"]}

    graph = StateGraph(JudgedGenerationState)
    graph.add_node("render", render)
    graph.add_node("generate", generate)
    graph.add_node("judge", judge)
    graph.add_edge(START, "render")
    graph.add_edge("render", "generate")
    graph.add_edge("generate", "judge")
    graph.add_edge("judge", END)
    return graph.compile()
