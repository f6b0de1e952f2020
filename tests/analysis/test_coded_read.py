"""``load_run`` reads codes and numbers as text (:mod:`analysis.coded_read`): every value, its row order and its
dtype equal a plain ``SELECT`` of the same rows read one Python object per value, on both paths of a real
column (the distinct-values join and, past :data:`analysis.coded_read.MAX_REAL_VALUES`, floats per row),
with ``NULL`` s, several chunks and full-precision floats that decimal text would round."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

import analysis.coded_read as coded_read
from analysis.io import load_run
from graphs.tables import STORE_FILENAME
from tests.analysis.stores import tiny_store
from tests.helpers.synthetic import synthetic_run


def _plain(path, sql: str) -> pd.DataFrame:
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute(sql)
        return pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description], dtype=object)
    finally:
        conn.close()


def _assert_same(frame: pd.DataFrame, plain: pd.DataFrame) -> None:
    assert len(frame) == len(plain)
    for col in plain.columns:
        got, want = frame[col], plain[col].to_numpy(dtype=object)
        if isinstance(got.dtype, pd.CategoricalDtype):
            cats = list(got.cat.categories)
            assert cats == sorted({v for v in want if v is not None}, key=str), col
            values = got.astype(object).to_numpy()
            assert [None if pd.isna(v) else v for v in values] == list(want), col
        else:
            expected = np.array([np.nan if v is None else float(v) for v in want])
            # bit for bit, NaN where NULL
            assert np.array_equal(got.to_numpy(dtype=float), expected, equal_nan=True), col
            assert got.dtype == (np.int64 if not np.isnan(expected).any() and col in INTEGER else np.float64), col


INTEGER = {"cell_id", "generation_id", "round", "repeat", "is_baseline", "seed", "attempts"}
CELLS = (
    "SELECT c.rowid AS cell_id, model, persona_id, persona_kind, persona_category, persona_gender, target_id, "
    "target_category, template_id, template_style, language, repeat, is_baseline, seed FROM cells c"
)
GENERATIONS = (
    "SELECT g.rowid AS generation_id, c.rowid AS cell_id, g.round, p.rowid AS parent_id, g.refusal, "
    "g.prompt_tokens, g.completion_tokens, g.latency_s, g.attempts, g.model, g.outcome, g.backend, "
    "g.finish_reason FROM generations g LEFT JOIN cells c ON c.cell_key = g.cell_key "
    "LEFT JOIN generations p ON p.generation_key = g.parent_key"
)
RATINGS = (
    "SELECT g.rowid AS generation_id, r.rater, r.rater_name, r.rater_model, r.framing_attribute, "
    "r.framing_value, r.rubric, r.rubric_version, r.scale, r.dimension, r.score, r.outcome FROM ratings r "
    "JOIN generations g ON g.generation_key = r.generation_key"
)


def _check(run_dir) -> None:
    path = run_dir / STORE_FILENAME
    tables = load_run(run_dir, usage=True)
    _assert_same(tables.cells, _plain(path, CELLS))
    _assert_same(tables.generations, _plain(path, GENERATIONS))
    _assert_same(tables.ratings, _plain(path, RATINGS))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    run_dir = synthetic_run(tmp_path_factory.mktemp("coded") / "run", n_generations=3000, n_raters=3, seed=2)
    conn = sqlite3.connect(run_dir / STORE_FILENAME)
    # floats that 15 significant digits would not give back, NULL usage columns, a refusal left unknown
    conn.execute("UPDATE ratings SET score = score / 3.0 + 1e-17 WHERE rowid % 3 = 0 AND score IS NOT NULL")
    conn.execute("UPDATE generations SET latency_s = 0.1 + rowid / 7.0, prompt_tokens = NULL WHERE rowid % 5 = 0")
    conn.execute("UPDATE generations SET refusal = NULL WHERE rowid % 11 = 0")
    conn.commit()
    conn.close()
    return run_dir


def test_the_coded_read_equals_a_plain_select(synthetic, monkeypatch):
    monkeypatch.setattr(coded_read, "CHUNK_ROWS", 1000)  # several chunks per table
    _check(synthetic)


def test_past_the_distinct_value_limit_real_columns_are_read_per_row(synthetic, monkeypatch):
    monkeypatch.setattr(coded_read, "MAX_REAL_VALUES", 10)
    _check(synthetic)


def test_the_tiny_store_and_an_empty_one(tmp_path):
    _check(tiny_store(tmp_path / "tiny"))
    empty = tiny_store(tmp_path / "empty", ratings=False)
    _check(empty)
    assert load_run(empty).ratings.empty


def test_a_value_that_is_not_a_number_is_a_one_line_error(tmp_path):
    run_dir = tiny_store(tmp_path / "bad")
    conn = sqlite3.connect(run_dir / STORE_FILENAME)
    conn.execute("UPDATE cells SET seed = 'seven' WHERE rowid = 2")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match=r"cells in .*transcripts.sqlite, column seed: a value that is not a number"):
        load_run(run_dir)
