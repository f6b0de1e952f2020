"""Reserved ids: ``none`` labels the no-persona baseline in every stored row, so no persona may be called that
(issue 17, item 12). configs defines the reserved word; graphs' records store it."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from configs.base import BASELINE_LABEL, RESERVED_IDS
from configs.loader import ConfigError, load_experiment
from configs.schema import Persona
from graphs.records import BASELINE_ID
from tests.conftest import STARTER, scripted_config


def test_configs_and_records_agree_on_the_baseline_label():
    assert BASELINE_LABEL == BASELINE_ID
    assert BASELINE_ID in RESERVED_IDS


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "none"), ("category", "none"), ("category", "None"), ("category", " NONE ")],
)
def test_a_persona_named_like_the_baseline_is_refused_at_load(tmp_path, write_config, field, value):
    catalog = yaml.safe_load((STARTER / "personas.yaml").read_text(encoding="utf-8"))
    catalog["personas"][1][field] = value
    personas = tmp_path / "personas.yaml"
    personas.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    config = scripted_config()
    config["grid"].update(personas=str(personas), persona_ids=None)
    config["grid"] = {k: v for k, v in config["grid"].items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        load_experiment(write_config(config))
    assert caught.value.path == str(personas)
    assert caught.value.field_path == f"personas[1].{field}"
    assert "reserved" in caught.value.problem and "baseline" in caught.value.problem


def test_the_model_itself_refuses_them():
    with pytest.raises(ValidationError, match="reserved"):
        Persona(id="none", kind="basic", category="basic", text={"en": "nobody"})
    assert Persona(id="nonentity", kind="basic", category="no-one", text={"en": "x"}).id == "nonentity"
