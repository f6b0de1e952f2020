"""Prompt-source grid configs: bad ones give one-line errors that name the file and the field, and randomized
personas are drawn reproducibly when a config is loaded.

The cells these grids expand into are tested in ``tests/graphs/test_grid.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from configs.loader import load_experiment
from configs.personas_random import DEFAULT_PERSONA_ATTRIBUTES, load_persona_attributes, sample_personas
from graphs.cli import main
from tests.conftest import STARTER, assert_config_error
from tests.helpers.prompt_grids import (
    grid_config,
    moral_prompts,
    persona_ids,
    ptp_prompts,
    random_grid,
    study_config,
    write_yaml,
)


def _option(id_: str, en: str) -> dict[str, Any]:
    return {"id": id_, "label": {"en": en, "zh": en}}


def _tiny_attributes(tmp_path: Path) -> Path:
    """An attribute catalog with 2 × 2 × 1 × 2 × 1 × 1 = 8 combinations."""
    return write_yaml(
        tmp_path / "attributes.yaml",
        {
            "template": {
                "en": "{gender} from {nationality}, {age}, who {occupation}, {religion} and {politics}",
                "zh": "{nationality}{age}{gender}，{occupation}，{religion}，{politics}",
            },
            "age_bands": [_option("young", "aged 20"), _option("old", "aged 70")],
            "genders": [_option("female", "a woman"), _option("male", "a man")],
            "nationalities": [_option("japan", "Japan")],
            "occupations": [_option("nurse", "works as a nurse"), _option("chef", "cooks")],
            "religions": [_option("no_religion", "is not religious")],
            "politics": [_option("left", "leans left")],
        },
    )


# =================================================================================== config errors
def _catalog_file(tmp_path: Path, name: str, data: Any) -> str:
    return str(write_yaml(tmp_path / name, data))


# (id, how to build the broken config, expected file suffix, expected field, expected words in the problem)
CASES: list[tuple[str, Any, str, str, str]] = [
    (
        "prompts_and_targets",
        lambda t: grid_config({"targets": str(STARTER / "targets.yaml"), "prompts": moral_prompts()}),
        "config.yaml",
        "grid",
        "either prompts or targets and templates, not both",
    ),
    (
        "prompts_and_template_ids",
        lambda t: grid_config({"template_ids": ["generic"], "prompts": moral_prompts()}),
        "config.yaml",
        "grid",
        "target_ids and template_ids select from catalogs",
    ),
    (
        "no_question_source",
        lambda t: grid_config({"personas": str(STARTER / "personas.yaml")}),
        "config.yaml",
        "grid",
        "needs targets and templates, or prompts",
    ),
    (
        "targets_without_templates",
        lambda t: grid_config({"targets": str(STARTER / "targets.yaml")}),
        "config.yaml",
        "grid",
        "needs targets and templates, or prompts",
    ),
    (
        "persona_ids_without_personas",
        lambda t: grid_config({"persona_ids": ["good_person"], "prompts": moral_prompts()}),
        "config.yaml",
        "grid",
        "add grid.personas",
    ),
    (
        "no_personas_no_baseline",
        lambda t: grid_config({"baseline": False, "prompts": moral_prompts()}),
        "config.yaml",
        "grid",
        "the grid would be empty",
    ),
    (
        "stage1_without_section",
        lambda t: grid_config({"prompts": {"kind": "stage1"}}),
        "config.yaml",
        "stage1",
        "grid.prompts kind 'stage1' rates the stage I benchmark; add a stage1 section",
    ),
    (
        "stage1_with_path",
        lambda t: grid_config({"prompts": {"kind": "stage1", "path": "x.jsonl"}}),
        "config.yaml",
        "grid.prompts",
        "leave out 'path'",
    ),
    (
        "file_without_path",
        lambda t: grid_config({"prompts": {"kind": "file"}}),
        "config.yaml",
        "grid.prompts",
        "kind 'file' needs 'path'",
    ),
    (
        "instruction_without_slot",
        lambda t: grid_config({"prompts": ptp_prompts(instruction={"default": "Continue.", "en": "Go on: {prompt}"})}),
        "config.yaml",
        "grid.prompts.instruction",
        "instruction for 'default' has no {prompt} placeholder",
    ),
    (
        "instruction_bad_language",
        lambda t: grid_config({"prompts": ptp_prompts(instruction={"English": "Go on: {prompt}"})}),
        "config.yaml",
        "grid.prompts.instruction",
        "'English' is not a language code",
    ),
    (
        "unknown_prompt_kind",
        lambda t: grid_config({"prompts": {"kind": "beavertails"}}),
        "config.yaml",
        "grid.prompts",
        "'beavertails'",
    ),
    (
        "misspelt_prompt_field",
        lambda t: grid_config({"prompts": moral_prompts(idz=["care_1"])}),
        "config.yaml",
        "grid.prompts.idz",
        "unknown field",
    ),
    (
        "per_language_zero",
        lambda t: grid_config({"prompts": ptp_prompts(per_language=0)}),
        "config.yaml",
        "grid.prompts.per_language",
        "greater than or equal to 1",
    ),
    (
        "unknown_probe_id",
        lambda t: grid_config({"prompts": moral_prompts(ids=["care_1", "care_99"])}),
        "config.yaml",
        "grid.prompts.ids[1]",
        "'care_99' is not in the probes catalog",
    ),
    (
        "probe_id_twice",
        lambda t: grid_config({"prompts": moral_prompts(ids=["care_1", "care_1"])}),
        "config.yaml",
        "grid.prompts.ids",
        "listed twice",
    ),
    (
        "unknown_foundation",
        lambda t: grid_config({"prompts": moral_prompts(foundations=["care", "liberty"])}),
        "config.yaml",
        "grid.prompts.foundations[1]",
        "'liberty' is not a foundation (authority, care, fairness, loyalty, sanctity)",
    ),
    (
        "filters_leave_no_probe",
        lambda t: grid_config({"prompts": moral_prompts(ids=["care_1"], foundations=["loyalty"])}),
        "config.yaml",
        "grid.prompts",
        "no probe is left",
    ),
    (
        "missing_probe_catalog",
        lambda t: grid_config({"prompts": moral_prompts(path="nope.yaml")}),
        "config.yaml",
        "grid.prompts.path",
        "does not exist",
    ),
    (
        "probe_catalog_lacks_language",
        lambda t: grid_config({"prompts": moral_prompts(), "languages": ["en", "ja"]}),
        "moral_probes.yaml",
        "instruction",
        "no ja text, but the config asks for it",
    ),
    (
        "bad_probe_catalog",
        lambda t: grid_config(
            {
                "prompts": moral_prompts(
                    path=_catalog_file(
                        t,
                        "probes.yaml",
                        {
                            "instruction": {"en": "Rate: {statement}"},
                            "probes": [{"id": "p1", "foundation": "liberty", "text": {"en": "x"}}],
                        },
                    )
                )
            }
        ),
        "probes.yaml",
        "probes[0].foundation",
        "'care'",
    ),
    (
        "random_personas_zero",
        lambda t: grid_config({"random_personas": {"n": 0}, "prompts": moral_prompts()}),
        "config.yaml",
        "grid.random_personas.n",
        "greater than or equal to 1",
    ),
    (
        "random_personas_more_than_combinations",
        lambda t: grid_config(
            {"random_personas": {"n": 9, "attributes": str(_tiny_attributes(t))}, "prompts": moral_prompts()}
        ),
        "config.yaml",
        "grid.random_personas",
        "cannot draw 9 distinct personas: the attribute pools allow only 8 combinations",
    ),
    (
        "random_personas_missing_attributes",
        lambda t: grid_config({"random_personas": {"n": 2, "attributes": "nope.yaml"}, "prompts": moral_prompts()}),
        "config.yaml",
        "grid.random_personas.attributes",
        "does not exist",
    ),
    (
        "random_personas_language_without_template",
        lambda t: grid_config({"random_personas": {"n": 2}, "prompts": ptp_prompts(), "languages": ["en", "ja"]}),
        "config.yaml",
        "grid.random_personas",
        "no persona template for ja",
    ),
    (
        "random_persona_id_also_in_catalog",
        lambda t: grid_config(
            {
                "personas": _catalog_file(
                    t,
                    "personas.yaml",
                    {
                        "personas": [
                            {
                                "id": "rnd-young-female-japan-nurse-no_religion-left",
                                "kind": "character",
                                "category": "x",
                                "text": {"en": "a", "zh": "b"},
                            }
                        ]
                    },
                ),
                "random_personas": {"n": 8, "attributes": str(_tiny_attributes(t))},
                "prompts": moral_prompts(),
            }
        ),
        "config.yaml",
        "grid.random_personas",
        "persona id 'rnd-young-female-japan-nurse-no_religion-left' is also in the catalog",
    ),
]


@pytest.mark.parametrize(("case", "build", "file_suffix", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_prompt_grid_names_file_and_field(tmp_path, write_config, case, build, file_suffix, field, words):
    assert_config_error(write_config(build(tmp_path)), file_suffix, field, words)


def test_prompt_grid_error_exits_2_on_validate(write_config):
    path = write_config(grid_config({"prompts": moral_prompts(ids=["care_1", "nope"])}))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(path) in lines[0] and "grid.prompts.ids[1]" in lines[0] and "'nope'" in lines[0]


def test_validate_checks_stage1_references_too(tmp_path, write_config):
    config = study_config(tmp_path / "study")
    config["stage1"]["expansion"] = {"model": "nobody"}
    path = write_config(config)
    assert_config_error(path, path.name, "stage1.expansion.model", "'nobody' is not in models")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2


# ============================================================================= randomized personas
def test_random_personas_are_drawn_reproducibly_from_the_seed(write_config):
    first = load_experiment(write_config(grid_config(random_grid(), seed=7), name="a.yaml"))
    again = load_experiment(write_config(grid_config(random_grid(), seed=7), name="b.yaml"))
    ids = persona_ids(first)
    assert len(ids) == len(set(ids)) == 4
    assert all(i.startswith("rnd-") for i in ids)
    assert ids == persona_ids(again)
    # the loader draws exactly what the sampler draws with the experiment's seed and languages
    expected = sample_personas(load_persona_attributes(DEFAULT_PERSONA_ATTRIBUTES), 4, 7, ["en", "zh"])
    assert list(first.personas) == expected

    other_seed = load_experiment(write_config(grid_config(random_grid(), seed=8), name="c.yaml"))
    assert set(persona_ids(other_seed)) != set(ids)


def test_random_personas_seed_overrides_the_experiment_seed(write_config):
    a = load_experiment(write_config(grid_config(random_grid(seed=99), seed=7), name="a.yaml"))
    b = load_experiment(write_config(grid_config(random_grid(seed=99), seed=8), name="b.yaml"))
    c = load_experiment(write_config(grid_config(random_grid(), seed=99), name="c.yaml"))
    d = load_experiment(write_config(grid_config(random_grid(), seed=7), name="d.yaml"))
    assert persona_ids(a) == persona_ids(b) == persona_ids(c)
    assert persona_ids(a) != persona_ids(d)


def test_random_personas_with_a_custom_attribute_catalog(tmp_path, write_config):
    _tiny_attributes(tmp_path)
    grid = random_grid(n=8, attributes="attributes.yaml")  # relative to the config's folder
    experiment = load_experiment(write_config(grid_config(grid)))
    ids = persona_ids(experiment)
    assert len(set(ids)) == 8  # n equal to the number of combinations draws each once
    assert "rnd-old-male-japan-chef-no_religion-left" in ids
    persona = next(p for p in experiment.personas if p.id == "rnd-old-male-japan-chef-no_religion-left")
    assert persona.text["en"] == "a man from Japan, aged 70, who cooks, is not religious and leans left"
    assert persona.gender == "male"
