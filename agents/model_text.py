"""Model text is untrusted both ways: quoted into a prompt, and read back out of a reply.

* :func:`quote_as_data` neutralises the delimiters of tribunal's data blocks (``<data>``, ``<request>``,
  ``<reply>``, ``<feedback>``, ``<examples>``) inside the text it quotes, so a judged reply, a request, a critic's
  feedback or a dataset prompt cannot close its block early and speak as instructions. It catches every spelling
  a model would read as the tag: any case, spaces around the slash, look-alike brackets, slashes and letters
  (fullwidth ``＜/data＞``, ``﹤``, ``‹``, ``〈``, Cyrillic ``а``) and invisible characters inside the tag (zero-width
  spaces and joiners, soft hyphens, bidi controls, variation selectors). Every prompt that quotes model or dataset
  text goes through it (judge, critic, rewriter, stage I expander).
* :func:`json_values` finds the JSON values a reply carries, bare, inside prose or inside a code fence, for the
  callers that ask for JSON and must accept what models actually write.

Placeholders in prompt templates are filled in one pass (:func:`configs.base.fill_placeholders`), so quoted text
that holds ``{response}`` is never filled again.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from functools import cache
from typing import Any

#: The tags of tribunal's data blocks; :func:`quote_as_data` neutralises all of them unless told which.
BLOCK_TAGS = ("data", "request", "reply", "feedback", "examples")
#: Characters read as an opening ``<``: the ASCII one, its compatibility forms (fullwidth, small) and look-alikes.
OPENING_BRACKETS = "<\uff1c\ufe64\u2039\u2329\u3008\u27e8\u02c2\u1438\u276e\u29fc\u227a"
_SLASHES = "/\uff0f\u2215\u2044\u29f8\u2571\u10c1\u30ce\u4e3f"
# letters a model reads as Latin ones inside a tag name (Cyrillic and Greek look-alikes; NFKC folds the rest)
_CONFUSABLE_LETTERS = {
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x",
    "\u0442": "t", "\u0455": "s", "\u0456": "i", "\u0458": "j", "\u0501": "d", "\u051b": "q", "\u04bb": "h",
    "\u03b1": "a", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t", "\u03c5": "u", "\u03b5": "e", "\u03ba": "k",
    "\u03bd": "v", "\u0261": "g", "\u0251": "a",
}  # fmt: skip
_INVISIBLE = {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u180e", "\u3164", "\uffa0"}


@cache
def _ascii_pattern(tags: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(t) for t in tags)
    return re.compile(rf"<(\s*/?\s*(?:{names})\b)", re.IGNORECASE)


@cache
def _folded_pattern(tags: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(t.casefold()) for t in tags)
    return re.compile(rf"<\s*/?\s*(?:{names})(?!\w)")


@cache
def _fold(char: str) -> str:
    """What a reader takes ``char`` for inside a tag: ``<``, ``/``, a plain letter, or nothing at all."""
    if char in OPENING_BRACKETS:
        return "<"
    if char in _SLASHES:
        return "/"
    if char in _INVISIBLE or unicodedata.category(char) in ("Cf", "Mn", "Me"):
        return ""  # zero-width, format and combining characters: invisible inside a tag
    folded = unicodedata.normalize("NFKC", char).casefold()
    return "".join(_CONFUSABLE_LETTERS.get(c, c) for c in folded)


_ANY_OPENER = re.compile(f"[{OPENING_BRACKETS}]")


def quote_as_data(text: str, *tags: str) -> str:
    """``text`` with every opening or closing block tag turned into inert ``&lt;…``, so that it cannot end or
    open a data block.

    Args:
        text: the untrusted text.
        tags: the tags to neutralise; all of :data:`BLOCK_TAGS` when none are named.

    Every spelling a model would read as the tag is caught: any case and spacing (``</data>``, ``<DATA>``,
    ``< / data>``), look-alike brackets, slashes and letters, and invisible characters inside the tag. Only the
    opening bracket is replaced; the rest of the text is kept as written.
    """
    names = tuple(tags) or BLOCK_TAGS
    if text.isascii():
        return _ascii_pattern(names).sub(r"&lt;\1", text)
    if not _ANY_OPENER.search(text):
        return text
    folded, origin = [], []
    for index, char in enumerate(text):
        for piece in _fold(char):
            folded.append(piece)
            origin.append(index)
    brackets = {origin[m.start()] for m in _folded_pattern(names).finditer("".join(folded))}
    return "".join("&lt;" if i in brackets else c for i, c in enumerate(text))


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
    if text[:1] == "{":  # the common case, a reply that is one object: the search below would find it first too
        try:
            value = json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(value, dict):
                return value
    for value in json_values(text, "{"):
        if isinstance(value, dict):
            return value
    raise ValueError("the reply contains no JSON object")
