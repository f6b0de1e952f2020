"""Model text is untrusted both ways: quoted into a prompt, and read back out of a reply.

* :func:`quote_as_data` neutralises a data block's own delimiters inside the text it quotes, so a judged reply,
  a request or a critic's feedback cannot close its ``<data>`` (``<reply>``, ``<feedback>``…) block early and
  speak as instructions. Every prompt that quotes model or dataset text goes through it.
* :func:`json_values` finds the JSON values a reply carries, bare, inside prose or inside a code fence, for the
  callers that ask for JSON and must accept what models actually write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any


@cache
def _tag_pattern(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<(\s*/?\s*{re.escape(tag)}\b)", re.IGNORECASE)


def quote_as_data(text: str, tag: str = "data") -> str:
    """``text`` with every opening or closing ``tag`` (any case, any spacing: ``</data>``, ``<DATA>``,
    ``< / data>``) turned into inert ``&lt;…``, so that it cannot end or open its data block."""
    return _tag_pattern(tag).sub(r"&lt;\1", text)


def json_values(text: str, opening: str = "{[") -> Iterator[Any]:
    """Every JSON value that starts at one of the ``opening`` characters in ``text``, in order of position."""
    decoder = json.JSONDecoder()
    for match in re.finditer(f"[{re.escape(opening)}]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        yield value


def first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` (bare, or inside prose or a code fence).

    Raises:
        ValueError: the text contains no JSON object.
    """
    for value in json_values(text, "{"):
        if isinstance(value, dict):
            return value
    raise ValueError("the reply contains no JSON object")
