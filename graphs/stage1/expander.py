"""The prompt-expansion role (Demo-SafetyBench stage I): new user prompts for a thinly covered harm domain.

:func:`expansion_messages` renders the request: the domain (named and described in the request's language), a few
example prompts from the source data, and how many new prompts to write, as a JSON array. :func:`parse_prompts`
reads the reply leniently, because small models seldom follow the format: a JSON array of strings (bare, in a code
fence or inside prose), a JSON object holding such an array, or else one prompt per line with list markers
(``1.``, ``-``, ``*``), surrounding quotes and introductory lines ("Here are five prompts:") removed.

The example prompts are dataset text: they sit in an ``<examples>`` block, quoted with
:func:`agents.model_text.quote_as_data`, and the placeholders are filled in one pass. The wording lives in
``expander.yaml`` next to this module, per language, apart from this logic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agents.model_text import json_values, quote_as_data
from agents.types import Message
from configs.base import fill_placeholders

WORDING_FILE = Path(__file__).with_name("expander.yaml")

_LIST_MARKER = re.compile(r"^\s*(?:[-*•·]+|\(?\d{1,3}[.)、:：]|\d{1,3}\s*[-–])\s*")
_QUOTES = "\"'“”‘’「」『』`"


@functools.cache
def wording() -> dict[str, Any]:
    """The expander's wording (``expander.yaml``): system and user prompts, example lines, domain names."""
    with WORDING_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _for(language: str, table: Mapping[str, str]) -> str:
    return table.get(language, table["default"])


def domain_name(domain: str, language: str) -> str:
    """A rubric dimension id as the expander names it in ``language``."""
    return wording()["domain_names"].get(language, {}).get(domain, domain.replace("_", " "))


def domain_description(domain: str, description: str, language: str) -> str:
    """The domain's description in ``language``; ``description`` (the rubric's, English) where none is written."""
    return wording()["domain_descriptions"].get(language, {}).get(domain, description)


def expansion_messages(
    domain: str, description: str, n: int, language: str, examples: Sequence[str] = ()
) -> tuple[Message, ...]:
    """The expander's chat asking for ``n`` new prompts in one harm domain.

    Args:
        domain: the rubric dimension id (``animal_abuse``, ``privacy_violation``, ...).
        description: the rubric's description of the domain (English; replaced for languages with their own).
        n: how many prompts to ask for.
        language: the language the prompts should be written in.
        examples: prompts of this domain from the source data, shown as examples not to repeat.
    """
    prompts = wording()
    shown = ""
    if examples:  # dataset text: quoted as data, so an example cannot close its block and give orders
        items = "\n".join(f"- {quote_as_data(' '.join(e.split()))}" for e in examples)
        shown = fill_placeholders(_for(language, prompts["examples"]), items=items)
    user = fill_placeholders(  # one pass: an example holding "{n}" stays as written
        _for(language, prompts["user"]),
        domain=domain_name(domain, language),
        description=domain_description(domain, description, language),
        examples=shown,
        language=language,
        n=str(n),
    )
    return (Message(role="system", content=_for(language, prompts["system"])), Message(role="user", content=user))


def parse_prompts(text: str, limit: int | None = None) -> list[str]:
    """The prompts in an expander reply, in order, without exact repeats; at most ``limit`` of them."""
    found = _from_json(text)
    if found is None:
        found = _from_lines(text)
    out: list[str] = []
    seen: set[str] = set()
    for prompt in found:
        prompt = " ".join(prompt.split()).strip(_QUOTES).strip()
        if prompt and prompt.casefold() not in seen:
            seen.add(prompt.casefold())
            out.append(prompt)
    return out[:limit] if limit is not None else out


def _from_json(text: str) -> list[str] | None:
    for value in json_values(text):
        if value == []:  # a model that had nothing to offer
            return []
        strings = _strings(value)
        if strings:
            return strings
    return None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        # [{"prompt": "..."}, ...]
        texts = [next((v for v in item.values() if isinstance(v, str)), None) for item in value]
        return [t for t in texts if t] or None
    if isinstance(value, dict):
        for inner in value.values():
            strings = _strings(inner)
            if strings:
                return strings
    return None


def _from_lines(text: str) -> list[str]:
    lines = []
    for raw in text.replace("```", "\n").splitlines():
        line = _LIST_MARKER.sub("", raw).strip()
        if not line or line.endswith((":", "：")) or line.lower() in ("json", "[", "]"):
            continue
        lines.append(line.rstrip(","))
    return lines
