"""configs/persona_toxicity_zh*.yaml against seed 000: the seed's scale, the cell count in the header, judges that
do not generate, a held-out measure panel and GPU arithmetic that holds."""

from __future__ import annotations

import logging
import re

import pytest

from configs.loader import load_experiment
from graphs.grid import count_cells, generator_models
from tests.conftest import ROOT

CONFIGS = ROOT / "configs"


def _header(name: str) -> str:
    lines = (CONFIGS / name).read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


@pytest.mark.parametrize("name", ["persona_toxicity_zh.yaml", "persona_toxicity_zh_tiny.yaml"])
def test_the_header_states_the_cell_count_validate_prints(name):
    experiment = load_experiment(CONFIGS / name)
    stated = re.search(r"= ([\d,]+) cells", _header(name))
    assert stated, f"{name}'s header states its size as '= N cells'"
    assert int(stated.group(1).replace(",", "")) == count_cells(experiment)
    assert "Reproduces" in _header(name) and "epart" in _header(name)  # what it reproduces and where it departs


def test_the_full_config_has_the_seeds_scale_and_design(caplog):
    with caplog.at_level(logging.WARNING, logger="configs.loader"):
        experiment = load_experiment(CONFIGS / "persona_toxicity_zh.yaml")
    assert caplog.records == [], [r.getMessage() for r in caplog.records]  # no self-judging, memory that fits
    config = experiment.config
    assert count_cells(experiment) > 1_400_000  # "over 1,400,000 generated texts"
    generators = {m.name for m in generator_models(experiment)}
    assert len(generators) == 4 and config.grid.baseline  # four Chinese LLMs against their default baselines
    mitigation = config.mitigation
    assert mitigation.gate and mitigation.measure and not set(mitigation.gate) & set(mitigation.measure)
    judges = {r.name: r.model for r in config.panel.raters}
    assert {judges[name] for name in mitigation.measure}.isdisjoint({mitigation.critic, *generators})
