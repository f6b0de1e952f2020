"""The counterfactual target-group swap set: short statements with a ``{group}`` slot, in English and Chinese.

Each statement is filled with every target group's name in its language; a judge whose score changes with the
group alone is sensitive to whom a text names rather than to what it says. The built-in set
(``graphs/datasets/data/swap_texts.yaml``, tribunal's own wording) spans clearly benign, borderline and clearly
hostile statements, a dozen per language, and carries a ``version`` that changes whenever a text does.

A swap file is YAML::

    version: "1"
    texts:
      - {id: en_benign_neighbours, language: en, expected: benign, text: "I think {group} make great neighbours."}

``id`` is stable and unique, ``language`` a code such as ``en`` or ``zh``, ``expected`` one of
:data:`SWAP_EXPECTED`, and ``text`` holds ``{group}`` at least once.

Examples:
    >>> texts = load_swap_texts()
    >>> variants = swap_variants(texts, {"women": {"en": "women", "zh": "女性"}})
    >>> variants[0].item_id
    'swap:en_benign_neighbours:women'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphs.datasets.source import DatasetError

#: The built-in swap set.
SWAP_TEXTS_PATH = Path(__file__).resolve().parent / "data" / "swap_texts.yaml"
#: How a swap text reads whatever group fills it, least to most hostile.
SWAP_EXPECTED: tuple[str, ...] = ("benign", "borderline", "hostile")
SLOT = "{group}"
_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


@dataclass(frozen=True)
class SwapText:
    """One statement with a ``{group}`` slot."""

    id: str
    language: str
    text: str
    #: one of :data:`SWAP_EXPECTED`
    expected: str
    #: the swap file's version
    version: str


@dataclass(frozen=True)
class SwapVariant:
    """A swap text with one group's name filled in."""

    #: ``swap:<text id>:<group id>``
    item_id: str
    base_id: str
    group: str
    language: str
    text: str
    expected: str


def load_swap_texts(path: str | Path | None = None) -> list[SwapText]:
    """The swap texts of a YAML file (the built-in set when ``path`` is omitted), in file order.

    Raises:
        DatasetError: the file is missing, unreadable, not valid YAML, or an entry is malformed; one line naming
            the file and the field (``swap_texts.yaml: texts[3].expected: ...``).
    """
    # configs is imported here, not at the top, so that importing graphs.datasets stays free of it
    from configs.base import ConfigError
    from configs.inputs import read_yaml_file

    file = SWAP_TEXTS_PATH if path is None else Path(path).expanduser()
    try:
        document = read_yaml_file(file)
    except ConfigError as error:
        raise DatasetError(str(error)) from None
    if not isinstance(document, dict) or not isinstance(document.get("texts"), list) or not document["texts"]:
        raise DatasetError(f"{file}: texts: expected a non-empty list of swap texts")
    version = document.get("version")
    if not isinstance(version, str | int | float) or isinstance(version, bool) or not str(version).strip():
        raise DatasetError(f'{file}: version: expected a version such as "1", got {version!r:.60}')
    texts: list[SwapText] = []
    seen: set[str] = set()
    for index, entry in enumerate(document["texts"]):
        texts.append(_swap_text(file, f"texts[{index}]", entry, str(version).strip()))
        if texts[-1].id in seen:
            raise DatasetError(f"{file}: texts[{index}].id: {texts[-1].id!r} is used twice; ids must be unique")
        seen.add(texts[-1].id)
    return texts


def _swap_text(file: Path, where: str, entry: Any, version: str) -> SwapText:
    if not isinstance(entry, dict):
        raise DatasetError(f"{file}: {where}: expected a mapping with id, language, text and expected")
    unknown = sorted(set(entry) - {"id", "language", "text", "expected"})
    if unknown:
        raise DatasetError(f"{file}: {where}: unknown field {unknown[0]!r}; use id, language, text and expected")
    values = {}
    for name in ("id", "language", "text", "expected"):
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(f"{file}: {where}.{name}: expected a non-empty string, got {value!r:.60}")
        values[name] = value.strip()
    if not _ID.match(values["id"]):
        raise DatasetError(f"{file}: {where}.id: {values['id']!r} is not lower-case letters, digits, '_' and '-'")
    if not _LANGUAGE.match(values["language"]):
        raise DatasetError(f"{file}: {where}.language: {values['language']!r} is not a code such as 'en' or 'zh'")
    if values["expected"] not in SWAP_EXPECTED:
        raise DatasetError(
            f"{file}: {where}.expected: must be one of {', '.join(SWAP_EXPECTED)}, got {values['expected']!r}"
        )
    if SLOT not in values["text"]:
        raise DatasetError(f"{file}: {where}.text: has no {SLOT} slot for the group's name")
    return SwapText(version=version, **values)


def swap_variants(texts: Sequence[SwapText], groups: Mapping[str, Mapping[str, str]]) -> list[SwapVariant]:
    """Every text filled with every group's name in the text's language.

    Args:
        texts: the swap texts (:func:`load_swap_texts`).
        groups: group id → {language: name}, as a config's target catalog gives them
            (``{"women": {"en": "women", "zh": "女性"}}``).

    Returns:
        One variant per text and group that has a name in the text's language (a group without one is skipped
        for that text), text by text in order, groups in the mapping's order. The name is filled in one pass
        (:func:`configs.base.fill_placeholders`): braces inside a name are never filled again.
    """
    from configs.base import fill_placeholders

    variants = []
    for text in texts:
        for group_id, names in groups.items():
            name = names.get(text.language)
            if not isinstance(name, str) or not name.strip():
                continue
            variants.append(
                SwapVariant(
                    item_id=f"swap:{text.id}:{group_id}",
                    base_id=text.id,
                    group=group_id,
                    language=text.language,
                    text=fill_placeholders(text.text, group=name),
                    expected=text.expected,
                )
            )
    return variants


__all__ = ["SLOT", "SWAP_EXPECTED", "SWAP_TEXTS_PATH", "SwapText", "SwapVariant", "load_swap_texts", "swap_variants"]
