"""The Ray engine (``tribunal run --engine ray``) in Ray's local mode: the same rows as the local engine, typed
failures under injected faults, a SIGKILL'd driver that resumes to the rows of an uninterrupted run, and every
reader (analyze, export, rate) reading the Parquet run directory as it reads a SQLite one.

One Ray instance serves the module (``ray.init`` costs seconds); ``num_cpus=6`` although the machine has fewer
cores, because a pipeline with too few CPU slots was seen to stall.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analysis.parquet_run import COMMITS_DIRNAME, materialize
from configs.loader import load_experiment
from graphs.cli import main as cli
from graphs.tables import GENERATION_OUTCOMES, RATING_OUTCOMES
from tests.conftest import STARTER, rate_stored, run_config, scripted_config
from tests.graphs.gated import gated_config, gated_stub, wait_for
from tests.graphs.test_mitigation import mitigation_config
from tests.helpers.stub_server import StubConfig, StubServer

ray = pytest.importorskip("ray", reason="the ray engine needs ray: pip install -e '.[ray]'")

from graphs.engines.ray_engine import run_on_ray  # noqa: E402

#: columns that record when or how fast, not what: the only ones allowed to differ between engines
VOLATILE = {"created_at", "latency_s", "attempts"}
TABLES = ("cells", "generations", "ratings", "aggregates", "critiques", "mitigation")


@pytest.fixture(scope="module")
def cluster() -> Any:
    context = ray.init(num_cpus=6, include_dashboard=False, logging_level="WARNING")
    yield context.address_info["gcs_address"]
    ray.shutdown()


def rows(store: Path, table: str) -> list[tuple]:
    """A table's rows without the volatile columns, sorted."""
    with sqlite3.connect(store) as db:
        cursor = db.execute(f"SELECT * FROM {table}")
        keep = [i for i, d in enumerate(cursor.description) if d[0] not in VOLATILE]
        return sorted(tuple(row[i] for i in keep) for row in cursor.fetchall())


def assert_same_rows(sqlite_run: Path, parquet_run: Path) -> None:
    local, parquet = sqlite_run / "transcripts.sqlite", materialize(parquet_run)
    for table in TABLES:
        assert rows(local, table) == rows(parquet, table), table


def quickstart_sized() -> dict[str, Any]:
    """The mitigation test grid at the quickstart's size: 4 personas and the baseline × 4 targets × 3 templates ×
    2 repeats = 120 cells, a real offline panel, a critic that fails on one target (``rewrite_failed``)."""
    config = mitigation_config()
    config["grid"].update(
        personas=str(STARTER / "personas.yaml"),
        persona_ids=["good_person", "bad_person", "talk_show_host", "union_organizer"],
        target_ids=["women", "immigrants", "older_people", "muslims"],
        repeats=2,
        baseline=True,
    )
    config["run"] = {"chunk_size": 12, "concurrency": 2}
    return config


def parquet_keys(run: Path, table: str, key: str) -> list[str]:
    """The keys of a table's committed Parquet parts, duplicates kept."""
    import pyarrow.parquet as pq

    committed = {p.stem for p in (run / COMMITS_DIRNAME).glob("*.json")}
    keys: list[str] = []
    for part in sorted((run / table).glob("part-*.parquet")):
        assert part.stem.removeprefix("part-") in committed, f"uncommitted part left behind: {part}"
        keys += pq.read_table(part, columns=[key]).column(key).to_pylist()
    return keys


@pytest.fixture(scope="module")
def both_engines(cluster, tmp_path_factory) -> dict[str, Any]:
    """The quickstart-sized grid run by each engine, then resumed by each (the failed critiques are redone)."""
    root = tmp_path_factory.mktemp("engines")
    path = root / "config.yaml"
    path.write_text(json.dumps(quickstart_sized()), encoding="utf-8")
    local, parquet = root / "local", root / "parquet"
    first = {"local": run_config(path, local), "ray": run_on_ray(load_experiment(path), parquet)}
    assert_same_rows(local, parquet)  # before the resume: the first pass alone must agree too
    second = {"local": run_config(path, local), "ray": run_on_ray(load_experiment(path), parquet)}
    return {"path": path, "local": local, "parquet": parquet, "first": first, "second": second}


def test_both_engines_write_the_same_rows(both_engines):
    first, second = both_engines["first"], both_engines["second"]
    assert first["ray"].cells_total == 120 and first["ray"].cells_generated == 120
    for name in ("outcomes", "ratings", "stop_reasons", "rewrites", "critiques", "rating_count"):
        assert getattr(first["ray"], name) == getattr(first["local"], name), name
    assert first["ray"].stop_reasons["rewrite_failed"] > 0  # the critic's failures, retried by the second pass
    assert second["ray"].mitigation_retried == second["local"].mitigation_retried > 0
    assert second["ray"].cells_generated == second["local"].cells_generated
    assert_same_rows(both_engines["local"], both_engines["parquet"])
    # a retried loop replaces its rows, it does not add to them
    assert len(rows(materialize(both_engines["parquet"]), "mitigation")) == len(
        rows(both_engines["local"] / "transcripts.sqlite", "mitigation")
    )


