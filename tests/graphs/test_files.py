"""Atomic file writing (:mod:`graphs.files`): a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import pytest

from graphs.files import atomic_write_text


def test_atomic_write_text_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n", encoding="utf-8")
    atomic_write_text(path, "新\r\nnew\n")
    assert path.read_bytes() == "新\r\nnew\n".encode()  # newlines as given, UTF-8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_write_text_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "\ud800")  # a lone surrogate cannot be encoded
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
