"""The Ray engine against the local engine on the same stub workload, and how it scales with actors.

In one run:

1. starts the loopback stub server as a subprocess (``python -m tests.helpers.stub_server``) with a fixed
   per-request latency (``--latency``, an API server's), and Ray in local mode (``num_cpus=6``) once;
2. runs the same grid (the scripted test grid with ``--repeats``: 54 cells a repeat; an ``openai`` generator and
   one LLM judge on the stub, so two calls a cell) with the local engine (``run.concurrency`` chunks in flight,
   ``--local-concurrency``) and with the Ray engine at each of ``--actors`` (default 1, 2, 4), each into a fresh
   run directory, alternating ``--rounds`` times so that both engines see the same drifts in machine load;
3. prints, per engine: cells/s over the whole call (Ray's includes starting its actors, seconds each on a busy
   box) and steady cells/s (local: from the first finished chunk to the last; Ray: from the first batch's start
   on an actor to the last batch's end, read from the commit records, so that actor start-up and the driver's
   buffering are left out), and each Ray figure as a ratio against the local engine of the same round.

Usage::

    python benchmarks/bench_ray.py                          # 540 cells, 20 ms a request, actors 1,2,4
    python benchmarks/bench_ray.py --repeats 4 --rounds 1   # quick
    python benchmarks/bench_ray.py --latency 0 --actors 1,2 # the engines' own cost per cell
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configs.loader import load_experiment  # noqa: E402
from graphs.runner import run_experiment  # noqa: E402
from tests.conftest import scripted_config  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from stubproc import start_stub_command  # noqa: E402  (the benchmarks' shared stub helpers)


def start_stub(latency: float) -> tuple[subprocess.Popen[str], str]:
    return start_stub_command(
        [sys.executable, "-m", "tests.helpers.stub_server", "--port", "0", "--latency", f"{latency}"]
    )


def workload(base_url: str, repeats: int, chunk: int, concurrency: int) -> dict[str, Any]:
    config = scripted_config()
    common = {"backend": "openai", "base_url": base_url, "max_retries": 0, "timeout_s": 60, "max_concurrency": 64}
    config["models"] = [{"name": "gen", "model": "gen", **common}, {"name": "judge", "model": "judge", **common}]
    config["grid"].update(models=["gen"], repeats=repeats)
    config["panel"] = {
        "raters": [{"name": "llm", "kind": "llm", "model": "judge", "rubric": "toxicity", "dimensions": ["toxicity"]}]
    }
    config["run"] = {"chunk_size": chunk, "concurrency": concurrency}
    return config


class Clock:
    """Times a run's batches: the first and the last ``on_progress`` call."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.cells = 0
        self.first_cells = 0

    def __call__(self, n: int, summary: Any = None) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first, self.first_cells = now, n
        self.last = now
        self.cells += n

    def steady(self) -> float:
        if self.first is None or self.last is None or self.last <= self.first:
            return float("nan")
        return (self.cells - self.first_cells) / (self.last - self.first)


def busy(out: Path, cells: int) -> float:
    """A Ray run's cells/s while its actors work: from the first batch's start on an actor to the last one's end
    (the commit records' spans), so that starting the actors and the driver's buffering are left out."""
    from analysis.parquet_run import committed_batches

    spans = [b["span"] for b in committed_batches(out)]
    return cells / (max(s[1] for s in spans) - min(s[0] for s in spans))


def timed(run: Any, out: Path) -> tuple[float, float, int]:
    clock = Clock()
    started = time.perf_counter()
    summary = run(clock)
    wall = time.perf_counter() - started
    assert summary.outcomes.get("ok") == summary.cells_generated, summary.outcomes
    steady = busy(out, summary.cells_generated) if (out / "meta.json").exists() else clock.steady()
    return summary.cells_generated / wall, steady, summary.cells_generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="grid repeats (54 cells each)")
    parser.add_argument("--latency", type=float, default=0.02, help="stub latency per request, seconds")
    parser.add_argument("--chunk", type=int, default=8, help="run.chunk_size (Ray's batch size)")
    parser.add_argument("--local-concurrency", type=int, default=4, help="the local engine's chunks in flight")
    parser.add_argument("--actors", default="1,2,4", help="Ray actor counts to measure")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import ray

    from graphs.engines.ray_engine import run_on_ray

    actor_counts = [int(a) for a in args.actors.split(",")]
    stub, base_url = start_stub(args.latency)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    results: dict[str, list[tuple[float, float]]] = {}
    ratios: dict[str, list[float]] = {}
    try:
        path = work / "config.yaml"
        path.write_text(json.dumps(workload(base_url, args.repeats, args.chunk, args.local_concurrency)))
        started = time.perf_counter()
        ray.init(num_cpus=6, include_dashboard=False, logging_level="WARNING")
        print(f"ray.init: {time.perf_counter() - started:.1f} s (not counted)")
        n = 0
        for round_ in range(args.rounds):
            out = work / f"local-{round_}"
            local = timed(
                lambda clock, out=out: asyncio.run(run_experiment(load_experiment(path), out, on_progress=clock)),
                out,
            )
            results.setdefault("local", []).append(local[:2])
            for actors in actor_counts:
                out = work / f"ray{actors}-{round_}"
                got = timed(
                    lambda clock, out=out, actors=actors: run_on_ray(
                        load_experiment(path), out, actors=actors, on_progress=clock
                    ),
                    out,
                )
                results.setdefault(f"ray x{actors}", []).append(got[:2])
                ratios.setdefault(f"ray x{actors}", []).append(got[0] / local[0])
                ratios.setdefault(f"ray x{actors} steady", []).append(got[1] / local[1])
                n = got[2]
            for done in work.glob("*-*"):
                shutil.rmtree(done, ignore_errors=True)
    finally:
        stub.terminate()
        stub.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        ray.shutdown()

    print(
        f"{n} cells, 2 calls a cell, stub latency {args.latency * 1000:.0f} ms, chunk {args.chunk}, "
        f"{args.rounds} round(s)"
    )
    print(f"{'engine':<12} {'cells/s (whole call)':>22} {'cells/s (steady)':>18}")
    for name, values in results.items():
        whole = statistics.median(v[0] for v in values)
        steady = statistics.median(v[1] for v in values)
        print(f"{name:<12} {whole:>22.1f} {steady:>18.1f}")
    print("ratios against the local engine of the same round (median over rounds):")
    for name, values in ratios.items():
        print(f"  {name:<18} {statistics.median(values):.2f}  (rounds: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
