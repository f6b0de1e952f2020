"""The rewriter role (mitigation loop): the generator revises its own reply under the critic's feedback.

The rewrite keeps the original chat (persona system prompt and request), adds the model's reply as its own turn
and the feedback as a new user turn, so the persona stays in force while the model revises. The feedback is
model text: it is quoted as data (:func:`agents.model_text.quote_as_data`).
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.generator import load_prompts
from agents.model_text import quote_as_data
from agents.types import Message
from configs.base import fill_placeholders


def rewrite_messages(original: Sequence[Message], response: str, feedback: str, language: str) -> tuple[Message, ...]:
    """The rewriter's chat: the original messages, the reply to revise, then the feedback."""
    prompts = load_prompts("rewriter")["user"]
    turn = fill_placeholders(prompts.get(language, prompts["default"]), feedback=quote_as_data(feedback))
    return (
        *original,
        Message(role="assistant", content=response),
        Message(role="user", content=turn),
    )
