"""Pydantic models for the study catalogs that :mod:`configs.schema` does not cover.

Three catalogs serve the value-inertia study:

* **Moral-foundation probes** (``catalogs/moral_probes.yaml``): statements a model rates on an agreement scale,
  one foundation each (care, fairness, loyalty, authority, sanctity), asked through one instruction template.
* **Schwartz value items** (``catalogs/schwartz_values.yaml``): statements on the ten basic values of Schwartz's
  theory (Schwartz 1992; the refined theory of Schwartz et al. 2012 keeps them, split finer), grouped into the
  four higher-order values, rated and scored exactly like the moral probes. The catalog names each value's
  construct and the publication it comes from; the wording of every item is tribunal's own.
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
from typing import Literal, get_args

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

#: The ten basic values of Schwartz (1992), in the order of the circle, with the higher-order value each belongs
#: to (Schwartz 1992; Schwartz et al. 2012). Hedonism shares elements of openness to change and self-enhancement
#: in the theory; we count it with openness to change, as many analyses of the four higher-order values do.
BasicValue = Literal[
    "self_direction",
    "stimulation",
    "hedonism",
    "achievement",
    "power",
    "security",
    "conformity",
    "tradition",
    "benevolence",
    "universalism",
]
HigherOrderValue = Literal["openness_to_change", "self_enhancement", "conservation", "self_transcendence"]
SCHWARTZ_VALUES: tuple[str, ...] = get_args(BasicValue)
HIGHER_ORDER_VALUES: tuple[str, ...] = get_args(HigherOrderValue)
VALUE_GROUPS = {
    "self_direction": "openness_to_change",
    "stimulation": "openness_to_change",
    "hedonism": "openness_to_change",
    "achievement": "self_enhancement",
    "power": "self_enhancement",
    "security": "conservation",
    "conformity": "conservation",
    "tradition": "conservation",
    "benevolence": "self_transcendence",
    "universalism": "self_transcendence",
}

CATALOG_DIR = Path(__file__).parent / "catalogs"
DEFAULT_MORAL_PROBES = CATALOG_DIR / "moral_probes.yaml"
DEFAULT_SCHWARTZ_VALUES = CATALOG_DIR / "schwartz_values.yaml"


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check_instruction(value: LocalizedText) -> LocalizedText:
    check_localized(value)
    for lang, text in value.items():
        if _placeholders(text) != {"statement"}:
            raise ValueError(f"instruction for {lang!r} must have exactly one placeholder, {{statement}}")
    return value


def _duplicates(ids: list[str]) -> list[str]:
    return sorted(i for i, count in Counter(ids).items() if count > 1)


def _require_unique_ids(ids: list[str], noun: str) -> None:
    duplicates = _duplicates(ids)
    if duplicates:
        raise ValueError(f"{noun} ids must be unique; repeated: {', '.join(duplicates)}")


def _require_texts(item: MoralProbe | ValueItem, languages: set[str], noun: str) -> None:
    """Every language the instruction is written in has the item's statement too."""
    missing = languages - set(item.text)
    if missing:
        raise ValueError(f"{noun} {item.id!r} has no text in {', '.join(sorted(missing))}")


# ----------------------------------------------------------------------------------- moral probes
class MoralProbe(Strict):
    """One statement rated for agreement; ``reverse`` marks agreement as *less* weight on the foundation."""

    id: str = Field(pattern=ID_PATTERN)
    foundation: Literal["care", "fairness", "loyalty", "authority", "sanctity"]
    reverse: bool = False
    text: LocalizedText

    _check_text = field_validator("text")(check_localized)

    @property
    def dimension(self) -> str:
        """The dimension a rating of this probe scores: its foundation."""
        return self.foundation


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

    _needs_statement_slot = field_validator("instruction")(lambda value: _check_instruction(value))

    @model_validator(mode="after")
    def _consistent(self) -> MoralProbeCatalog:
        _require_unique_ids([p.id for p in self.probes], "probe")
        languages = set(self.instruction)
        for probe in self.probes:
            _require_texts(probe, languages, "probe")
        return self

    def by_foundation(self, foundation: str) -> list[MoralProbe]:
        return [p for p in self.probes if p.foundation == foundation]

    @property
    def items(self) -> list[MoralProbe]:
        """The probes (the name every self-report instrument shares, see :class:`ValueCatalog`)."""
        return list(self.probes)

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


