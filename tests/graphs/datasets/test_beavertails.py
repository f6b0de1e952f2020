"""BeaverTails: its harm-domain keys, JSONL, Parquet, compressed and flat files, caches, splits and errors."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pandas as pd
import pytest

from graphs.datasets import BEAVERTAILS_CATEGORIES, BEAVERTAILS_COLUMNS, DatasetError, load_beavertails
from tests.graphs.datasets.data import BT_JSONL, BT_PARQUET, CJK, FIXTURES, jsonl_table, one_line, write_arrow


def test_beavertails_harm_domains_are_the_dataset_keys() -> None:
    assert len(BEAVERTAILS_CATEGORIES) == 14 == len(set(BEAVERTAILS_CATEGORIES))
    first = json.loads(BT_JSONL.read_text(encoding="utf-8").splitlines()[0])
    assert tuple(first["category"]) == BEAVERTAILS_CATEGORIES


def test_beavertails_jsonl() -> None:
    frame = load_beavertails(BT_JSONL)
    assert tuple(frame.columns) == BEAVERTAILS_COLUMNS
    assert len(frame) == 12 and frame["is_safe"].dtype == bool
    for _, row in frame.iterrows():
        assert row["harm_categories"] == tuple(key for key in BEAVERTAILS_CATEGORIES if row[key])
        assert row["is_safe"] == (not row["harm_categories"])
    assert frame.loc[2, "harm_categories"] == ("discrimination,stereotype,injustice", "hate_speech,offensive_language")
    assert frame["prompt"].map(lambda text: bool(CJK.search(text))).sum() == 3


def test_beavertails_parquet_matches_jsonl() -> None:
    pd.testing.assert_frame_equal(load_beavertails(BT_PARQUET), load_beavertails(BT_JSONL))


def test_beavertails_folder_with_two_splits() -> None:
    with pytest.raises(DatasetError, match=r"several splits \(30k_test, 330k_train\)"):
        load_beavertails(FIXTURES / "beavertails")
    assert len(load_beavertails(FIXTURES / "beavertails", split="30k_test")) == 12


def test_beavertails_compressed_jsonl_and_flat_columns(tmp_path: Path) -> None:
    compressed = tmp_path / "round0" / "30k" / "test.jsonl.xz"
    compressed.parent.mkdir(parents=True)
    with lzma.open(compressed, "wb") as out:
        out.write(BT_JSONL.read_bytes())
    pd.testing.assert_frame_equal(load_beavertails(compressed), load_beavertails(BT_JSONL))

    flat = pd.json_normalize([json.loads(line) for line in BT_JSONL.read_text(encoding="utf-8").splitlines()])
    assert "category.self_harm" in flat.columns
    flat.to_csv(tmp_path / "flat.csv", index=False)
    pd.testing.assert_frame_equal(load_beavertails(tmp_path / "flat.csv"), load_beavertails(BT_JSONL))


def test_beavertails_from_a_datasets_cache(tmp_path: Path) -> None:
    table = jsonl_table(BT_JSONL)
    base = tmp_path / "PKU-Alignment___beaver_tails" / "default" / "0.0.0" / "9f8e7d6c5b4a3210"
    write_arrow(table, base / "beaver_tails-30k_test.arrow")
    write_arrow(table.slice(0, 5), base / "beaver_tails-330k_test.arrow")
    assert len(load_beavertails(cache_dir=tmp_path, split="30k_test")) == 12
    assert len(load_beavertails(cache_dir=tmp_path, split="330k_test")) == 5
    with pytest.raises(DatasetError, match="several splits"):
        load_beavertails(cache_dir=tmp_path)


def test_beavertails_missing_file_and_bad_fields(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        load_beavertails(tmp_path / "train.jsonl")
    message = one_line(error)
    assert "train.jsonl" in message and "PKU-Alignment/BeaverTails" in message

    records = [json.loads(line) for line in BT_JSONL.read_text(encoding="utf-8").splitlines()]
    path = tmp_path / "rows.jsonl"

    def write(rows: list[dict]) -> None:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    write([{k: v for k, v in r.items() if k != "is_safe"} for r in records])
    with pytest.raises(DatasetError, match="no field 'is_safe'"):
        load_beavertails(path)

    write([records[0], {**records[1], "is_safe": "maybe"}])
    with pytest.raises(DatasetError, match="field 'is_safe' in row 2 is not a boolean"):
        load_beavertails(path)

    write([{**records[0], "category": {k: v for k, v in records[0]["category"].items() if k != "self_harm"}}])
    with pytest.raises(DatasetError, match="field 'category' in row 1 lacks the key 'self_harm'"):
        load_beavertails(path)

    write([{k: v for k, v in r.items() if k != "category"} for r in records])
    with pytest.raises(DatasetError, match="no field 'category'"):
        load_beavertails(path)
