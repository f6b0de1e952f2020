"""Randomized personas for the value-inertia study, drawn reproducibly from demographic attribute pools.

A persona is one option from each pool (age band, gender, nationality, occupation, religion, politics) of a
:class:`~configs.catalog_schema.PersonaAttributes` catalog, written out per language through the catalog's
template. The draw depends only on the catalog and the seed: it uses its own :class:`random.Random`, samples
*indices* of the attribute combinations (never sets or dicts, whose order could depend on hash
randomisation), and decodes each index into one option per pool. Drawing without replacement over the
combination indices guarantees distinct personas. A persona's id is ``rnd-`` followed by its option ids, so
the same combination has the same id in every run and every language.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from configs.base import fill_placeholders
from configs.catalog_schema import (
    CATALOG_DIR,
    POOL_SLOTS,
    AttributeOption,
    PersonaAttributes,
    read_catalog_yaml,
)
from configs.schema import Persona

#: The attribute pools shipped with tribunal.
DEFAULT_PERSONA_ATTRIBUTES = CATALOG_DIR / "persona_attributes.yaml"
#: The ``category`` every randomized persona carries.
RANDOMIZED_CATEGORY = "randomized"
#: Prefix of randomized persona ids (catalog personas never start with it).
ID_PREFIX = "rnd"


def load_persona_attributes(path: str | Path = DEFAULT_PERSONA_ATTRIBUTES) -> PersonaAttributes:
    """Load and validate a persona-attribute catalog.

    Args:
        path: the YAML file; the study pools shipped with tribunal when omitted.

    Returns:
        The validated attribute pools.

    Raises:
        FileNotFoundError: the file does not exist.
        pydantic.ValidationError: the file does not match :class:`~configs.catalog_schema.PersonaAttributes`.
    """
    return PersonaAttributes.model_validate(read_catalog_yaml(path))


def sample_personas(
    attributes: PersonaAttributes,
    n: int,
    seed: int,
    languages: Sequence[str] = ("en", "zh"),
) -> list[Persona]:
    """Draw ``n`` distinct randomized personas, reproducibly from ``seed``.

    Args:
        attributes: the attribute pools (see :func:`load_persona_attributes`).
        n: how many personas; at most the number of attribute combinations.
        seed: the random seed; the same seed and catalog give the same list, in the same order.
        languages: the languages to write each persona's text in; each must be in the catalog's template.

    Returns:
        ``n`` :class:`~configs.schema.Persona` objects of kind ``character`` and category ``randomized``,
        with ``gender``, ``occupation`` (the occupation option id) and ``politics`` (the politics option id)
        filled from the drawn attributes.

    Raises:
        ValueError: ``n`` is negative or larger than the number of distinct combinations, or a language is
            missing from the catalog.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    languages = list(dict.fromkeys(languages))
    if not languages:
        raise ValueError("languages is empty: name at least one, such as 'en'")
    missing = [lang for lang in languages if lang not in attributes.template]
    if missing:
        available = ", ".join(sorted(attributes.template))
        raise ValueError(f"no persona template for {', '.join(missing)}; the attribute catalog has {available}")
    total = attributes.combinations()
    if n > total:
        raise ValueError(
            f"cannot draw {n} distinct personas: the attribute pools allow only {total} combinations "
            "(draw fewer or add options to the pools)"
        )
    rng = random.Random(seed)
    pools = attributes.pools()
    return [_compose(attributes, _decode(index, pools), languages) for index in rng.sample(range(total), n)]


def _decode(index: int, pools: list[tuple[str, list[AttributeOption]]]) -> dict[str, AttributeOption]:
    """The combination at ``index``, read as a mixed-radix number whose last digit is the last pool."""
    chosen: dict[str, AttributeOption] = {}
    for pool, options in reversed(pools):
        index, digit = divmod(index, len(options))
        chosen[pool] = options[digit]
    return {pool: chosen[pool] for pool, _ in pools}


def _compose(attributes: PersonaAttributes, chosen: dict[str, AttributeOption], languages: list[str]) -> Persona:
    text = {  # one pass: a label holding "{politics}" is written as is, not filled again
        lang: fill_placeholders(
            attributes.template[lang], **{POOL_SLOTS[pool]: option.label[lang] for pool, option in chosen.items()}
        )
        for lang in languages
    }
    return Persona(
        id="-".join([ID_PREFIX, *(option.id for option in chosen.values())]),
        kind="character",
        category=RANDOMIZED_CATEGORY,
        gender=chosen["genders"].id,
        occupation=chosen["occupations"].id,
        politics=chosen["politics"].id,
        text=text,
    )


__all__ = [
    "DEFAULT_PERSONA_ATTRIBUTES",
    "RANDOMIZED_CATEGORY",
    "load_persona_attributes",
    "sample_personas",
]
