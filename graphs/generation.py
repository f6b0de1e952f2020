"""The experiment graph: generate, judge with the panel, and (when configured) mitigate.

    START ──▶ render ──▶ generate ──▶ judge ──▶ decide ──▶ END
                                        ▲          │ replies above threshold, rounds left
                                        │          ▼
                                     rewrite ◀── critique

Without a ``mitigation`` section the graph ends after ``judge``. ``judge`` runs the panel on whatever is pending
(round 0: the replies; later rounds: the rewrites) with :func:`graphs.judging.judge_batch`, the judging graph's
work called directly rather than as a nested graph; ``decide``, ``critique`` and ``rewrite`` are in
:mod:`graphs.mitigation`.

Nodes take the whole chunk: a chunk of 1 is a per-sample agentic loop (good against API servers, many chunks in
flight), a large chunk is one batch for vLLM offline or the embedded model. Within a chunk, cells of different
models go to their backends concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.base import Backend
from agents.types import CallFailure, Completion, Sampling
from graphs.judging import judge_batch, rating_items
from graphs.mitigation import Mitigation, build_critique, build_decide, build_rewrite
from graphs.state import GenerationState
from raters.panel import Panel


def build_generation_graph(
    backends: Mapping[str, Backend],
    sampling: Sampling,
    panel: Panel | None = None,
    mitigation: Mitigation | None = None,
) -> Any:
    """Compile the experiment graph for these backends (keyed by model name), sampling, panel and loop."""
    panel = panel or Panel()

    # Nodes and routers are coroutines even where they never await: LangGraph hands a plain function to a thread
    # pool on every call when the graph runs under ``ainvoke``, which costs more than what these do.
    async def render(state: GenerationState) -> GenerationState:
        return {"requests": [cell.request(sampling) for cell in state["cells"]], "round": 0}

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
        done = [r for r in results if r is not None]
        return {"results": done, "pending": rating_items(cells, done)}

    async def judge(state: GenerationState) -> GenerationState:
        items = state.get("pending", [])
        if not items or not panel:
            return {"pending": []}
        ratings, aggregates = await judge_batch(panel, items)
        return {"ratings": ratings, "aggregates": aggregates, "pending": []}

    async def after_decide(state: GenerationState) -> str:
        return "critique" if state.get("active") else END

    graph = StateGraph(GenerationState)
    graph.add_node("render", render)
    graph.add_node("generate", generate)
    graph.add_node("judge", judge)
    graph.add_edge(START, "render")
    graph.add_edge("render", "generate")
    graph.add_edge("generate", "judge")
    if mitigation is None or not mitigation.config.enabled:
        graph.add_edge("judge", END)
        return graph.compile()

    decide_chunk = build_decide(panel, mitigation)

    async def decide(state: GenerationState) -> GenerationState:
        return decide_chunk(state)

    graph.add_node("decide", decide)
    graph.add_node("critique", build_critique(panel, mitigation))
    graph.add_node("rewrite", build_rewrite(backends, sampling, mitigation))
    graph.add_edge("judge", "decide")
    graph.add_conditional_edges("decide", after_decide, ["critique", END])
    graph.add_edge("critique", "rewrite")
    graph.add_edge("rewrite", "judge")
    return graph.compile()
