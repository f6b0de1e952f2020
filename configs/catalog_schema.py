"""Pydantic models for the study catalogs that :mod:`configs.schema` does not cover.

Two catalogs serve the value-inertia study:

* **Moral-foundation probes** (``catalogs/moral_probes.yaml``): statements a model rates on an agreement scale,
  one foundation each (care, fairness, loyalty, authority, sanctity), asked through one instruction template.
* **Persona attribute pools** (``catalogs/persona_attributes.yaml``): the demographic options that
  :func:`configs.personas_random.sample_personas` combines into randomized personas, with a per-language
  template that turns one option per pool into a persona description.

Like the core schema, every model forbids unknown fields and is frozen; texts are per-language dicts
(``{en: ..., zh: ...}``) and ids are stable so that results join across languages.
"""

from __future__ import annotations

import string
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from configs.base import ID_PATTERN, LocalizedText, Strict, check_localized
from configs.inputs import read_yaml_file
from configs.schema import GENDERS

#: The five moral foundations the probes cover, in the order reports list them.
MORAL_FOUNDATIONS = ("care", "fairness", "loyalty", "authority", "sanctity")
#: Attribute option ids: like catalog ids, but without ``-``, which joins them into randomized persona ids.
ATTRIBUTE_ID_PATTERN = r"^[a-z0-9][a-z0-9_]*$"
#: The pools a persona-attribute catalog carries, in the order their ids enter a persona id.
ATTRIBUTE_POOLS = ("age_bands", "genders", "nationalities", "occupations", "religions", "politics")
#: The template placeholder each pool fills.
POOL_SLOTS = {
    "age_bands": "age",
    "genders": "gender",
    "nationalities": "nationality",
    "occupations": "occupation",
    "religions": "religion",
    "politics": "politics",
}

CATALOG_DIR = Path(__file__).parent / "catalogs"
DEFAULT_MORAL_PROBES = CATALOG_DIR / "moral_probes.yaml"


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _duplicates(ids: list[str]) -> list[str]:
    return sorted(i for i, count in Counter(ids).items() if count > 1)


# ----------------------------------------------------------------------------------- moral probes
class MoralProbe(Strict):
    """One statement rated for agreement; ``reverse`` marks agreement as *less* weight on the foundation."""

    id: str = Field(pattern=ID_PATTERN)
    foundation: Literal["care", "fairness", "loyalty", "authority", "sanctity"]
    reverse: bool = False
    text: LocalizedText

    _check_text = field_validator("text")(check_localized)


class RatingScale(Strict):
    min: int = 1
    max: int = 6

    @model_validator(mode="after")
    def _ordered(self) -> RatingScale:
        if self.max <= self.min:
            raise ValueError(f"scale max ({self.max}) must be greater than min ({self.min})")
        return self

    def score(self, rating: float, reverse: bool) -> float:
        """A rating on this scale, flipped for reverse-keyed probes (``min + max - rating``)."""
        return self.min + self.max - rating if reverse else rating