# ------------------------------------------------------------------------------- Schwartz values
class ValueDefinition(Strict):
    """One basic value (the construct its items measure): its higher-order value, its defining goal in tribunal's
    words, and the publication the construct comes from."""

    id: BasicValue
    higher_order: HigherOrderValue
    goal: str = Field(min_length=1, description="the motivational goal that defines the value, in our words")
    source: str = Field(min_length=1, description="the publication the construct comes from")

    @model_validator(mode="after")
    def _theory_grouping(self) -> ValueDefinition:
        expected = VALUE_GROUPS[self.id]
        if self.higher_order != expected:
            raise ValueError(f"{self.id!r} belongs to {expected!r} in Schwartz's theory, not {self.higher_order!r}")
        return self


class ValueItem(Strict):
    """One statement rated for agreement; ``reverse`` marks agreement as *less* weight on the value."""

    id: str = Field(pattern=ID_PATTERN)
    value: BasicValue
    reverse: bool = False
    text: LocalizedText

    _check_text = field_validator("text")(check_localized)

    @property
    def dimension(self) -> str:
        """The dimension a rating of this item scores: its basic value."""
        return self.value


class ValueCatalog(Strict):
    """Schwartz value items plus the instruction that asks for a rating (the same form as the moral probes)."""

    version: str = "1"
    instrument: Literal["schwartz_values"] = "schwartz_values"
    source: str = Field(min_length=1, description="the theory the instrument measures")
    scale: RatingScale = RatingScale()
    instruction: LocalizedText
    values: list[ValueDefinition] = Field(min_length=1)
    items: list[ValueItem] = Field(min_length=1)

    _needs_statement_slot = field_validator("instruction")(lambda value: _check_instruction(value))

    @model_validator(mode="after")
    def _consistent(self) -> ValueCatalog:
        duplicates = _duplicates([v.id for v in self.values])
        if duplicates:
            raise ValueError(f"values: each value is defined once; repeated: {', '.join(duplicates)}")
        _require_unique_ids([i.id for i in self.items], "item")
        defined = {v.id for v in self.values}
        languages = set(self.instruction)
        for item in self.items:
            if item.value not in defined:
                raise ValueError(f"item {item.id!r} measures {item.value!r}, which `values` does not define")
            _require_texts(item, languages, "item")
        return self

    def by_value(self, value: str) -> list[ValueItem]:
        return [i for i in self.items if i.value == value]

    def render(self, item: ValueItem, language: str) -> str:
        """The full prompt for one item in one language."""
        return self.instruction[language].replace("{statement}", item.text[language])


def load_schwartz_values(path: str | Path = DEFAULT_SCHWARTZ_VALUES) -> ValueCatalog:
    """Load and validate a Schwartz value catalog.

    Args:
        path: the YAML file; the catalog shipped with tribunal when omitted.

    Returns:
        The validated catalog.
    """
    return ValueCatalog.model_validate(read_catalog_yaml(path))


#: A self-report instrument's catalog: both are asked and scored the same way.
ProbeCatalog = MoralProbeCatalog | ValueCatalog


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
    "HIGHER_ORDER_VALUES",
    "MORAL_FOUNDATIONS",
    "SCHWARTZ_VALUES",
    "VALUE_GROUPS",
    "AttributeOption",
    "MoralProbe",
    "MoralProbeCatalog",
    "PersonaAttributes",
    "ProbeCatalog",
    "RatingScale",
    "ValueCatalog",
    "ValueDefinition",
    "ValueItem",
    "load_moral_probes",
    "load_schwartz_values",
]
