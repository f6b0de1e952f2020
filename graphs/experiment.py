"""The experiment graph: generate, judge with the panel, and (when configured) mitigate.

    START ──▶ render ──▶ generate ──▶ judge ──▶ decide ──▶ END
                                        ▲          │ replies above threshold, rounds left
                                        │          ▼
                                     rewrite ◀── critique

Without a ``mitigation`` section the graph ends after ``judge``. The nodes live by concept: ``render`` and
``generate`` in :mod:`graphs.generation`, ``judge`` in :mod:`graphs.judging` (the same node ``tribunal rate``
runs on stored generations), ``decide``, ``critique`` and ``rewrite`` in :mod:`graphs.mitigation`; what flows
is :class:`graphs.state.ExperimentState`.

Nodes take the whole chunk: a chunk of 1 is a per-sample agentic loop (good against API servers, many chunks in
flight), a large chunk is one batch for vLLM offline or the embedded model. Nodes and routers are coroutines even
where they never await: LangGraph hands a plain function to a thread pool on every call under ``ainvoke``, which
costs more than what these do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.base import Backend
from agents.types import Sampling
from graphs.generation import build_generate, build_render
from graphs.judging import build_judge
from graphs.mitigation import Mitigation, build_critique, build_decide, build_rewrite
from graphs.state import ExperimentState
from raters.panel import Panel


def build_experiment_graph(
    backends: Mapping[str, Backend],
    sampling: Sampling,
    panel: Panel | None = None,
    mitigation: Mitigation | None = None,
) -> Any:
    """Compile the experiment graph for these backends (keyed by model name), sampling, panel and loop."""
    panel = panel or Panel()
    graph = StateGraph(ExperimentState)
    graph.add_node("render", build_render(sampling))
    graph.add_node("generate", build_generate(backends))
    graph.add_node("judge", build_judge(panel))
    graph.add_edge(START, "render")
    graph.add_edge("render", "generate")
    graph.add_edge("generate", "judge")
    if mitigation is None or not mitigation.config.enabled:
        graph.add_edge("judge", END)
        return graph.compile()

    async def after_decide(state: ExperimentState) -> str:
        return "critique" if state.get("active") else END

    graph.add_node("decide", build_decide(panel, mitigation))
    graph.add_node("critique", build_critique(panel, mitigation))
    graph.add_node("rewrite", build_rewrite(backends, sampling, mitigation))
    graph.add_edge("judge", "decide")
    graph.add_conditional_edges("decide", after_decide, ["critique", END])
    graph.add_edge("critique", "rewrite")
    graph.add_edge("rewrite", "judge")
    return graph.compile()
