"""Finding and reading a dataset's files whatever the loader (:mod:`graphs.datasets.files`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphs.datasets import DatasetError, load_beavertails


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not really")
    with pytest.raises(DatasetError, match="cannot read .*data.xlsx"):
        load_beavertails(path)


def test_a_prompt_file_is_read_only_from_a_regular_file_within_the_limit(tmp_path, monkeypatch):
    import os

    from graphs.datasets import DatasetError, read_prompt_table

    fifo = tmp_path / "prompts.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="regular file"):
        read_prompt_table(fifo)  # a FIFO would block a plain read forever
    big = tmp_path / "big.csv"
    big.write_text("id,prompt\n" + "p,x\n" * 2000, encoding="utf-8")
    monkeypatch.setenv("TRIBUNAL_MAX_INPUT_BYTES", "1000")
    with pytest.raises(DatasetError, match="TRIBUNAL_MAX_INPUT_BYTES"):
        read_prompt_table(big)
    monkeypatch.delenv("TRIBUNAL_MAX_INPUT_BYTES")
    assert len(read_prompt_table(big)) == 2000
