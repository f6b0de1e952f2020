"""The stage I graph of Demo-SafetyBench: build a harm-domain-balanced prompt benchmark.

    START ──▶ load ──▶ classify ──▶ count ──┬──▶ expand ──▶ classify_generated ──┬──▶ expand (again)
                                            │                                    │
                                            └────────────────────────────────────┴──▶ dedupe ──▶ write ──▶ END

``load``
    DICES conversations as one sample per (conversation, rater demographic profile), the profile and the humans'
    ratings on the sample (:mod:`graphs.stage1.dices`); or prompts from BeaverTails
    (:func:`graphs.datasets.load_beavertails`) or a JSONL/JSON/CSV/TSV/Parquet file of prompts whose other columns
    (demographic metadata such as the author's gender or locale) travel with each prompt
    (:mod:`graphs.stage1.prompts`). Empty prompts are skipped and exact repeats (same text up to case and
    spacing) keep their first row, so no prompt is classified twice (BeaverTails repeats each prompt once per
    response).
``classify``
    Every prompt is classified into the 14 BeaverTails harm domains by an LLM judge: the ``llm`` rater kind with
    the ``beavertails`` multi-label rubric; a domain applies when the judge's probability reaches δ (default
    0.5, the rubric's); a text shared by several samples (one conversation under many profiles) is classified
    once. A prompt whose classification failed (``parse_error``, ``refusal``, ``timeout``, ...)
    is kept out of every count and of the benchmark and reported with its outcome: it is never a domain.
``count``
    Per-domain counts of the classified originals. A domain is *low-resource* when fewer than
    ``expansion.min_count`` of its originals remain after near-duplicate removal (the count the benchmark
    would have; removal keeps first occurrences and originals come first, so this equals the final original
    count).
``expand`` / ``classify_generated``
    For each low-resource domain still short of ``expansion.target_count`` (default ``min_count``), the expander
    (:mod:`graphs.stage1.expander`) is asked for ``per_request`` new prompts per language, with a few of the
    domain's originals as examples; replies are parsed as JSON or one per line. The generated prompts are
    classified like the originals and kept when their domains include the one they were written for. Rounds
    repeat while a domain is short (counted after near-duplicate removal) and ``max_rounds`` allows. With a
    profile source (DICES), a generated prompt is one sample per demographic profile of the source, as each
    original conversation is.
``dedupe``
    SimHash near-duplicate removal (:mod:`graphs.stage1.simhash`) at Hamming distance ≤ τ (default 10) over the
    classified originals, then the accepted generated prompts; the first occurrence is kept. Samples of different
    demographic profiles never merge: removal runs within each profile.
``write``
    The benchmark's files (:mod:`graphs.stage1.writer`), each written to a temporary file and renamed into place;
    with a ``sweep`` section also the benchmark of every (δ, τ) pair (:mod:`graphs.stage1.sweep`).

The nodes are the methods of :class:`~graphs.stage1.nodes.Stage1`; what flows between them is
:class:`~graphs.stage1.state.Stage1State`.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.stage1.nodes import Stage1
from graphs.stage1.state import Stage1State


def build_stage1_graph(stage: Stage1) -> Any:
    """Compile the stage I graph (its shape is drawn in the module docstring)."""
    graph = StateGraph(Stage1State)
    graph.add_node("load", stage.load)
    graph.add_node("classify", stage.classify_originals)
    graph.add_node("count", stage.count)
    graph.add_node("expand", stage.expand)
    graph.add_node("classify_generated", stage.classify_generated)
    graph.add_node("dedupe", stage.dedupe)
    graph.add_node("write", stage.write)

    graph.add_edge(START, "load")
    graph.add_edge("load", "classify")
    graph.add_edge("classify", "count")
    graph.add_conditional_edges("count", stage.route, ["expand", "dedupe"])
    graph.add_edge("expand", "classify_generated")
    graph.add_conditional_edges("classify_generated", stage.route, ["expand", "dedupe"])
    graph.add_edge("dedupe", "write")
    graph.add_edge("write", END)
    return graph.compile()


def recursion_limit(max_rounds: int) -> int:
    """Steps the graph may take with ``max_rounds`` expansion rounds (each round is two steps)."""
    return 12 + 2 * max_rounds


__all__ = ["build_stage1_graph", "recursion_limit"]
