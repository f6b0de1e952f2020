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
