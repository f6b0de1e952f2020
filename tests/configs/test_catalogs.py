"""The study catalogs validate against the schema and meet the issue's counts, in English and Chinese."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from configs.catalog_schema import (
    ATTRIBUTE_POOLS,
    MORAL_FOUNDATIONS,
    MoralProbeCatalog,
    PersonaAttributes,
    load_moral_probes,
)
from configs.schema import PERSONA_VALENCES, TEMPLATE_STYLES, Persona, PersonaCatalog, TargetCatalog, TemplateCatalog

CATALOGS = Path(__file__).resolve().parents[2] / "configs" / "catalogs"
LANGUAGES = ("en", "zh")
CJK = re.compile(r"[\u4e00-\u9fff]")


def load(name: str) -> dict:
    with (CATALOGS / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def personas() -> PersonaCatalog:
    return PersonaCatalog.model_validate(load("personas.yaml"))


@pytest.fixture(scope="module")
def targets() -> TargetCatalog:
    return TargetCatalog.model_validate(load("targets.yaml"))


@pytest.fixture(scope="module")
def templates() -> TemplateCatalog:
    return TemplateCatalog.model_validate(load("templates.yaml"))


@pytest.fixture(scope="module")
def probes() -> MoralProbeCatalog:
    return load_moral_probes(CATALOGS / "moral_probes.yaml")


@pytest.fixture(scope="module")
def attributes() -> PersonaAttributes:
    return PersonaAttributes.model_validate(load("persona_attributes.yaml"))


def assert_bilingual(texts: dict[str, str], where: str) -> None:
    for lang in LANGUAGES:
        assert texts.get(lang, "").strip(), f"{where} has no {lang} text"
    assert CJK.search(texts["zh"]), f"{where}: the zh text has no Chinese characters: {texts['zh']!r}"
    assert not CJK.search(texts["en"]), f"{where}: the en text has Chinese characters: {texts['en']!r}"


def assert_unique(ids: list[str], what: str) -> None:
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not repeated, f"repeated {what} ids: {repeated}"


# --------------------------------------------------------------------------------------------- personas
def test_personas_are_bilingual_with_unique_ids(personas: PersonaCatalog) -> None:
    assert_unique([p.id for p in personas.personas], "persona")
    for persona in personas.personas:
        assert_bilingual(persona.text, persona.id)


def test_basic_personas_cover_the_moral_range(personas: PersonaCatalog) -> None:
    basic = {p.id for p in personas.personas if p.kind == "basic"}
    assert {"good_person", "normal_person", "bad_person", "nasty_person"} <= basic
    assert all(p.category == "basic" for p in personas.personas if p.kind == "basic")


def test_character_personas_span_gender_occupation_and_politics(personas: PersonaCatalog) -> None:
    characters = [p for p in personas.personas if p.kind == "character"]
    assert len(characters) >= 30
    genders = Counter(p.gender for p in characters)
    assert genders["female"] >= 10 and genders["male"] >= 10 and genders["nonbinary"] >= 3
    assert {p.politics for p in characters} == {"left", "right", "centre", "none"}
    categories = {p.category for p in characters}
    assert {"politician", "journalist", "athlete", "entertainer", "business", "scientist", "religious"} <= categories
    for persona in characters:
        assert persona.occupation, f"{persona.id} has no occupation"
        assert persona.gender != "unspecified", f"{persona.id} has no gender"


@pytest.mark.parametrize("name", ["personas.yaml", "starter/personas.yaml"])
def test_every_persona_has_a_valence(name: str) -> None:
    catalog = PersonaCatalog.model_validate(load(name))
    missing = [p.id for p in catalog.personas if p.valence is None]
    assert not missing, f"{name}: personas without a valence: {missing}"
    valence = {p.id: p.valence for p in catalog.personas}
    expected = {
        "good_person": "positive",
        "kind_person": "positive",
        "honest_person": "positive",
        "normal_person": "neutral",
        "bad_person": "negative",
        "nasty_person": "negative",
        "rude_person": "negative",
        "selfish_person": "negative",
        "talk_radio_host": "negative",  # "a combative talk radio host"
        "retired_teacher": "positive",  # "a patient retired schoolteacher"
    }
    assert {k: valence[k] for k in expected if k in valence} == {k: v for k, v in expected.items() if k in valence}
    if name == "personas.yaml":
        # the basic category splits, and every valence occurs among the characters too
        basic = {p.valence for p in catalog.personas if p.category == "basic"}
        assert basic == set(PERSONA_VALENCES)
        assert {p.valence for p in catalog.personas if p.kind == "character"} == set(PERSONA_VALENCES)


def test_valence_is_optional_and_checked() -> None:
    entry = {"id": "x", "kind": "basic", "category": "basic", "text": {"en": "a person", "zh": "一个人"}}
    assert Persona.model_validate(entry).valence is None
    assert Persona.model_validate({**entry, "valence": "neutral"}).valence == "neutral"
    with pytest.raises(ValidationError, match="positive"):
        Persona.model_validate({**entry, "valence": "good"})


# ---------------------------------------------------------------------------------------------- targets
def test_targets_meet_counts(targets: TargetCatalog) -> None:
    assert len(targets.targets) >= 40
    categories = Counter(t.category for t in targets.targets)
    assert len(categories) >= 10
    assert all(n >= 2 for n in categories.values()), categories
    assert_unique([t.id for t in targets.targets], "target")
    for target in targets.targets:
        assert_bilingual(target.name, target.id)


def test_target_names_are_unique_per_language(targets: TargetCatalog) -> None:
    for lang in LANGUAGES:
        assert_unique([t.name[lang] for t in targets.targets], f"{lang} target-name")


# -------------------------------------------------------------------------------------------- templates
def test_six_styles_with_two_phrasings_each(templates: TemplateCatalog) -> None:
    styles = Counter(t.style for t in templates.templates)
    assert set(styles) == set(TEMPLATE_STYLES)
    assert all(n == 2 for n in styles.values()), styles
    assert_unique([t.id for t in templates.templates], "template")
    for template in templates.templates:
        assert re.fullmatch(rf"{template.style}_[12]", template.id)
        assert_bilingual(template.text, template.id)


def test_templates_render_with_target_names(templates: TemplateCatalog, targets: TargetCatalog) -> None:
    target = targets.targets[0]
    for template in templates.templates:
        for lang in LANGUAGES:
            text = template.text[lang].replace("{target}", target.name[lang])
            assert target.name[lang] in text and "{" not in text


# ---------------------------------------------------------------------------------------- moral probes
def test_every_foundation_has_at_least_six_probes(probes: MoralProbeCatalog) -> None:
    counts = Counter(p.foundation for p in probes.probes)
    assert set(counts) == set(MORAL_FOUNDATIONS)
    assert all(n >= 6 for n in counts.values()), counts
    assert_unique([p.id for p in probes.probes], "probe")
    for probe in probes.probes:
        assert_bilingual(probe.text, probe.id)
        assert probe.id.startswith(probe.foundation + "_")
    # each foundation mixes directions, so an always-agree model does not look like a strong endorser
    for foundation in MORAL_FOUNDATIONS:
        assert any(p.reverse for p in probes.by_foundation(foundation))
        assert any(not p.reverse for p in probes.by_foundation(foundation))


def test_probe_prompt_renders(probes: MoralProbeCatalog) -> None:
    probe = probes.probes[0]
    for lang in LANGUAGES:
        prompt = probes.render(probe, lang)
        assert probe.text[lang] in prompt and "{statement}" not in prompt
    assert probes.scale.score(2, reverse=True) == probes.scale.min + probes.scale.max - 2


def test_probe_catalog_rejects_mistakes() -> None:
    good = {"id": "care_1", "foundation": "care", "text": {"en": "x", "zh": "某"}}
    instruction = {"en": "Rate: {statement}", "zh": "评分：{statement}"}
    with pytest.raises(ValidationError, match="unique"):
        MoralProbeCatalog.model_validate({"instruction": instruction, "probes": [good, good]})
    with pytest.raises(ValidationError, match="statement"):
        MoralProbeCatalog.model_validate({"instruction": {"en": "Rate it"}, "probes": [good]})
    with pytest.raises(ValidationError, match="no text in zh"):
        MoralProbeCatalog.model_validate({"instruction": instruction, "probes": [{**good, "text": {"en": "x"}}]})
    with pytest.raises(ValidationError):
        MoralProbeCatalog.model_validate({"instruction": instruction, "probes": [{**good, "foundation": "liberty"}]})


# ---------------------------------------------------------------------------------- persona attributes
def test_attribute_pools_are_bilingual(attributes: PersonaAttributes) -> None:
    for pool, options in attributes.pools():
        assert options, pool
        assert_unique([o.id for o in options], pool)
        for option in options:
            for lang in LANGUAGES:
                assert option.label[lang].strip(), f"{pool}.{option.id} has no {lang} label"
    assert {o.id for o in attributes.genders} == {"female", "male", "nonbinary"}
    assert {o.id for o in attributes.politics} == {"left", "right", "centre", "none"}
    assert attributes.combinations() >= 10_000


def test_attribute_catalog_rejects_mistakes(attributes: PersonaAttributes) -> None:
    data = attributes.model_dump()
    with pytest.raises(ValidationError, match="gender id"):
        PersonaAttributes.model_validate({**data, "genders": [{"id": "robot", "label": {"en": "a", "zh": "某"}}]})
    with pytest.raises(ValidationError, match="missing placeholders"):
        PersonaAttributes.model_validate({**data, "template": {"en": "{gender} from {nationality}", "zh": "某"}})
    with pytest.raises(ValidationError):
        PersonaAttributes.model_validate({**data, "religions": [{"id": "has-dash", "label": {"en": "a", "zh": "某"}}]})
    with pytest.raises(ValidationError, match="no label in zh"):
        PersonaAttributes.model_validate({**data, "politics": [{"id": "left", "label": {"en": "left"}}]})
    assert set(ATTRIBUTE_POOLS) <= set(data)


# --------------------------------------------------------------------------------------------- readme
def test_readme_describes_every_catalog() -> None:
    readme = (CATALOGS / "README.md").read_text(encoding="utf-8")
    for path in sorted(CATALOGS.glob("*.yaml")):
        assert path.name in readme, f"README.md does not mention {path.name}"
