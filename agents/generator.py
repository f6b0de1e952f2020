"""The generator role: renders a design cell into a chat (persona as system prompt, template × target as user turn).

The wording lives in ``agents/prompts/generator.yaml``, per language, apart from this logic.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from agents.types import Message
from configs.schema import Persona, TargetGroup, Template

PROMPTS_DIR = Path(__file__).parent / "prompts"


@cache
def load_prompts(name: str) -> dict[str, Any]:
    """A role's prompt file from ``agents/prompts``."""
    with (PROMPTS_DIR / f"{name}.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def persona_system_prompt(persona: Persona, language: str) -> str:
    system = load_prompts("generator")["system"]
    wrapper = system.get(language, system["default"])
    return wrapper.replace("{persona}", persona.text[language])


def render_messages(
    persona: Persona | None, target: TargetGroup, template: Template, language: str
) -> tuple[Message, ...]:
    """The chat for one cell; a ``None`` persona is the no-persona baseline (no system prompt)."""
    return persona_chat(persona, template.text[language].replace("{target}", target.name[language]), language)


def persona_chat(persona: Persona | None, user: str, language: str) -> tuple[Message, ...]:
    """A one-turn chat: ``user`` as the user turn, under ``persona``'s system prompt unless it is ``None``."""
    messages = [Message(role="user", content=user)]
    if persona is not None:
        messages.insert(0, Message(role="system", content=persona_system_prompt(persona, language)))
    return tuple(messages)
