"""The Schwartz value catalog and the value-inertia grid options: ``grid.persona_prompt`` and
``grid.prompts.instruments``.

The shipped catalog is checked against Schwartz's theory (ten values, each in its higher-order group, each with
its source); bad catalogs and options fail with one line naming the file and field; a style-prompt grid keeps its
cell keys and fingerprint while a role-play grid gets keys of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from configs.catalog_schema import (
    DEFAULT_SCHWARTZ_VALUES,
    HIGHER_ORDER_VALUES,
    SCHWARTZ_VALUES,
    VALUE_GROUPS,
    load_schwartz_values,
)
from configs.loader import load_experiment
from graphs.grid import describe_grid, grid_cells, load_grid_prompts, sampling_of
from graphs.records import cell_key, config_fingerprint
from tests.conftest import STARTER, assert_config_error, scripted_config

CATALOG = load_schwartz_values()


# ======================================================================================== the catalog
def test_the_shipped_catalog_covers_schwartzs_ten_values_in_their_four_groups():
    assert [v.id for v in CATALOG.values] == list(SCHWARTZ_VALUES)
    assert {v.higher_order for v in CATALOG.values} == set(HIGHER_ORDER_VALUES)
    for value in CATALOG.values:
        assert value.higher_order == VALUE_GROUPS[value.id]
        assert "Schwartz (1992)" in value.source and "Schwartz et al. (2012)" in value.source
        items = CATALOG.by_value(value.id)
        assert len(items) == 3 and sum(i.reverse for i in items) == 1, value.id  # one reverse-keyed item each
    assert set(CATALOG.instruction) == {"en", "zh"}
    for item in CATALOG.items:
        assert set(item.text) == {"en", "zh"} and item.id.startswith(item.value)
        assert CATALOG.render(item, "zh").endswith(item.text["zh"])
    # scored like the moral probes: the same scale and instruction
    moral = yaml.safe_load((DEFAULT_SCHWARTZ_VALUES.parent / "moral_probes.yaml").read_text(encoding="utf-8"))
    assert CATALOG.scale.model_dump() == moral["scale"] and CATALOG.instruction == moral["instruction"]


def _catalog(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEFAULT_SCHWARTZ_VALUES.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _config(tmp_path: Path, write_config, **grid: Any) -> Path:
    config = scripted_config()
    config["grid"] = {
        "personas": str(STARTER / "personas.yaml"),
        "persona_ids": ["good_person"],
        "prompts": {"kind": "moral_probes"},
        "languages": ["en", "zh"],
        **grid,
    }
    return write_config(config)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda d: d["values"][0].update(higher_order="conservation"), "values[0]", "belongs to 'openness_to_change'"),
        (lambda d: d["values"].pop(0), "(top level)", "which `values` does not define"),
        (lambda d: d["values"][1].pop("source"), "values[1].source", "Field required"),
        (lambda d: d["items"][0].update(value="curiosity"), "items[0].value", "Input should be"),
        (lambda d: d["items"][1].update(id="self_direction_1"), "(top level)", "repeated: self_direction_1"),
        (lambda d: d["items"][2]["text"].pop("zh"), "(top level)", "has no text in zh"),
        (lambda d: d["instruction"].update(en="Rate it."), "instruction", "exactly one placeholder"),
    ],
)
def test_a_bad_value_catalog_is_one_line_naming_file_and_field(tmp_path, write_config, edit, field, words):
    values = _catalog(tmp_path, edit)
    prompts = {"kind": "moral_probes", "instruments": ["schwartz_values"], "values_path": str(values)}
    assert_config_error(_config(tmp_path, write_config, prompts=prompts), "values.yaml", field, words)


# ========================================================================================= the options
def test_instruments_and_filters_select_across_both_catalogs(tmp_path, write_config):
    prompts = {"kind": "moral_probes", "instruments": ["moral_foundations", "schwartz_values"]}
    both = load_experiment(_config(tmp_path, write_config, prompts=prompts))
    assert len(both.probes.probes) == 32 and len(both.values.items) == 30
    asked = load_grid_prompts(both)
    assert len(asked) == 2 * 62 and asked[0].id == "care_1" and asked[32].id == "self_direction_1"
    assert asked[32].category == "self_direction" and asked[32].source == "moral_probes"
    assert "32 moral probe(s) + 30 Schwartz value item(s)" in describe_grid(both)

    prompts = {**prompts, "ids": ["care_1", "power_1", "power_2"], "foundations": ["power"]}
    power = load_experiment(_config(tmp_path, write_config, prompts=prompts))
    assert power.probes is None and [i.id for i in power.values.items] == ["power_1", "power_2"]
    assert set(power.snapshot()["probes"]) == {"moral_foundations", "schwartz_values"}

    only = load_experiment(_config(tmp_path, write_config, prompts={"kind": "moral_probes", "ids": ["care_1"]}))
    assert only.values is None and only.snapshot()["probes"]["probes"][0]["id"] == "care_1"  # as before


@pytest.mark.parametrize(
    ("grid", "field", "words"),
    [
        ({"persona_prompt": "voice"}, "grid.persona_prompt", "'style' or 'roleplay'"),
        (
            {"prompts": {"kind": "moral_probes", "instruments": ["schwartz_values", "schwartz_values"]}},
            "grid.prompts",
            "listed twice",
        ),
        ({"prompts": {"kind": "moral_probes", "values_path": "v.yaml"}}, "grid.prompts", "leaves out schwartz_values"),
        ({"prompts": {"kind": "moral_probes", "instruments": []}}, "grid.prompts.instruments", "at least 1"),
        (
            {"prompts": {"kind": "moral_probes", "instruments": ["schwartz_values"], "foundations": ["care"]}},
            "grid.prompts.foundations[0]",
            "'care' is not a foundation (achievement, benevolence",
        ),
        (
            {"prompts": {"kind": "moral_probes", "instruments": ["schwartz_values"], "values_path": "absent.yaml"}},
            "grid.prompts.values_path",
            "does not exist",
        ),
    ],
)
def test_bad_options_are_one_line_naming_the_field(tmp_path, write_config, grid, field, words):
    assert_config_error(_config(tmp_path, write_config, **grid), "config.yaml", field, words)


def _identity_key(cell, experiment) -> str:
    """The cell key as it was computed before ``persona_prompt`` existed."""
    identity = {
        "model": experiment.config.models[0].identity(),
        "messages": [m.model_dump() for m in cell.messages],
        "sampling": sampling_of(experiment).model_dump(mode="json"),
        "language": cell.language,
        "repeat": cell.repeat,
        "seed": experiment.config.seed,
    }
    return cell_key(identity)


def test_style_grids_keep_their_keys_and_fingerprint_and_roleplay_grids_get_their_own(tmp_path, write_config):
    style = load_experiment(_config(tmp_path, write_config, prompts={"kind": "moral_probes", "ids": ["care_1"]}))
    explicit = load_experiment(
        _config(tmp_path, write_config, persona_prompt="style", prompts={"kind": "moral_probes", "ids": ["care_1"]})
    )
    roleplay = load_experiment(
        _config(tmp_path, write_config, persona_prompt="roleplay", prompts={"kind": "moral_probes", "ids": ["care_1"]})
    )
    style_cells, roleplay_cells = grid_cells(style), grid_cells(roleplay)
    assert [c.key for c in style_cells] == [_identity_key(c, style) for c in style_cells]
    assert [c.key for c in grid_cells(explicit)] == [c.key for c in style_cells]
    # the default is not written into the snapshot: a run directory made before the option resumes
    for experiment in (style, explicit):
        grid = experiment.snapshot()["config"]["grid"]
        assert "persona_prompt" not in grid and "instruments" not in grid["prompts"]
    assert config_fingerprint(style.snapshot()) == config_fingerprint(explicit.snapshot())
    assert config_fingerprint(style.snapshot()) != config_fingerprint(roleplay.snapshot())
    assert roleplay.snapshot()["config"]["grid"]["persona_prompt"] == "roleplay"
    persona = [c for c in roleplay_cells if not c.is_baseline]
    assert persona[0].messages[0].content.startswith("You are a good person.")
    assert not {c.key for c in roleplay_cells} & {c.key for c in style_cells}  # baseline cells too: keyed on the mode
    assert "(roleplay persona prompt)" in describe_grid(roleplay)


def test_the_analysis_groups_values_as_the_catalog_schema_does():
    # analysis does not import configs, so it keeps its own copy of the grouping; the two must not drift apart
    from analysis.studies import value_inertia as headline
    from configs.loader import STUDY_DIMENSIONS

    assert headline.VALUE_GROUPS == VALUE_GROUPS and headline.HIGHER_ORDER_VALUES == HIGHER_ORDER_VALUES
    assert STUDY_DIMENSIONS["value_inertia"] == (
        "care",
        "fairness",
        "loyalty",
        "authority",
        "sanctity",
        *SCHWARTZ_VALUES,
    )
