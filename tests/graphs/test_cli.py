"""The ``tribunal`` command line: what it prints and its exit codes. Library behaviour is tested through the
library (``tests.conftest.run_config``/``rate_stored``); these tests check only the CLI's own layer."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from graphs.cli import main
from tests.conftest import scripted_config
from tests.graphs.test_mitigation import mitigation_config
from tests.raters.test_moral_probe import _probe_config


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_run_prints_its_summary_and_says_when_it_resumes(tmp_path, write_config):
    path, out = write_config(scripted_config()), tmp_path / "run"

    first = invoke("run", str(path), "--out", str(out), "--no-progress", "--limit", "7")
    assert first.exit_code == 0, first.output + first.stderr
    assert "generated now" in first.output and "resuming" not in first.stderr

    second = invoke("run", str(path), "--out", str(out), "--no-progress")
    assert second.exit_code == 0
    assert "resuming: 7 of 108 cells already done" in second.stderr


def test_run_reports_failed_cells_and_mitigation_stop_reasons(tmp_path, write_config):
    config = scripted_config()
    config["models"][0]["options"]["rules"].insert(0, {"match": "Muslims|穆斯林", "failure": "timeout"})
    failed = invoke("run", str(write_config(config)), "--out", str(tmp_path / "a"), "--no-progress")
    assert failed.exit_code == 0
    assert "36 cell(s) failed; they are stored with their failure type" in " ".join(failed.stderr.split())

    mitigated = invoke("run", str(write_config(mitigation_config(), "m.yaml")), "--out", str(tmp_path / "b"))
    assert mitigated.exit_code == 0, mitigated.output + mitigated.stderr
    assert "stop reasons" in mitigated.output


def test_validate_describes_a_prompt_grid(tmp_path, write_config):
    result = invoke("validate", str(write_config(_probe_config(tmp_path / "run"))))
    assert result.exit_code == 0, result.output + result.stderr
    assert "7 moral probe(s) × 2 language(s), 1 repeat(s) → 28 cells" in result.output


def test_rate_prints_a_summary_and_refuses_bad_arguments(tmp_path, write_config):
    config = scripted_config(panel={"raters": [{"name": "refusal", "kind": "refusal-patterns"}]})
    out = tmp_path / "run"
    assert invoke("run", str(write_config(config)), "--out", str(out), "--no-progress", "--limit", "4").exit_code == 0

    again = invoke("rate", str(out), "--raters", "refusal,profanity-check", "--no-progress")
    assert again.exit_code == 0, again.output + again.stderr
    assert "ratings written" in again.output and "already stored (skipped)" in again.output

    unknown = invoke("rate", str(out), "--raters", "nope:Nothing", "--no-progress")
    assert unknown.exit_code == 2 and "--raters nope:Nothing" in unknown.stderr
    assert invoke("rate", str(tmp_path / "missing"), "--no-progress").exit_code == 2


def test_export_errors_are_one_line_with_exit_2(tmp_path, write_config):
    out = tmp_path / "run"
    assert invoke("run", str(write_config(scripted_config())), "--out", str(out), "--limit", "2").exit_code == 0

    missing = invoke("export", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "not a tribunal run directory" in missing.stderr
    table = invoke("export", str(out), "--table", "secrets")
    assert table.exit_code == 2 and "unknown table(s) secrets" in table.stderr
    assert len(table.stderr.strip().splitlines()) == 1


def test_raters_list_shows_each_kinds_default_dimensions():
    result = invoke("raters", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "moral-probe" in line)
    assert "care" in row  # the first of its default dimensions


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def test_a_run_whose_cells_all_failed_exits_1_with_one_line(tmp_path, write_config):
    config = scripted_config()
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    config["models"] = [{"name": "api", "backend": "openai", "model": "m", "base_url": url, "max_retries": 0}]
    result = invoke("run", str(write_config(config)), "--out", str(tmp_path / "run"), "--no-progress", "--limit", "4")
    assert result.exit_code == 1, result.output + result.stderr
    line = " ".join(result.stderr.split())
    assert "error: 4 of 4 cells failed (connection_error 4); they are stored with their failure type" in line


def test_more_failures_than_the_configured_share_exit_1(tmp_path, write_config):
    config = scripted_config()
    config["models"][0]["options"]["rules"].insert(0, {"match": "Muslims|穆斯林", "failure": "timeout"})
    config["run"]["max_failed_share"] = 0.25  # 36 of 108 cells fail
    result = invoke("run", str(write_config(config)), "--out", str(tmp_path / "run"), "--no-progress")
    assert result.exit_code == 1
    assert "36 of 108 cells failed (timeout 36), more than run.max_failed_share (0.25)" in " ".join(
        result.stderr.split()
    )
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_a_base_url_that_is_not_an_http_url_is_a_config_error(tmp_path, write_config):
    config = scripted_config()
    config["models"] = [{"name": "api", "backend": "openai", "model": "m", "base_url": "localhost:8000/v1"}]
    path = write_config(config)
    for command in (("validate", str(path)), ("run", str(path), "--out", str(tmp_path / "run"))):
        result = invoke(*command)
        assert result.exit_code == 2
        assert "models[0].base_url: not an http(s) URL" in result.stderr and "localhost:8000/v1'" not in result.stderr
    assert not (tmp_path / "run").exists()
