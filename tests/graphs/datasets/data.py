"""The dataset fixtures (``tests/fixtures/datasets``) and helpers that write them in the formats of caches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from graphs.datasets import DatasetError
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "datasets"
PTP_JSONL = FIXTURES / "ptp" / "ptp_sample.jsonl"
PTP_WILDCHAT = FIXTURES / "ptp" / "wildchat-zh"
DICES_CSV = FIXTURES / "dices" / "diverse_safety_adversarial_dialog_350_sample.csv"
BT_JSONL = FIXTURES / "beavertails" / "30k_test.jsonl"
BT_PARQUET = FIXTURES / "beavertails" / "330k_train.parquet"
CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


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
