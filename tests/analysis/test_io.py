"""Loading run directories and the analysis frame (:mod:`analysis.io`)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from analysis import analysis_frame, load_run
from analysis.io import parse_run_config
from graphs.tables import STORE_FILENAME
from tests.analysis.stores import tiny_store


def test_load_run_and_analysis_frame(tmp_path):
    tables = load_run(tiny_store(tmp_path / "run"), keys=True, text=True)
    assert len(tables.cells) == 3 and len(tables.generations) == 4 and len(tables.ratings) == 7
    gens = tables.generations.set_index("generation_key")
    assert gens.loc["g2r", "parent_id"] == gens.loc["g2", "generation_id"]
    assert np.isnan(gens.loc["g3", "refusal"]) and gens.loc["g2", "text"].startswith("nasty")
    r = tables.ratings.set_index("rating_key")
    assert np.isnan(r.loc["r4", "score"]) and r.loc["r6", "framing_value"] == "female"
    assert list(tables.mitigation.columns) == ["cell_id", "rounds", "stop_reason"]

    af = analysis_frame(tables)
    frame = af.frame.set_index("generation_id")
    assert len(frame) == 3  # round 0 only
    g1, g2 = gens.loc["g1", "generation_id"], gens.loc["g2", "generation_id"]
    assert frame.loc[g1, "toxicity:judge-b"] == pytest.approx(0.2)
    assert np.isnan(frame.loc[g2, "toxicity:judge-b"])  # parse error -> NaN, not a number
    assert frame.loc[g1, "persona_category"] == "none"
    cov = af.coverage.set_index(["rater", "dimension", "outcome"])["n"]
    assert cov[("judge-b", "toxicity", "parse_error")] == 1
    assert cov[("judge-b", "toxicity", "not_rated")] == 1  # g3 failed, never rated
    assert set(af.columns_for("toxicity")) == {"toxicity:judge-a", "toxicity:judge-b"}


def test_load_run_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a tribunal run directory"):
        load_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / STORE_FILENAME).write_text("not sqlite at all, just text" * 100)
    with pytest.raises(ValueError, match="not a tribunal transcript store"):
        load_run(bad)
    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / STORE_FILENAME).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(ValueError, match="no table cells"):
        load_run(other)


def test_parse_run_config_keeps_only_json_objects():
    assert parse_run_config('{"study": "value_inertia"}') == {"study": "value_inertia"}
    for text in (None, "", "not json", "[1, 2]", "3"):
        assert parse_run_config(text) is None
