"""A rubric named by path is read like every other input: only from a regular file, within the size limit."""

from __future__ import annotations

import os

import pytest

from raters.rubric import load_rubric


def test_a_rubric_path_to_a_device_is_refused_not_read_forever(tmp_path):
    with pytest.raises(ValueError, match="rubric /dev/zero: .*not a regular file"):
        load_rubric("/dev/zero")


def test_a_rubric_path_to_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "rubric.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load_rubric(str(fifo))