def test_analyze_reads_the_parquet_run_as_the_sqlite_run(both_engines, tmp_path):
    outputs = {}
    for name in ("local", "parquet"):
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(cli, ["analyze", str(both_engines[name]), "--json", str(out)])
        assert result.exit_code == 0, result.output
        outputs[name] = json.loads(out.read_text(encoding="utf-8"))
    # the same figures; sums over rows in another order may differ in the last bits, and the examples shown
    # are drawn among equal scores by storage order: the same scores, not necessarily the same rows
    examples = {
        name: sorted((e["outcome"], e["toxicity"]) for e in out.pop("examples")) for name, out in outputs.items()
    }
    assert examples["parquet"] == examples["local"]
    assert_close(outputs["parquet"], outputs["local"])
    assert outputs["local"]  # tables were made at all
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(both_engines["parquet"]), "--out", str(report)])
    assert result.exit_code == 0, result.output
    assert "Nice people, really." in report.read_text(encoding="utf-8")  # the generations' transcripts are in it


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(expected, float) and isinstance(got, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert got == expected, where


def test_export_writes_the_same_columns_from_a_parquet_run(both_engines, tmp_path):
    import pyarrow.parquet as pq

    for name in ("local", "parquet"):
        result = CliRunner().invoke(cli, ["export", str(both_engines[name]), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    for table in (*TABLES, "runs"):
        local = pq.read_table(tmp_path / "local" / f"{table}.parquet")
        parquet = pq.read_table(tmp_path / "parquet" / f"{table}.parquet")
        assert local.column_names == parquet.column_names, table
        # and the engine's own parts carry those columns too
        part = next((both_engines["parquet"] / table).glob("part-*.parquet"))
        assert pq.read_schema(part).names == local.column_names, table
        if table != "runs":
            assert parquet.num_rows == local.num_rows, table


def test_rate_adds_ratings_to_a_parquet_run_as_to_a_sqlite_run(both_engines, tmp_path):
    config = quickstart_sized()
    config["panel"]["raters"].append({"name": "refusal2", "kind": "refusal-patterns"})
    path = tmp_path / "rate.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    # each engine's run in a copy, so that the other tests' runs stay as they are
    import shutil

    local, parquet = tmp_path / "local", tmp_path / "parquet"
    shutil.copytree(both_engines["local"], local)
    shutil.copytree(both_engines["parquet"], parquet)
    summaries = {"local": rate_stored(local, path), "parquet": rate_stored(parquet, path)}
    assert summaries["parquet"].ratings_written == summaries["local"].ratings_written > 0
    assert_same_rows(local, parquet)
    assert any((parquet / "ratings").glob("part-*.parquet"))
    again = rate_stored(parquet, path)  # nothing new to ask: the new ratings were written back
    assert again.ratings_written == 0


def test_injected_faults_are_typed_nothing_lost_nothing_duplicated(cluster, tmp_path, write_config):
    faults = {"500": 0.03, "503": 0.02, "429": 0.02, "drop": 0.02, "malformed": 0.01}  # 10 % of the requests
    with StubServer(StubConfig(seed=3, faults=faults, retry_after_s=0.01)) as server:
        config = gated_config(server.base_url, chunk_size=6, concurrency=2)
        config["models"][0].update(timeout_s=10)
        config["models"].append(
            {"name": "judge", "backend": "openai", "model": "judge", "base_url": server.base_url, "max_retries": 0}
        )
        config["grid"]["models"] = ["gen"]
        config["panel"] = {
            "raters": [
                {"name": "llm", "kind": "llm", "model": "judge", "rubric": "toxicity", "dimensions": ["toxicity"]}
            ]
        }
        path = write_config(config)
        out = tmp_path / "run"
        summary = run_on_ray(load_experiment(path), out)
        stats = server.stats
        store = materialize(out)
        with sqlite3.connect(store) as db:
            generations = db.execute(
                "SELECT cell_key, outcome, text, error FROM generations WHERE round = 0"
            ).fetchall()
            ratings = db.execute("SELECT outcome, score FROM ratings").fetchall()
            judged = db.execute("SELECT COUNT(*) FROM generations WHERE outcome = 'ok'").fetchone()[0]
        assert stats["faults_total"] > 0
        # nothing lost, nothing duplicated: one round-0 generation per cell of the grid
        assert len(generations) == len({g[0] for g in generations}) == summary.cells_total == 108
        assert sorted(parquet_keys(out, "generations", "cell_key")) == sorted(g[0] for g in generations)
        failed = [g for g in generations if g[1] != "ok"]
        assert failed, "the stub's faults must reach the generations"
        assert {g[1] for g in failed} <= set(GENERATION_OUTCOMES) - {"ok"}
        assert all(g[2] is None and g[3] for g in failed)  # a failure has no text and says what went wrong
        assert Counter(g[1] for g in generations) == Counter(summary.outcomes)
        # every reply was judged once; the judge's failures are typed outcomes, never a number
        assert len(ratings) == judged
        assert {r[0] for r in ratings} <= set(RATING_OUTCOMES)
        assert all((r[0] == "scored") == (r[1] is not None) for r in ratings)

        # the next run tries the failed cells only; a retried failure replaces its row (latest batch wins)
        again = run_on_ray(load_experiment(path), out)
        assert again.cells_already_done == 108 - len(failed) and again.cells_generated == len(failed)
        with sqlite3.connect(materialize(out)) as db:
            assert db.execute("SELECT COUNT(*), COUNT(DISTINCT cell_key) FROM generations").fetchone() == (108, 108)


def test_a_killed_driver_resumes_to_the_rows_of_an_uninterrupted_run(cluster, tmp_path, write_config):
    with gated_stub(after=30) as (server, gate):
        path = write_config(gated_config(server.base_url, chunk_size=4, concurrency=2))
        out = tmp_path / "killed"
        command = [sys.executable, "-m", "graphs.cli", "run", str(path), "--engine", "ray", "--address", cluster]
        driver = subprocess.Popen([*command, "--out", str(out), "--no-progress"], stderr=subprocess.PIPE, text=True)
        try:
            gate.wait_holding(timeout=180)  # the driver is mid-run: the stub holds every later request
            commits = out / COMMITS_DIRNAME
            wait_for(lambda: commits.is_dir() and len(list(commits.glob("*.json"))) >= 2, "two committed batches")
            driver.send_signal(signal.SIGKILL)
            driver.communicate(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
        assert driver.returncode == -signal.SIGKILL
        with sqlite3.connect(materialize(out)) as db:
            partial = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        assert partial >= 2  # two batches of at least one cell each
        gate.release()

        resumed = run_on_ray(load_experiment(path), out)
        assert resumed.cells_already_done == partial and resumed.cells_generated == 108 - partial
        # uninterrupted: the local engine, which writes the same rows as the ray engine (the first test)
        uninterrupted = run_config(path, tmp_path / "whole")
    assert uninterrupted.cells_generated == 108
    keys = parquet_keys(out, "generations", "generation_key")
    assert len(keys) == len(set(keys)) == 108  # no key twice, and no part of an uncommitted batch left
    for table in TABLES:
        assert rows(materialize(out), table) == rows(tmp_path / "whole" / "transcripts.sqlite", table), table


def test_a_local_run_directory_is_refused_by_the_ray_engine(cluster, tmp_path, write_config):
    from graphs.store import RunDirectoryError

    path = write_config(quickstart_sized())
    out = tmp_path / "run"
    run_config(path, out, limit=3)
    with pytest.raises(RunDirectoryError, match="local engine"):
        run_on_ray(load_experiment(path), out)


def test_the_local_engine_refuses_a_parquet_run_directory(both_engines):
    result = CliRunner().invoke(cli, ["run", str(both_engines["path"]), "--out", str(both_engines["parquet"])])
    assert result.exit_code != 0
    assert "resume it with --engine ray" in result.output
    assert not (both_engines["parquet"] / "transcripts.sqlite").exists()


def test_a_cell_whose_graph_raises_never_drops_its_batch(write_config):
    """A bug (an exception from the graph, not a failed call) in one cell: the actor runs that batch again cell
    by cell and returns every other cell's rows, and the cell that raised as an error to retry."""
    import pyarrow as pa

    from graphs.engines.parquet_run import from_ipc
    from graphs.engines.ray_engine import GraphActor
    from graphs.grid import grid_cells

    experiment = load_experiment(write_config(scripted_config()))
    actor = GraphActor(experiment)
    real = actor.graph

    class BuggyGraph:  # the real graph, with a bug that raises on one target group's cells
        async def ainvoke(self, state: dict[str, Any], config: Any = None) -> Any:
            if any(c.target_id == "muslims" for c in state["cells"]):
                raise RuntimeError("a bug")
            return await real.ainvoke(state, config=config)

    actor.graph = BuggyGraph()
    grid = grid_cells(experiment, None)
    cells = [c for c in grid if c.target_id != "muslims"][:9] + [c for c in grid if c.target_id == "muslims"][:3]
    bad = {c.key for c in cells if c.target_id == "muslims"}
    assert len(bad) == 3
    batch = pa.table({"cell": [c.model_dump_json() for c in cells], "redo": [False] * 12})
    row = actor(batch).to_pylist()[0]
    assert {key for key, _ in json.loads(row["errors"])} == bad
    generations = from_ipc(row["t_generations"]).column("cell_key").to_pylist()
    assert sorted(generations) == sorted(c.key for c in cells if c.key not in bad)  # the rest of the batch
    assert len(from_ipc(row["t_cells"])) == 12
    assert json.loads(row["tally"])["outcomes"] == {"ok": 12 - len(bad), "engine_error": len(bad)}