class MoralProbeCatalog(Strict):
    """Probes plus the instruction that asks for a rating; ``{statement}`` receives the probe's text."""

    version: str = "1"
    scale: RatingScale = RatingScale()
    instruction: LocalizedText
    probes: list[MoralProbe] = Field(min_length=1)

    @field_validator("instruction")
    @classmethod
    def _needs_statement_slot(cls, value: LocalizedText) -> LocalizedText:
        check_localized(value)
        for lang, text in value.items():
            if _placeholders(text) != {"statement"}:
                raise ValueError(f"instruction for {lang!r} must have exactly one placeholder, {{statement}}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MoralProbeCatalog:
        duplicates = _duplicates([p.id for p in self.probes])
        if duplicates:
            raise ValueError(f"probe ids must be unique; repeated: {', '.join(duplicates)}")
        languages = set(self.instruction)
        for probe in self.probes:
            missing = languages - set(probe.text)
            if missing:
                raise ValueError(f"probe {probe.id!r} has no text in {', '.join(sorted(missing))}")
        return self

    def by_foundation(self, foundation: str) -> list[MoralProbe]:
        return [p for p in self.probes if p.foundation == foundation]

    def render(self, probe: MoralProbe, language: str) -> str:
        """The full prompt for one probe in one language."""
        return self.instruction[language].replace("{statement}", probe.text[language])


def load_moral_probes(path: str | Path = DEFAULT_MORAL_PROBES) -> MoralProbeCatalog:
    """Load and validate a moral-probe catalog.

    Args:
        path: the YAML file; the study catalog shipped with tribunal when omitted.

    Returns:
        The validated catalog.
    """
    return MoralProbeCatalog.model_validate(read_catalog_yaml(path))


# ------------------------------------------------------------------------------ persona attributes
class AttributeOption(Strict):
    """One value of a demographic attribute; ``label`` is the phrase that fills the template's slot."""

    id: str = Field(pattern=ATTRIBUTE_ID_PATTERN)
    label: LocalizedText

    _check_label = field_validator("label")(check_localized)


class PersonaAttributes(Strict):
    """Attribute pools for randomized personas and the per-language template that composes them."""

    version: str = "1"
    template: LocalizedText = Field(
        description="per language; uses {age} {gender} {nationality} {occupation} {religion} {politics}"
    )
    age_bands: list[AttributeOption] = Field(min_length=1)
    genders: list[AttributeOption] = Field(min_length=1)
    nationalities: list[AttributeOption] = Field(min_length=1)
    occupations: list[AttributeOption] = Field(min_length=1)
    religions: list[AttributeOption] = Field(min_length=1)
    politics: list[AttributeOption] = Field(min_length=1)

    @field_validator("template")
    @classmethod
    def _template_slots(cls, value: LocalizedText) -> LocalizedText:
        check_localized(value)
        expected = set(POOL_SLOTS.values())
        for lang, text in value.items():
            found = _placeholders(text)
            if found != expected:
                missing = ", ".join("{" + m + "}" for m in sorted(expected - found)) or "none"
                unknown = ", ".join("{" + u + "}" for u in sorted(found - expected)) or "none"
                raise ValueError(f"template for {lang!r}: missing placeholders {missing}; unknown {unknown}")
        return value

    @field_validator("genders")
    @classmethod
    def _schema_genders(cls, value: list[AttributeOption]) -> list[AttributeOption]:
        for option in value:
            if option.id not in GENDERS:
                raise ValueError(f"gender id {option.id!r} is not one of {', '.join(GENDERS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PersonaAttributes:
        languages = set(self.template)
        for pool in ATTRIBUTE_POOLS:
            options: list[AttributeOption] = getattr(self, pool)
            duplicates = _duplicates([o.id for o in options])
            if duplicates:
                raise ValueError(f"{pool}: ids must be unique; repeated: {', '.join(duplicates)}")
            for option in options:
                missing = languages - set(option.label)
                if missing:
                    languages_missing = ", ".join(sorted(missing))
                    raise ValueError(f"{pool}: option {option.id!r} has no label in {languages_missing}")
        return self

    def pools(self) -> list[tuple[str, list[AttributeOption]]]:
        """``(pool name, options)`` in the fixed order their ids enter a persona id."""
        return [(pool, list(getattr(self, pool))) for pool in ATTRIBUTE_POOLS]

    def combinations(self) -> int:
        """How many distinct personas the pools allow."""
        total = 1
        for _, options in self.pools():
            total *= len(options)
        return total


def read_catalog_yaml(path: str | Path) -> object:
    """A catalog file's YAML, read within bounds (:func:`configs.inputs.read_yaml_file`).

    Raises:
        FileNotFoundError: there is no such file.
        ConfigError: it is not a regular file, is over the size limit, or is not valid YAML.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"catalog file not found: {path}")
    return read_yaml_file(path)


__all__ = [
    "ATTRIBUTE_POOLS",
    "MORAL_FOUNDATIONS",
    "AttributeOption",
    "MoralProbe",
    "MoralProbeCatalog",
    "PersonaAttributes",
    "RatingScale",
    "load_moral_probes",
]
