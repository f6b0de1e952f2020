"""What flows through the graphs: a chunk of cells and what has been produced for them so far."""

from __future__ import annotations

from typing import TypedDict

from agents.types import CallFailure, Completion, GenerationRequest
from graphs.grid import Cell


class GenerationState(TypedDict, total=False):
    """State of the generation graph for one chunk.

    Attributes:
        cells: the chunk's design cells (input).
        requests: one chat request per cell, rendered by ``render``.
        results: one reply or typed failure per cell, from ``generate``, in the same order.
    """

    cells: list[Cell]
    requests: list[GenerationRequest]
    results: list[Completion | CallFailure]
