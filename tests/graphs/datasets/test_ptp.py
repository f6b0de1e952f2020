"""PolygloToxicityPrompts: the release format, simpler exports, caches, splits and one-line errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from graphs.datasets import PTP as PTP_SOURCE
from graphs.datasets import PTP_COLUMNS, DatasetError, find_cached, load_ptp
from tests.graphs.datasets.data import CJK, FIXTURES, PTP_JSONL, PTP_WILDCHAT, jsonl_table, one_line, write_arrow


def test_ptp_jsonl_in_the_release_format() -> None:
    frame = load_ptp(PTP_JSONL)
    assert tuple(frame.columns[: len(PTP_COLUMNS)]) == PTP_COLUMNS
    assert len(frame) == 12
    assert set(frame["language"]) == {"en", "zh", "ja"}
    assert frame["toxicity"].between(0, 1).all()
    assert frame["prompt"].map(lambda text: bool(CJK.search(text))).sum() == 8
    assert frame["prompt_id"].is_unique and frame["prompt_id"].str.startswith("ptp-").all()
    assert list(frame["prompt_id"]) == list(load_ptp(PTP_JSONL)["prompt_id"])  # content-derived, stable
    assert "profanity" in frame.columns and "meta_data" in frame.columns  # other source columns follow


def test_ptp_language_filter() -> None:
    frame = load_ptp(PTP_JSONL, languages=["zh", "JA"])
    assert set(frame["language"]) == {"zh", "ja"} and len(frame) == 8
    with pytest.raises(DatasetError, match="no prompts in ko.*en, ja, zh"):
        load_ptp(PTP_JSONL, languages=["ko"])


def test_ptp_wildchat_parquet_takes_language_from_its_folder() -> None:
    frame = load_ptp(PTP_WILDCHAT)
    assert len(frame) == 12 and set(frame["language"]) == {"zh"}
    assert frame["toxicity"].notna().all() and frame["toxicity"].max() > 0.5  # from prompt_perspective
    assert frame["prompt"].map(lambda text: bool(CJK.search(text))).all()


def test_ptp_folder_and_split(tmp_path: Path) -> None:
    both = load_ptp(FIXTURES / "ptp")
    assert len(both) == 24
    assert len(load_ptp(FIXTURES / "ptp", split="wildchat")) == 12
    with pytest.raises(DatasetError, match="unknown split 'tiny'"):
        load_ptp(FIXTURES / "ptp", split="tiny")


def test_ptp_simple_export_and_nested_prompt(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    pd.DataFrame({"language": ["zh", "en"], "prompt": ["你好世界", "hello"], "toxicity": ["0.1", "0.2"]}).to_csv(
        export, index=False
    )
    frame = load_ptp(export)
    assert list(frame["language"]) == ["zh", "en"] and list(frame["toxicity"]) == [0.1, 0.2]

    nested = tmp_path / "ptp-ko" / "rows.jsonl"
    nested.parent.mkdir()
    nested.write_text(json.dumps({"prompt": {"text": "안녕하세요", "toxicity": 0.3}}) + "\n", encoding="utf-8")
    frame = load_ptp(nested)
    assert frame.loc[0, "prompt"] == "안녕하세요" and frame.loc[0, "toxicity"] == 0.3
    assert frame.loc[0, "language"] == "ko"


def test_ptp_missing_file_names_file_and_source(tmp_path: Path) -> None:
    missing = tmp_path / "ptp-zh.jsonl"
    with pytest.raises(DatasetError) as error:
        load_ptp(missing)
    message = one_line(error)
    assert str(missing) in message and "ToxicityPrompts/PolygloToxicityPrompts" in message
    assert isinstance(error.value, ValueError)


def test_ptp_bad_fields(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"text": "hi", "language": "en"}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no field 'toxicity'") as error:
        load_ptp(path)
    assert str(path) in one_line(error)

    path.write_text(
        json.dumps({"text": "hi", "language": "en", "toxicity": 0.1})
        + "\n"
        + json.dumps({"text": "yo", "language": "en", "toxicity": "high"})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError, match="field 'toxicity' in row 2 is not a number"):
        load_ptp(path)

    path.write_text(json.dumps({"text": "hi", "language": "en", "toxicity": 1.5}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"'toxicity' in row 1 is not a number in \[0, 1\]"):
        load_ptp(path)

    path.write_text(json.dumps({"text": "hi", "toxicity": 0.1}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no field 'language'"):
        load_ptp(path)

    path.write_text(json.dumps({"language": "en", "toxicity": 0.1}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no field 'prompt'"):
        load_ptp(path)

    path.write_text('{"text": "hi", "language": "en", "toxicity": 0.1}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2 is not valid JSON"):
        load_ptp(path)


def test_ptp_from_a_datasets_cache(tmp_path: Path) -> None:
    table = jsonl_table(PTP_JSONL).drop_columns(["meta_data"])  # language must come from the config folder
    dataset = tmp_path / "cache" / "ToxicityPrompts___polyglo_toxicity_prompts" / "ptp-zh" / "0.0.0"
    write_arrow(table.slice(0, 3), dataset / "0123456789abcdef" / "polyglo_toxicity_prompts-small.arrow")
    newest = dataset / "fedcba9876543210" / "polyglo_toxicity_prompts-small.arrow"
    write_arrow(table, newest)
    os.utime(newest, (time.time() + 5, time.time() + 5))
    write_arrow(table, dataset / "fedcba9876543210" / "cache-123abc.arrow")  # a map() cache: ignored

    assert find_cached(PTP_SOURCE, tmp_path / "cache") == [newest]
    frame = load_ptp(cache_dir=tmp_path / "cache")
    assert len(frame) == 12 and set(frame["language"]) == {"zh"}
    assert list(frame["toxicity"]) == pytest.approx(table.column("toxicity").to_pylist())


def test_ptp_from_a_hub_snapshot_needs_a_split_when_it_holds_several(tmp_path: Path) -> None:
    snapshot = tmp_path / "hub" / "datasets--ToxicityPrompts--PolygloToxicityPrompts" / "snapshots" / "a1b2c3d4e5f6"
    (snapshot / "ptp-en").mkdir(parents=True)
    table = jsonl_table(PTP_JSONL)
    pq.write_table(table, snapshot / "ptp-en" / "small-00000-of-00001.parquet")
    pq.write_table(table, snapshot / "ptp-en" / "full-00000-of-00001.parquet")
    (snapshot / "README.md").write_text("card", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"several splits \(full, small\); pass split="):
        load_ptp(cache_dir=tmp_path / "hub")
    assert len(load_ptp(cache_dir=tmp_path / "hub", split="small")) == 12


def test_ptp_finds_the_default_cache_through_hf_home(empty_hf_home: Path) -> None:
    write_arrow(
        jsonl_table(PTP_JSONL),
        empty_hf_home / "datasets" / "ToxicityPrompts___polyglo_toxicity_prompts" / "ptp-en" / "data.arrow",
        stream=False,  # the Arrow file format (save_to_disk style) reads too
    )
    assert len(load_ptp(languages=["en"])) == 4


def test_ptp_without_path_or_cache_says_where_to_get_it(empty_hf_home: Path) -> None:
    with pytest.raises(DatasetError) as error:
        load_ptp()
    message = one_line(error)
    assert "no copy found" in message and str(empty_hf_home) in message
    assert "https://huggingface.co/datasets/ToxicityPrompts/PolygloToxicityPrompts" in message
