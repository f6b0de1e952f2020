"""Lazy grid expansion: ``--limit`` costs the cells it takes, not the whole grid (issue 17, item 13).

Work is counted, not timed: the tests count how many :class:`~graphs.records.Cell` objects the grid builds.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import graphs.grid as grid_module
from configs.loader import load_experiment
from graphs.grid import count_cells, expand_grid, grid_cells
from graphs.records import Cell
from tests.conftest import run_config, scripted_config

PERSONAS = 5_000


@pytest.fixture
def built(monkeypatch) -> list[int]:
    """How many cells the grid module has built (a one-element counter)."""
    counter = [0]

    def counting_cell(**fields: Any) -> Cell:
        counter[0] += 1
        return Cell(**fields)

    monkeypatch.setattr(grid_module, "Cell", counting_cell)
    return counter


@pytest.fixture
def large_config(write_config):
    config = scripted_config()
    grid = config["grid"]
    grid.update(random_personas={"n": PERSONAS}, languages=["en"], repeats=1)
    for key in ("personas", "persona_ids"):
        grid.pop(key)
    return write_config(config)


def test_count_and_slices_of_a_large_grid_build_only_what_they_take(large_config, built):
    experiment = load_experiment(large_config)
    total = count_cells(experiment)
    assert total == (PERSONAS + 1) * 3 * 3
    assert built[0] == 0
    first = list(itertools.islice(expand_grid(experiment), 3))
    assert len(first) == 3 and built[0] == 3
    assert grid_cells(experiment, limit=2) == first[:2]
    assert built[0] == 5


def test_run_with_a_limit_builds_only_the_limited_cells(large_config, tmp_path, built):
    summary = run_config(large_config, tmp_path / "run", limit=2)
    assert summary.cells_total == 2 and summary.cells_generated == 2
    assert built[0] <= 2
