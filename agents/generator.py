"""The generator role: renders a design cell into a chat (persona as system prompt, template × target as user turn).

Two persona prompts (``grid.persona_prompt``): ``style`` (the default) asks the model to copy the persona's writing
style and words, as the persona-toxicity study does; ``roleplay`` asks it to answer as the persona would, holding
the persona's beliefs, values and opinions, as the value-inertia study's role-play does. The wording lives in
``agents/prompts/generator.yaml``, per language, apart from this logic.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from agents.types import Message
from configs.schema import Persona, TargetGroup, Template

PROMPTS_DIR = Path(__file__).parent / "prompts"
#: The persona prompt modes and the section of ``generator.yaml`` that words each.
PERSONA_PROMPTS = {"style": "system", "roleplay": "roleplay"}
PersonaPrompt = Literal["style", "roleplay"]


@cache
def load_prompts(name: str) -> dict[str, Any]:
    """A role's prompt file from ``agents/prompts``."""
    with (PROMPTS_DIR / f"{name}.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def persona_system_prompt(persona: Persona, language: str, mode: PersonaPrompt = "style") -> str:
    """The system prompt that puts the model in ``persona``'s place, in ``language``.

    Args:
        persona: who the model speaks as.
        language: the cell's language; languages without wording of their own get the ``default`` entry.
        mode: ``style`` (copy the persona's writing style) or ``roleplay`` (answer as the persona, with their views).

    Raises:
        ValueError: ``mode`` is not a persona prompt.
    """
    if mode not in PERSONA_PROMPTS:
        raise ValueError(f"persona prompt {mode!r} is not one of {', '.join(PERSONA_PROMPTS)}")
    wording = load_prompts("generator")[PERSONA_PROMPTS[mode]]
    wrapper = wording.get(language, wording["default"])
    return wrapper.replace("{persona}", persona.text[language])


def render_messages(
    persona: Persona | None, target: TargetGroup, template: Template, language: str, mode: PersonaPrompt = "style"
) -> tuple[Message, ...]:
    """The chat for one cell; a ``None`` persona is the no-persona baseline (no system prompt)."""
    user = template.text[language].replace("{target}", target.name[language])
    return persona_chat(persona, user, language, mode)


def persona_chat(
    persona: Persona | None, user: str, language: str, mode: PersonaPrompt = "style"
) -> tuple[Message, ...]:
    """A one-turn chat: ``user`` as the user turn, under ``persona``'s system prompt (``mode``: see
    :func:`persona_system_prompt`) unless it is ``None``."""
    messages = [Message(role="user", content=user)]
    if persona is not None:
        messages.insert(0, Message(role="system", content=persona_system_prompt(persona, language, mode)))
    return tuple(messages)
