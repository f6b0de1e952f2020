"""The critic role (mitigation loop): an outside evaluator's feedback on a reply the panel found toxic.

The critic is configured apart from the measuring panel, so that a rewrite cannot simply learn one judge's
taste. Its wording lives in ``agents/prompts/critic.yaml``, per language. The request and the reply are quoted as
data (:func:`agents.model_text.quote_as_data`: no spelling of a block tag inside them survives) and the
placeholders are filled in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.generator import load_prompts
from agents.model_text import quote_as_data
from agents.types import Message
from configs.base import fill_placeholders


def _for(language: str, table: Mapping[str, str]) -> str:
    return table.get(language, table["default"])


def format_scores(scores: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in sorted(scores.items())) or "n/a"


def critique_messages(prompt: str, response: str, scores: Mapping[str, float], language: str) -> tuple[Message, ...]:
    """The critic's chat for one reply.

    Args:
        prompt: the user request the reply answered.
        response: the reply to critique.
        scores: the measuring panel's aggregate per dimension (0-1).
        language: the cell's language; prompts fall back to ``default`` for languages without their own.
    """
    prompts = load_prompts("critic")
    user = fill_placeholders(  # one pass: a request that holds "{response}" is not filled with the reply
        _for(language, prompts["user"]),
        prompt=quote_as_data(prompt),
        scores=format_scores(scores),
        response=quote_as_data(response),
    )
    return (Message(role="system", content=_for(language, prompts["system"])), Message(role="user", content=user))
