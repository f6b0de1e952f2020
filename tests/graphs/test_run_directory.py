"""A run directory holds one experiment: one writer at a time (the lock), one config (the fingerprint), model
identity in every key, no store of another schema written to, and readable where nothing can be written."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analysis.io import load_run
from configs.base import ModelSpec
from configs.loader import load_experiment
from configs.schema import RaterSpec
from graphs.cli import main
from graphs.grid import expand_grid
from graphs.records import Critique
from graphs.rundir import ConfigChanged, RunDirectoryLock
from graphs.store import RunDirectoryError
from raters.registry import create_rater
from tests.conftest import ROOT, rate_stored, run_config, scripted_config
from tests.graphs.gated import gated_config, gated_stub, lock_holder, wait_for
from tests.graphs.test_mitigation import mitigation_config


def _rows(run: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"{(run / 'transcripts.sqlite').as_uri()}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


def _counts(run: Path) -> dict[str, int]:
    tables = ("runs", "cells", "generations", "ratings", "critiques", "mitigation", "cache")
    return {t: _rows(run, f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "graphs.cli", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ----------------------------------------------------------------------------------------------------- the lock
def test_a_second_writer_is_refused_with_the_holders_pid_while_readers_read(tmp_path, write_config):
    # one chunk of two in flight: the six answered calls are exactly three whole chunks, so the settled state is
    # reached whatever the order in which the server sees requests (with two chunks in flight, two half-answered
    # chunks could hold the last answers unstored forever)
    with gated_stub(after=6) as (server, gate):
        path = write_config(gated_config(server.base_url, concurrency=1))
        out = tmp_path / "run"
        first = subprocess.Popen(
            [sys.executable, "-m", "graphs.cli", "run", str(path), "--out", str(out), "--no-progress"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            gate.wait_holding()  # the first run is mid-run, holding the lock
            wait_for(lambda: lock_holder(out) == str(first.pid), "the first run's pid in the lock file")
            settled = lambda: (c := _counts(out))["cache"] == c["generations"] == 6  # noqa: E731
            wait_for(settled, "the six answered calls to be stored")
            before = _counts(out)

            for args in (("run", str(path), "--out", str(out)), ("rate", str(out), "--raters", "refusal-patterns")):
                second = _cli(*args, "--no-progress")
                assert second.returncode == 2, second.stderr
                line = _one_error_line(second.stderr)
                assert f"pid {first.pid}" in line and str(out) in line
            assert _counts(out) == before  # the refused writers wrote nothing

            # readers take no lock: analysis reads while the run writes
            analyzed = CliRunner().invoke(main, ["analyze", str(out)])
            assert analyzed.exit_code == 0, analyzed.output + analyzed.stderr
            assert first.poll() is None
        finally:
            first.kill()  # SIGKILL: the kernel drops the lock with the process
            first.wait(timeout=60)
        gate.release()
        resumed = _cli("run", str(path), "--out", str(out), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(out, "SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM generations") == [(108, 108)]


def test_the_library_refuses_a_second_writer_in_the_same_process(tmp_path, write_config):
    path, out = write_config(scripted_config()), tmp_path / "run"
    run_config(path, out, limit=3)
    with RunDirectoryLock(out):
        with pytest.raises(RunDirectoryError, match=f"pid {os.getpid()}"):
            run_config(path, out)
        with pytest.raises(RunDirectoryError, match=f"pid {os.getpid()}"):
            rate_stored(out, path, only=["refusal-patterns"])
    assert run_config(path, out, limit=6).cells_generated == 3  # released


# ------------------------------------------------------------------------------------------ the fingerprint
def test_a_directory_made_by_another_config_is_refused_naming_the_changed_fields(tmp_path, write_config):
    out = tmp_path / "run"
    run_config(write_config(scripted_config(), "a.yaml"), out, limit=12)
    before = _counts(out)
    snapshot = (out / "config.yaml").read_text(encoding="utf-8")

    other = scripted_config(name="another-study")  # a new name alone would be fine; these are not
    other["grid"]["persona_ids"] = ["bad_person"]
    other["models"][0]["model"] = "another-model-id"
    b = write_config(other, "b.yaml")
    with pytest.raises(ConfigChanged) as caught:
        run_config(b, out, limit=12)
    assert caught.value.fields == ["grid.personas", "models.script.model"]
    result = CliRunner().invoke(main, ["run", str(b), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert "grid.personas, models.script.model" in line and "--new-run-dir" in line
    assert _counts(out) == before and (out / "config.yaml").read_text(encoding="utf-8") == snapshot

    # a new name and a different run section are not a different experiment
    renamed = scripted_config(name="renamed", run={"chunk_size": 3, "concurrency": 1, "output_dir": "elsewhere"})
    assert run_config(write_config(renamed, "c.yaml"), out, limit=12).cells_already_done == 12


def test_new_run_dir_writes_a_fresh_sibling_and_says_which(tmp_path, write_config):
    out = tmp_path / "run"
    run_config(write_config(scripted_config(), "a.yaml"), out, limit=6)
    before = _counts(out)
    other = scripted_config()
    other["sampling"]["temperature"] = 0.1
    b = write_config(other, "b.yaml")

    result = CliRunner().invoke(main, ["run", str(b), "--out", str(out), "--no-progress", "--new-run-dir"])
    assert result.exit_code == 0, result.output + result.stderr
    sibling = tmp_path / "run-2"
    assert f"writing into {sibling}" in " ".join(result.stderr.split())
    assert "sampling.temperature" in result.stderr
    assert _counts(out) == before
    assert _rows(sibling, "SELECT COUNT(*) FROM cells") == [(108,)]

    # the library says the same, and a second --new-run-dir resumes the sibling this config made
    moved: list[tuple[Path, list[str]]] = []
    summary = run_config(b, out, new_run_dir=True, on_run_dir=lambda path, fields: moved.append((path, fields)))
    assert summary.run_dir == str(sibling) and summary.moved_from == str(out)
    assert summary.cells_already_done == 108 and moved == [(sibling, ["sampling.temperature"])]
    assert not (tmp_path / "run-3").exists()


def _judged_mitigation_config() -> dict[str, Any]:
    config = mitigation_config()
    reply = '{"rationale": "fine", "toxicity": 1}'
    config["models"] += [
        {"name": "judge_a", "backend": "scripted", "model": "judge-1", "options": {"default": reply}},
        {"name": "judge_b", "backend": "scripted", "model": "judge-2", "options": {"default": reply}},
    ]
    config["panel"]["raters"].append(
        {"name": "judge", "kind": "llm", "model": "judge_a", "rubric": "toxicity", "dimensions": ["toxicity"]}
    )
    return config


@pytest.mark.parametrize(
    "field, change",
    [
        ("mitigation.threshold", lambda c: c["mitigation"].update(threshold=0.0)),
        ("sampling.temperature", lambda c: c["sampling"].update(temperature=0.2)),
        ("panel.raters.judge.model", lambda c: c["panel"]["raters"][2].update(model="judge_b")),
        ("models.judge_a.model", lambda c: c["models"][2].update(model="judge-9")),
        ("mitigation.max_rounds", lambda c: c["mitigation"].update(max_rounds=3)),
    ],
)
def test_a_config_changed_between_resumes_is_refused_unless_allowed(tmp_path, write_config, field, change):
    out = tmp_path / "run"
    config = _judged_mitigation_config()
    run_config(write_config(config, "a.yaml"), out)
    before = _counts(out)
    change(config)
    changed = write_config(config, "b.yaml")
    with pytest.raises(ConfigChanged) as caught:
        run_config(changed, out)
    assert caught.value.fields == [field]
    assert _counts(out) == before

    parent = field.rsplit(".", 1)[0]  # a parent section allows every field under it
    summary = run_config(changed, out, allow_config_change=(parent,))
    assert summary.config_changes == [field] and summary.status == "completed"
    again = run_config(changed, out)  # the directory now holds the new config
    assert again.cells_generated == again.mitigation_retried  # only the cell whose critic fails is tried again
    with pytest.raises(ConfigChanged):
        run_config(write_config(_judged_mitigation_config(), "c.yaml"), out)


def test_adding_a_judge_is_allowed_when_asked_for(tmp_path, write_config):
    out = tmp_path / "run"
    config = mitigation_config()
    run_config(write_config(config, "a.yaml"), out)
    config["panel"]["raters"].append({"name": "second", "kind": "refusal-patterns"})
    grown = write_config(config, "b.yaml")
    result = CliRunner().invoke(main, ["run", str(grown), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2 and "panel.raters.second" in result.stderr
    result = CliRunner().invoke(
        main, ["run", str(grown), "--out", str(out), "--no-progress", "--allow-config-change", "panel.raters.second"]
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "config changes allowed: panel.raters.second" in result.stderr


# ------------------------------------------------------------------------------------------- identity in keys
def test_model_identity_not_the_config_name_is_in_every_key(tmp_path, write_config):
    config = scripted_config()
    config["models"][0].update(backend="openai", model="m", base_url="http://127.0.0.1:1/v1", options={})
    first = [c.key for c in expand_grid(load_experiment(write_config(config, "a.yaml")))]
    config["models"][0]["base_url"] = "http://127.0.0.1:2/v1"
    moved = [c.key for c in expand_grid(load_experiment(write_config(config, "b.yaml")))]
    assert not set(first) & set(moved)  # another server: other cells, never mixed under one model name

    def judge(url: str) -> str:
        spec = RaterSpec(name="j", kind="llm", model=ModelSpec(name="gpt", backend="openai", model="g", base_url=url))
        rater = create_rater(spec)
        assert rater.identity().model == "openai:g"  # the stored label stays short
        return str(rater.identity())

    assert judge("http://127.0.0.1:1/v1") != judge("http://127.0.0.1:2/v1")

    critic = {"name": "critic", "backend": "openai", "model": "c1", "base_url": "http://127.0.0.1:1/v1"}
    other = {**critic, "base_url": "http://127.0.0.1:2/v1"}
    keys = {Critique("g", 1, "critic", "t", "ok", critic_identity=identity).key for identity in (critic, other)}
    assert len(keys) == 2

    out = tmp_path / "run"
    run_config(write_config(mitigation_config(), "m.yaml"), out)
    assert _rows(out, "SELECT DISTINCT critic, critic_model FROM critiques") == [("critic", "scripted:critic")]


# ------------------------------------------------------------------------------------------------ the schema
def test_a_store_of_an_older_schema_is_refused_for_writing_and_still_read(tmp_path, write_config):
    path, out = write_config(scripted_config()), tmp_path / "run"
    run_config(path, out, limit=4)
    with sqlite3.connect(out / "transcripts.sqlite") as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    before = _counts(out)
    for args in (("run", str(path), "--out", str(out)), ("rate", str(out), "--raters", "refusal-patterns")):
        result = CliRunner().invoke(main, [*args, "--no-progress"])
        assert result.exit_code == 2
        assert "made by an older tribunal (store schema 1" in _one_error_line(result.stderr)
    assert _counts(out) == before
    assert len(load_run(out).cells) == 4

    # an old store that holds no cells yet is upgraded in place
    empty = tmp_path / "empty"
    empty.mkdir()
    with sqlite3.connect(empty / "transcripts.sqlite") as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1');"
            "CREATE TABLE critiques (critique_key TEXT PRIMARY KEY, generation_key TEXT NOT NULL, round INTEGER "
            "NOT NULL, critic TEXT NOT NULL, text TEXT, outcome TEXT NOT NULL, created_at REAL NOT NULL);"
        )
    run_config(write_config(mitigation_config(), "m.yaml"), empty)
    assert _rows(empty, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    assert _rows(empty, "SELECT COUNT(*) FROM critiques WHERE critic_model = 'scripted:critic'")[0][0] > 0


# -------------------------------------------------------------------------------------- read-only directories
def _read_only(folder: Path, command: list[str]) -> subprocess.CompletedProcess:
    """Run ``command`` with ``folder`` read-only: permissions for a normal user; for root (whom permissions do
    not stop), a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        try:
            for p in modes:
                p.chmod(0o555 if p.is_dir() else 0o444)
            return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    script = (
        'mount --bind "$1" "$1" || exit 98; mount -o remount,ro,bind "$1" || exit 98; '
        'if touch "$1/.probe" 2>/dev/null; then exit 99; fi; shift; exec "$@"'
    )
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(folder), *command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _can_mount_read_only(tmp_path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    result = _read_only(probe, ["sh", "-c", f'! touch "{probe}/x"'])
    return result.returncode == 0


def test_analyze_and_report_read_a_run_directory_that_cannot_be_written(tmp_path, write_config):
    if not _can_mount_read_only(tmp_path):
        pytest.skip("cannot make a directory read-only here (root without mount namespaces)")
    out = tmp_path / "run"
    run_config(write_config(mitigation_config()), out)
    analyzed = _read_only(out, [sys.executable, "-m", "graphs.cli", "analyze", str(out)])
    assert analyzed.returncode == 0, analyzed.stderr
    assert analyzed.stdout.strip()
    report = tmp_path / "report.html"
    reported = _read_only(out, [sys.executable, "-m", "graphs.cli", "report", str(out), "--out", str(report)])
    assert reported.returncode == 0, reported.stderr
    assert report.stat().st_size > 0

    # a store left in WAL mode (a reader had it open when the run closed it) is read as immutable
    wal = tmp_path / "wal"
    wal.mkdir()
    shutil.copy(out / "transcripts.sqlite", wal / "transcripts.sqlite")
    db = sqlite3.connect(wal / "transcripts.sqlite")
    assert db.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    db.close()
    assert not (wal / "transcripts.sqlite-wal").exists()
    code = f"from analysis.io import load_run; print(len(load_run({str(wal)!r}).generations))"
    loaded = _read_only(wal, [sys.executable, "-c", code])
    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout) == len(load_run(out).generations)
