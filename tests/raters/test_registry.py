"""The rater registry: entry points, module:Class, unknown kinds, and `tribunal raters list`."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Sequence

import pytest
from click.testing import CliRunner

from configs.loader import ConfigError
from configs.schema import ExperimentConfig, RaterSpec
from graphs.cli import main
from graphs.runner import build_run_panel
from raters import Rater, Rating, RatingItem, available_raters, create_rater, rater_class, registry
from tests.conftest import scripted_config


class LengthRater(Rater):
    """A third-party rater: long texts score high."""

    description = "text length, a test rater"
    default_dimensions = ("verbosity",)

    async def rate(self, items: Sequence[RatingItem]) -> list[Rating]:
        return [self.scored(i, "verbosity", min(1.0, len(i.text) / 100), raw=str(len(i.text))) for i in items]


@pytest.fixture
def entry_point(monkeypatch):
    monkeypatch.setattr(registry.RATERS, "classes", dict(registry.RATERS.classes))
    real = importlib.metadata.entry_points
    ep = importlib.metadata.EntryPoint(
        name="text-length", value="tests.raters.test_registry:LengthRater", group="tribunal.raters"
    )

    def fake(**params):
        if params.get("group") == "tribunal.raters":
            return importlib.metadata.EntryPoints([ep])
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    return ep


def test_a_third_party_rater_registers_by_entry_point(entry_point):
    assert available_raters()["text-length"] == "tests.raters.test_registry:LengthRater"
    assert rater_class("text-length") is LengthRater
    rater = create_rater(RaterSpec(name="length", kind="text-length"))
    [rating] = asyncio.run(rater.rate([RatingItem(key="g", text="x" * 30)]))
    assert rating.score == pytest.approx(0.3) and rating.rater.kind == "text-length"
    assert str(rating.rater).startswith("length|text-length")
    result = CliRunner().invoke(main, ["raters", "list"])
    assert result.exit_code == 0 and "text-length" in result.output


def test_module_class_kind():
    rater = create_rater(RaterSpec(name="length", kind="tests.raters.test_registry:LengthRater"))
    assert isinstance(rater, LengthRater) and rater.dimensions == ("verbosity",)


def test_unknown_kind_is_a_one_line_config_error():
    config = ExperimentConfig.model_validate(
        {**scripted_config(), "panel": {"raters": [{"name": "x", "kind": "no-such-judge"}]}}
    )
    with pytest.raises(ConfigError) as info:
        build_run_panel(config, {}, "exp.yaml")
    message = str(info.value)
    assert message.startswith("exp.yaml: panel.raters[0].kind: unknown rater kind 'no-such-judge'")
    assert "refusal-patterns" in message and "\n" not in message


def test_config_errors_exit_2(write_config, tmp_path):
    config = scripted_config(panel={"raters": [{"name": "j", "kind": "llm", "model": "missing"}]})
    result = CliRunner().invoke(main, ["run", str(write_config(config)), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "panel.raters[0].model: 'missing' is not in models" in result.stderr
    config = scripted_config(panel={"raters": [{"name": "p", "kind": "refusal-patterns", "dimensions": ["tox"]}]})
    result = CliRunner().invoke(main, ["run", str(write_config(config)), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "panel.raters[0]: unknown dimension(s) tox" in result.stderr
    config = scripted_config(panel={"raters": [{"name": "p", "kind": "refusal-patterns"}], "refusal_detector": "q"})
    result = CliRunner().invoke(main, ["validate", str(write_config(config))])
    assert result.exit_code == 2 and "refusal_detector 'q' is not a rater of the panel" in result.stderr


def test_raters_list_shows_kinds_rubrics_and_dimensions():
    result = CliRunner().invoke(main, ["raters", "list"])
    assert result.exit_code == 0, result.output
    for word in ("llm", "refusal-patterns", "profanity-check", "prototype", "hf-classifier", "beavertails"):
        assert word in result.output
