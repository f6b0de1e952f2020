"""Dataset loaders read local files and Hugging Face caches, normalise columns, and fail with one clear line."""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import socket
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs.datasets import (
    BEAVERTAILS_CATEGORIES,
    BEAVERTAILS_COLUMNS,
    DICES_COLUMNS,
    DICES_DEGREES_OF_HARM,
    PTP_COLUMNS,
    DatasetError,
    find_cached,
    load_beavertails,
    load_dices,
    load_ptp,
)
from configs.datasets import PTP as PTP_SOURCE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
PTP_JSONL = FIXTURES / "ptp" / "ptp_sample.jsonl"
PTP_WILDCHAT = FIXTURES / "ptp" / "wildchat-zh"
DICES_CSV = FIXTURES / "dices" / "diverse_safety_adversarial_dialog_350_sample.csv"
BT_JSONL = FIXTURES / "beavertails" / "30k_test.jsonl"
BT_PARQUET = FIXTURES / "beavertails" / "330k_train.parquet"
CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dataset loader tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def empty_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every Hugging Face cache variable at an empty folder."""
    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


def write_arrow(table: pa.Table, path: Path, *, stream: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink:
        writer = pa.ipc.new_stream(sink, table.schema) if stream else pa.ipc.new_file(sink, table.schema)
        with writer:
            writer.write_table(table)


def jsonl_table(path: Path) -> pa.Table:
    return pa.Table.from_pylist([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


def one_line(error: pytest.ExceptionInfo[DatasetError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------- PolygloToxicityPrompts
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


# ---------------------------------------------------------------------------------------------- DICES
def test_dices_csv_in_the_release_format() -> None:
    frame = load_dices(DICES_CSV)
    assert tuple(frame.columns[: len(DICES_COLUMNS)]) == DICES_COLUMNS
    assert len(frame) == 12 and frame["item_id"].nunique() == 4 and frame["rater_id"].nunique() == 3
    assert set(frame["q_overall"]) == {"Yes", "No", "Unsure"}
    assert set(frame["degree_of_harm"]) == set(DICES_DEGREES_OF_HARM)
    assert set(frame["safety_gold"]) == {"Yes", "No"}
    assert frame["rater_race_raw"].notna().all()  # from rater_raw_race, DICES-350's spelling
    assert frame["rater_locale"].isna().all() and set(frame["dices_set"]) == {"350"}
    assert frame["context"].map(lambda text: bool(CJK.search(text))).any()
    assert "Q2_harmful_content_overall" in frame.columns


def test_dices_990_spelling_and_a_folder_with_both_sets(tmp_path: Path) -> None:
    source = pd.read_csv(DICES_CSV, dtype=str, keep_default_na=False)
    nine_ninety = source.drop(columns=["safety_gold"]).rename(columns={"rater_raw_race": "rater_race_raw"})
    nine_ninety["rater_locale"] = "IN"
    (tmp_path / "350").mkdir()
    (tmp_path / "990").mkdir()
    shutil.copy(DICES_CSV, tmp_path / "350" / "diverse_safety_adversarial_dialog_350.csv")
    nine_ninety.to_csv(tmp_path / "990" / "diverse_safety_adversarial_dialog_990.csv", index=False)

    frame = load_dices(tmp_path / "990" / "diverse_safety_adversarial_dialog_990.csv")
    assert frame["safety_gold"].isna().all() and set(frame["rater_locale"]) == {"IN"}
    assert set(frame["dices_set"]) == {"990"} and frame["rater_race_raw"].notna().all()

    both = load_dices(tmp_path)
    assert len(both) == 24 and set(both["dices_set"]) == {"350", "990"}
    assert set(load_dices(tmp_path, split="990")["dices_set"]) == {"990"}


def test_dices_missing_file_and_bad_field(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        load_dices(tmp_path / "dices.csv")
    message = one_line(error)
    assert "dices.csv" in message and "github.com/google-research-datasets/dices-dataset" in message

    broken = tmp_path / "broken.csv"
    pd.read_csv(DICES_CSV, dtype=str).drop(columns=["Q_overall"]).to_csv(broken, index=False)
    with pytest.raises(DatasetError, match="no field 'Q_overall'") as error:
        load_dices(broken)
    assert str(broken) in one_line(error)


# ------------------------------------------------------------------------------------------ BeaverTails
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


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not really")
    with pytest.raises(DatasetError, match="cannot read .*data.xlsx"):
        load_beavertails(path)
