"""``tribunal bench build``: the domain table, and bad configs rejected in one line before anything is written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from graphs.cli.stage1 import bench
from tests.graphs.stage1.scripted import stage1_config_data
from tests.helpers.prompt_grids import write_yaml


def test_bench_build_prints_the_domain_table(tmp_path):
    path = write_yaml(tmp_path / "bench.yaml", stage1_config_data())
    result = CliRunner().invoke(bench, ["build", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "animal_abuse" in result.output and "benchmark: 10 prompts" in result.output
    assert "2 prompt(s) could not be classified (parse_error 1, timeout 1)" in result.stderr
    assert (tmp_path / "out" / "stage1.json").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"classifer": {"model": "judge"}}, "classifer: unknown field (check its spelling)"),
        ({"classifier": {"model": "nobody"}}, "classifier.model: 'nobody' is not in models"),
        ({"dedup": {"max_hamming": 65}}, "dedup.max_hamming: Input should be less than or equal to 64"),
        ({"prompts": {"kind": "file"}}, "prompts: kind 'file' needs 'path'"),
        ({"prompts": {"kind": "file", "path": "missing.jsonl"}}, "prompt file"),
    ],
)
def test_bench_build_rejects_a_bad_config_in_one_line_and_writes_nothing(tmp_path, change, expected):
    path = write_yaml(tmp_path / "bad.yaml", {**stage1_config_data(), **change})
    out = tmp_path / "out"
    result = CliRunner().invoke(bench, ["build", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and expected in lines[0], result.stderr
    assert not out.exists()
