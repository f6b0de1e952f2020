"""Bad configs and catalogs: each gives one specific line naming file and field, exit code 2, nothing written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from configs.loader import ConfigError, load_experiment
from graphs.cli import main
from tests.conftest import STARTER, assert_config_error, scripted_config


def _catalog(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def _mutate(path: str, value: Any) -> dict[str, Any]:
    config = scripted_config()
    node: Any = config
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    node[parts[-1]] = value
    return config


def _only(config: dict[str, Any], **grid: Any) -> dict[str, Any]:
    config["grid"].update(grid)
    return config


def _personas() -> dict[str, Any]:
    return yaml.safe_load((STARTER / "personas.yaml").read_text(encoding="utf-8"))


# (id, how to build the broken config, expected file suffix, expected field, expected words in the problem)
CASES: list[tuple[str, Any, str, str, str]] = [
    ("unknown_field", lambda t: {**scripted_config(), "seeds": 3}, "config.yaml", "seeds", "unknown field"),
    ("no_models", lambda t: _mutate("models", []), "config.yaml", "models", "at least 1"),
    (
        "bad_backend",
        lambda t: _mutate("models.0.backend", "gpt"),
        "config.yaml",
        "models[0].backend",
        "'embedded'",
    ),
    (
        "literal_api_key",
        lambda t: _mutate("models.0.api_key", "sk-live-123"),
        "config.yaml",
        "models[0].api_key",
        "environment reference",
    ),
    (
        "zero_repeats",
        lambda t: _mutate("grid.repeats", 0),
        "config.yaml",
        "grid.repeats",
        "greater than or equal to 1",
    ),
    (
        "hot_temperature",
        lambda t: _mutate("sampling.temperature", 7),
        "config.yaml",
        "sampling.temperature",
        "2",
    ),
    (
        "bad_language",
        lambda t: _mutate("grid.languages", ["english"]),
        "config.yaml",
        "grid.languages",
        "language",
    ),
    (
        "duplicate_models",
        lambda t: _mutate("models", [scripted_config()["models"][0]] * 2),
        "config.yaml",
        "models",
        "unique",
    ),
    (
        "vllm_without_model",
        lambda t: _mutate("models", [{"name": "big", "backend": "vllm"}]),
        "config.yaml",
        "models[0]",
        "needs 'model'",
    ),
    (
        "missing_catalog",
        lambda t: _mutate("grid.personas", str(t / "nope.yaml")),
        "config.yaml",
        "grid.personas",
        "does not exist",
    ),
    (
        "unknown_persona_id",
        lambda t: _mutate("grid.persona_ids", ["good_person", "nobody"]),
        "config.yaml",
        "grid.persona_ids[1]",
        "'nobody' is not in the personas catalog",
    ),
    (
        "template_without_slot",
        lambda t: _mutate(
            "grid.templates",
            _catalog(t, "templates.yaml", {"templates": [{"id": "x", "style": "bad", "text": {"en": "Say bad."}}]}),
        ),
        "templates.yaml",
        "templates[0].text",
        "{target} placeholder",
    ),
    (
        "catalog_missing_language",
        lambda t: _only(
            _mutate(
                "grid.personas",
                _catalog(
                    t,
                    "personas.yaml",
                    {"personas": [{"id": "good_person", "kind": "basic", "category": "basic", "text": {"en": "good"}}]},
                ),
            ),
            persona_ids=None,
        ),
        "personas.yaml",
        "personas[0].text",
        "has no 'zh' text",
    ),
    (
        "catalog_duplicate_id",
        lambda t: _mutate(
            "grid.personas",
            _catalog(t, "personas.yaml", {"personas": _personas()["personas"][:1] * 2}),
        ),
        "personas.yaml",
        "personas[1].id",
        "duplicate id",
    ),
    (
        "catalog_bad_kind",
        lambda t: _mutate(
            "grid.personas",
            _catalog(
                t,
                "personas.yaml",
                {"personas": [{"id": "p", "kind": "celebrity", "category": "x", "text": {"en": "a", "zh": "b"}}]},
            ),
        ),
        "personas.yaml",
        "personas[0].kind",
        "'basic' or 'character'",
    ),
    (
        "catalog_bad_id",
        lambda t: _mutate(
            "grid.targets",
            _catalog(t, "targets.yaml", {"targets": [{"id": "Women!", "category": "g", "name": {"en": "w"}}]}),
        ),
        "targets.yaml",
        "targets[0].id",
        "pattern",
    ),
]


@pytest.mark.parametrize(("case", "build", "file_suffix", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_file_and_field(tmp_path, write_config, case, build, file_suffix, field, words):
    assert_config_error(write_config(build(tmp_path)), file_suffix, field, words)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("name: x\nmodels: [\n", "line 3, column 1", "invalid YAML"),
        ("- just\n- a list\n", "(top level)", "expected a mapping"),
        ("", "(top level)", "got empty"),
    ],
    ids=["yaml_syntax", "top_level_list", "empty_file"],
)
def test_unreadable_yaml(write_config, text, field, words):
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert caught.value.field_path == field
    assert words in caught.value.problem


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_experiment(tmp_path / "absent.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_experiment(latin)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_exit_2_one_line_nothing_written(tmp_path, write_config, command):
    out = tmp_path / "run-dir"
    config = copy.deepcopy(scripted_config())
    config["grid"]["repeats"] = -1
    path = write_config(config)
    args = [command, str(path)] + (["--out", str(out), "--no-progress"] if command == "run" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(path) in lines[0] and "grid.repeats" in lines[0]
    assert not out.exists()


def test_unset_api_key_variable_is_named_not_leaked(tmp_path, write_config, monkeypatch):
    monkeypatch.delenv("TRIBUNAL_TEST_MISSING_KEY", raising=False)
    config = scripted_config()
    config["models"] = [
        {
            "name": "api",
            "backend": "openai",
            "model": "gpt-test",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": "${TRIBUNAL_TEST_MISSING_KEY}",
        }
    ]
    out = tmp_path / "run-dir"
    result = CliRunner().invoke(main, ["run", str(write_config(config)), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    assert "models[0].api_key" in result.stderr
    assert "TRIBUNAL_TEST_MISSING_KEY is not set" in result.stderr
    assert not out.exists()


def test_valid_config_reports_cell_count(write_config):
    result = CliRunner().invoke(main, ["validate", str(write_config(scripted_config()))])
    assert result.exit_code == 0, result.output
    # 2 personas + baseline, 3 targets, 3 templates, 2 languages, 2 repeats
    assert "→ 108 cells" in result.output
