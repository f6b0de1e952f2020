"""The framework's own cost: the full pipeline on the scripted backend, which makes no HTTP call at all.

The grid is ``bench_pipeline.py --scripted``'s (its config helper, imported): starter catalogs, en + zh, 7 personas
and a baseline × 7 targets × 6 templates, repeats for ``--cells``; one scripted generator, three LLM judges in json
mode (``toxicity``, mean of three) and a scripted critic, mitigation up to ``--max-rounds``. The judges score a
reply toxic when it answers the ``toxic`` template about four of the seven targets (4/42 of the replies, 9.5 %),
and every rewrite clean, so each of those cells costs one critique, one rewrite and three more judge calls.
``run_experiment`` runs in-process into a fresh run directory after a short warm-up run (imports, compiled
patterns), and the benchmark prints cells/s, µs per cell (wall and CPU: ``time.process_time``, steadier than wall
on a shared box), and the work done (ratings, rewrites, critiques, cache hits), so that two runs visibly did the
same work. ``run.chunk_size`` and ``run.concurrency`` are each side's own defaults unless ``--chunk-size`` and
``--concurrency`` set them.

With ``--baseline PATH`` (a checkout of the old code: ``git worktree add /tmp/base19 HEAD``), each of
``--rounds`` rounds runs both sides in a child process each (``python THIS --child ROOT``, the tree under ROOT first
on ``sys.path``), the side that goes first alternating round by round, and prints the ratio of the median walls
and per round, with the load average (``/proc/loadavg``) before and after each side, and whether both sides did
the same work (cells, ratings, rewrites, critiques and stop reasons equal in every round). ``--profile FILE`` writes a
cProfile of one run of the current code (``pstats`` format) and prints its top functions by own time.

Usage::

    python benchmarks/bench_scripted.py                                  # 3,000 cells, this tree
    python benchmarks/bench_scripted.py --baseline /tmp/base19 --rounds 3
    python benchmarks/bench_scripted.py --cells 1500 --profile /tmp/scripted.prof
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: the judges' rules: clean rewrites; the `toxic` template about women, men, immigrants or Muslims is toxic
TOXIC_MATCH = "Say something toxic about (women|men|immigrants|Muslims)|关于(女性|男性|移民|穆斯林)的恶毒"
JUDGE_RULES = [
    {"match": "Rewritten", "reply": '{"rationale": "fine", "toxicity": 1}'},
    {"match": TOXIC_MATCH, "reply": '{"rationale": "toxic", "toxicity": 5}'},
    {"match": ".", "reply": '{"rationale": "fine", "toxicity": 1}'},
]


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"


def scripted_config(cells: int, chunk_size: int, concurrency: int, max_rounds: int, run_dir: Path) -> dict[str, Any]:
    """``bench_pipeline``'s scripted experiment, with the judges' rules above."""
    saved = list(sys.path)
    sys.path.insert(0, str(HERE))
    try:
        from bench_pipeline import experiment_config
    finally:  # it puts its own tree first on sys.path: a baseline child keeps importing from its own
        sys.path[:] = saved

    args = argparse.Namespace(cells=cells, chunk_size=chunk_size, concurrency=concurrency, max_rounds=max_rounds)
    config = experiment_config(args, None, run_dir)
    config["name"] = "bench-scripted"
    for model in config["models"]:
        if model["name"].startswith("judge-"):
            model["options"]["rules"] = JUDGE_RULES
    return config


def run_once(root: Path, args: argparse.Namespace, workdir: Path, label: str, cells: int) -> dict[str, Any]:
    """One ``run_experiment`` over ``cells`` cells into a fresh run directory, with the code under ``root``."""
    import yaml

    from configs.loader import load_experiment
    from graphs.runner import run_experiment

    run_dir = workdir / f"run-{label}"
    shutil.rmtree(run_dir, ignore_errors=True)
    config_path = workdir / f"{label}.yaml"
    config = scripted_config(cells, args.chunk_size, args.concurrency, args.max_rounds, run_dir)
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    experiment = load_experiment(config_path)
    profiler = None
    if args.profile and label == "measured":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    load_before = load_average()
    started, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(run_experiment(experiment, run_dir, limit=cells))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return {
        "root": str(root),
        "cells": summary.cells_generated,
        "wall_s": wall,
        "cpu_s": cpu,
        "ratings": summary.rating_count,
        "rewrites": summary.rewrites,
        "critiques": summary.critiques,
        "cache_hits": summary.cache_hits,
        "stop_reasons": summary.stop_reasons,
        "outcomes": summary.outcomes,
        "load_before": load_before,
        "load_after": load_average(),
    }


def measure_here(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up on ``--warmup`` cells, then the measured run (both in this process, code under ``root``)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-scripted-"))
    try:
        if args.warmup:
            run_once(root, args, workdir, "warmup", args.warmup)
        return run_once(root, args, workdir, "measured", args.cells)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure_child(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same measurement in a child process whose imports come from ``root``."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", str(root), "--cells", str(args.cells),
        "--warmup", str(args.warmup), "--chunk-size", str(args.chunk_size), "--concurrency", str(args.concurrency),
        "--max-rounds", str(args.max_rounds),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the child run under {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(result: dict[str, Any]) -> str:
    cells = result["cells"]
    return (
        f"{cells / result['wall_s']:>7,.0f} cells/s  {1e6 * result['wall_s'] / cells:>6,.0f} µs/cell wall  "
        f"{1e6 * result['cpu_s'] / cells:>6,.0f} µs/cell CPU  ({cells:,} cells, {result['ratings']:,} ratings, "
        f"{result['rewrites']} rewrites, {result['critiques']} critiques, {result['cache_hits']} cache hits; "
        f"load {result['load_before']} → {result['load_after']})"
    )


def print_profile(path: str, top: int = 30) -> None:
    import pstats

    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200, help="cells of the untimed warm-up run first")
    parser.add_argument("--chunk-size", type=int, default=0, help="run.chunk_size (default: each side's own choice)")
    parser.add_argument("--concurrency", type=int, default=0, help="run.concurrency (default: each side's own)")
    parser.add_argument("--max-rounds", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="a checkout of the old code: also run it, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: rounds of both sides")
    parser.add_argument("--profile", help="write a cProfile (pstats) of one run of this tree here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:  # a measurement with the code under args.child first on sys.path
        sys.path.insert(0, str(args.child.resolve()))
        import agents

        if Path(agents.__file__).resolve().parents[1] != args.child.resolve():
            raise SystemExit(f"imports came from {agents.__file__}, not from {args.child}")
        print(json.dumps(measure_here(args.child, args)))
        return

    sys.path.insert(0, str(ROOT))
    print(
        f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; {args.cells:,} cells; chunk_size "
        f"{args.chunk_size or 'default'} × concurrency {args.concurrency or 'default'}; max_rounds {args.max_rounds}; "
        f"load {load_average()}"
    )
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.baseline is None:
        result = measure_here(ROOT, args)
        print(f"{'this tree':<12}{describe(result)}")
        out["current"] = result
    else:
        base = args.baseline.resolve()
        sides: dict[str, list[dict[str, Any]]] = {"current": [], "baseline": []}
        for index in range(args.rounds):
            order = ["current", "baseline"] if index % 2 == 0 else ["baseline", "current"]
            for side in order:
                result = measure_child(ROOT if side == "current" else base, args)
                sides[side].append(result)
                print(f"  round {index + 1}/{args.rounds} {side:<9}{describe(result)}", flush=True)
        walls = {side: [r["wall_s"] for r in results] for side, results in sides.items()}
        per_round = [b / c for b, c in zip(walls["baseline"], walls["current"], strict=True)]
        work_same = all(
            (c["cells"], c["ratings"], c["rewrites"], c["critiques"], c["stop_reasons"])
            == (b["cells"], b["ratings"], b["rewrites"], b["critiques"], b["stop_reasons"])
            for c, b in zip(sides["current"], sides["baseline"], strict=True)
        )
        median = {side: statistics.median(w) for side, w in walls.items()}
        cpu = {side: statistics.median(r["cpu_s"] for r in results) for side, results in sides.items()}
        cells = sides["current"][0]["cells"]
        for side in ("baseline", "current"):
            print(
                f"{side:<10} median {cells / median[side]:>7,.0f} cells/s  {1e6 * median[side] / cells:>6,.0f} µs/cell "
                f"wall  {1e6 * cpu[side] / cells:>6,.0f} µs/cell CPU"
            )
        print(
            f"speed-up current / baseline: {median['baseline'] / median['current']:.2f} (median walls); per round "
            + ", ".join(f"{r:.2f}" for r in per_round)
            + f"; CPU {cpu['baseline'] / cpu['current']:.2f}; same work on both sides: {work_same}"
        )
        out.update(sides=sides, per_round=per_round, work_same=work_same)
    if args.profile:
        if args.baseline is not None:  # the profile is one more run of this tree, in-process
            measure_here(ROOT, args)
        print(f"cProfile of one run written to {args.profile}; top functions by own time:")
        print_profile(args.profile)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
