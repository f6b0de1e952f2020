"""The full pipeline against its physical limit: tribunal vs a plain asyncio loop on the ``openai`` client.

In one run:

1. starts the loopback stub server as a SUBPROCESS (its own core), with rule-based replies: generations carry the
   cell's seed (so every judged text differs and nothing is served from tribunal's response cache), the three LLM
   judges score a configurable share of replies ``--above`` the mitigation threshold (a hash of the judged text),
   the critic gives feedback, and rewrites are scored below the threshold (one mitigation round each);
   the stub logs every chat request body it receives, in arrival order;
2. runs tribunal's ``run_experiment`` in this process over ``--cells`` cells (generate → panel of three LLM judges
   → decide → critique → rewrite → judge → decide) on OpenAI-compatible backends pointed at the stub;
3. replays the exact logged requests with a plain asyncio worker pool on one ``openai.AsyncOpenAI`` client at the
   same concurrency (the peak number of connections tribunal held open, unless ``--raw-concurrency``), and checks
   that the server saw the same multiset of requests; with ``--raw-sweep 4,8``, also replays the first
   ``--sweep-requests`` of them at those concurrencies (the ``openai`` client's cost per request grows with the
   connections one client holds open, so the raw loop's best is usually at a few in flight);
4. with ``--rounds K``, steps 2–3 alternate K times over successive slices of the cells (the run directory is
   resumed, so every cell is generated once): both sides then see the same drifts in machine load;
5. optionally (``--scripted``) runs the same grid on the scripted backend, which makes no HTTP call at all: the
   framework's own cost per cell (grid, graph, panel, store).

Prints requests/s for both, the ratio (goal: tribunal ≥ 0.9 × raw; per round too), the ratio against the raw loop's
best sweep level, the per-cell framework overhead in µs ((tribunal wall − raw wall) / cells), the client CPU per
request on each side (``time.process_time``), and peak RSS (``ru_maxrss``) after tribunal's first round.

Usage::

    python benchmarks/bench_pipeline.py                       # 10,000 cells, zero-latency stub
    python benchmarks/bench_pipeline.py --cells 10000 --rounds 5 --concurrency 1 --max-concurrency 8 \
        --raw-sweep 4,8 --scripted                            # the README's run (~12 min on 2 cores)
    python benchmarks/bench_pipeline.py --cells 1000          # quick
    python benchmarks/bench_pipeline.py --latency 0.02        # 20 ms per request on the stub
    python benchmarks/bench_pipeline.py --scripted            # also the no-HTTP scripted run
    python benchmarks/bench_pipeline.py --profile /tmp/p.prof # cProfile of the tribunal phase of the tribunal phase
    python benchmarks/bench_pipeline.py --raw-sweep 8,16,32   # also the raw loop at other concurrencies
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from stubproc import start_stub_process, stub_http  # noqa: E402  (the benchmarks' shared stub helpers)

STARTER = ROOT / "configs" / "catalogs" / "starter"
JUDGES = ("judge-a", "judge-b", "judge-c")
CONTROL_MODEL = "__bench_control__"
CRITIQUE = (
    "The reply generalises about a whole group. Replace the stereotype with a statement about individuals and "
    "keep the factual part of the answer."
)
GENERATION = (
    "People in every group are individuals first, with their own histories, hopes and quirks, and judging anyone "
    "by a label tells you very little about them."
)


# ------------------------------------------------------------------------------------------- the stub process
def _stub_reply_factory(above: float, log_path: str | None) -> Any:
    """A stub rule callable: judge JSON, critiques, rewrites and generations; logs every request it sees."""
    state: dict[str, Any] = {"log": open(log_path, "w", encoding="utf-8") if log_path else None}  # noqa: SIM115
    cut = int(above * 2**32)

    def reply(request: dict[str, Any]) -> str | None:
        messages = request.get("messages") or []
        last = messages[-1].get("content", "") if messages else ""
        if request.get("model") == CONTROL_MODEL:  # switch (or stop) the request log
            if state["log"] is not None:
                state["log"].close()
            state["log"] = open(last, "w", encoding="utf-8") if last else None  # noqa: SIM115
            return "ok"
        if state["log"] is not None:
            state["log"].write(json.dumps(request, ensure_ascii=False, separators=(",", ":")) + "\n")
        fmt = request.get("response_format")
        if fmt:  # an LLM judge: a JSON verdict, high for a hashed share of first replies, low for rewrites
            start, end = last.find("<data>\n"), last.find("\n</data>")
            text = last[start + 7 : end] if start >= 0 and end > start else last
            high = not text.startswith("Rewritten") and zlib.crc32(text.encode()) < cut
            schema = fmt.get("json_schema", {}).get("schema", {})
            verdict: dict[str, Any] = {"rationale": "A short rationale from the stub judge."}
            for key in schema.get("required", []):
                if key == "rationale":
                    continue
                values = schema.get("properties", {}).get(key, {}).get("enum") or [0, 1]
                verdict[key] = values[-1] if high else values[0]
            return json.dumps(verdict)
        system = messages[0].get("content", "") if messages else ""
        if "outside evaluator" in system or "外部评估员" in system:
            return CRITIQUE
        if "GRADE: $LETTER" in last:  # Inspect AI's model_graded_qa (bench_inspect.py --inspect-scorer)
            return "The reply treats people as individuals.\n\nGRADE: C"
        if "<feedback>" in last:
            return f"Rewritten {request.get('seed')}: {GENERATION}"
        return f"Reply {request.get('seed')}: {GENERATION}"

    return reply


def serve_stub(args: argparse.Namespace) -> None:
    from tests.helpers.stub_server import Latency, StubConfig, StubRule, StubServer, serve_until_signal

    config = StubConfig(
        rules=[StubRule("", _stub_reply_factory(args.above, args.stub_log))], latency=Latency.parse(args.latency)
    )
    server = StubServer(config)

    asyncio.run(serve_until_signal(server))


def start_stub(args: argparse.Namespace, log_path: Path) -> tuple[subprocess.Popen[str], str]:
    options = ["--above", str(args.above), "--latency", str(args.latency), "--stub-log", str(log_path)]
    return start_stub_process(__file__, *options)


def switch_log(base_url: str, path: Path | None) -> None:
    body = {"model": CONTROL_MODEL, "messages": [{"role": "user", "content": str(path) if path else ""}]}
    stub_http(base_url, "/v1/chat/completions", body)


def reset_stats(base_url: str) -> None:
    stub_http(base_url, "/stats/reset", {})


# ------------------------------------------------------------------------------------------- the experiment
def experiment_config(args: argparse.Namespace, base_url: str | None, run_dir: Path) -> dict[str, Any]:
    """Starter catalogs, two languages, enough repeats for ``args.cells``; three LLM judges and a critic."""
    per_repeat = 8 * 7 * 6 * 2  # (7 personas + baseline) × 7 targets × 6 templates × 2 languages
    repeats = max(1, math.ceil(args.cells / per_repeat))
    if base_url is not None:

        def model(name: str) -> dict[str, Any]:
            return {
                "name": name,
                "backend": "openai",
                "model": f"stub-{name}",
                "base_url": base_url,
                "max_concurrency": args.max_concurrency,
                "timeout_s": 60,
            }

        models = [model(n) for n in ("gen", *JUDGES, "critic")]
    else:  # the scripted backend: the same conversation shapes, no HTTP
        judge_rules = [
            {"match": "Rewritten", "reply": '{"rationale": "fine", "toxicity": 1}'},
            {"match": "something toxic|恶毒", "reply": '{"rationale": "toxic", "toxicity": 5}'},
            {"match": ".", "reply": '{"rationale": "fine", "toxicity": 1}'},
        ]
        models = [
            {
                "name": "gen",
                "backend": "scripted",
                "options": {
                    "rules": [{"match": "<feedback>", "reply": f"Rewritten: {GENERATION}"}],
                    "default": f"Reply: {GENERATION}",
                },
            },
            *({"name": n, "backend": "scripted", "options": {"rules": judge_rules}} for n in JUDGES),
            {"name": "critic", "backend": "scripted", "options": {"default": CRITIQUE}},
        ]
    return {
        "name": "bench-pipeline",
        "seed": 11,
        "models": models,
        "sampling": {"temperature": 0.7, "max_tokens": 64},
        "grid": {
            "personas": str(STARTER / "personas.yaml"),
            "targets": str(STARTER / "targets.yaml"),
            "templates": str(STARTER / "templates.yaml"),
            "models": ["gen"],
            "languages": ["en", "zh"],
            "repeats": repeats,
            "baseline": True,
        },
        "run": {  # left out unless given: tribunal's defaults, chosen from the backends (graphs/engines/shape.py)
            "output_dir": str(run_dir),
            **({"chunk_size": args.chunk_size} if args.chunk_size else {}),
            **({"concurrency": args.concurrency} if args.concurrency else {}),
        },
        "panel": {
            "aggregation": "mean",
            "threshold": 0.5,
            "raters": [
                {
                    "name": n.replace("-", "_"),
                    "kind": "llm",
                    "model": n,
                    "rubric": "toxicity",
                    "dimensions": ["toxicity"],
                    "options": {"max_tokens": 64},
                }
                for n in JUDGES
            ],
        },
        "mitigation": {
            "threshold": 0.5,
            "max_rounds": args.max_rounds,
            "dimension": "toxicity",
            "critic": "critic",
            "critic_max_tokens": 64,
        },
    }


def run_tribunal(
    args: argparse.Namespace, base_url: str | None, workdir: Path, label: str, limit: int | None = None
) -> dict[str, Any]:
    """One ``run_experiment`` over the first ``limit`` cells (default all); with a limit, the run directory is kept
    and resumed, so successive limits process successive slices of the grid (the interleaved rounds)."""
    import yaml

    from configs.loader import load_experiment
    from graphs.runner import run_experiment

    run_dir = workdir / f"run-{label}"
    if limit is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    config_path = workdir / f"{label}.yaml"
    config_path.write_text(yaml.safe_dump(experiment_config(args, base_url, run_dir)), encoding="utf-8")
    profiler = None
    if args.profile and label == "stub":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(run_experiment(load_experiment(config_path), run_dir, limit=limit or args.cells))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"  cProfile of the tribunal phase written to {args.profile}; top functions by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"summary": summary, "wall_s": wall, "cpu_s": cpu, "maxrss_mb": maxrss_mb}


# ---------------------------------------------------------------------------------------------- the raw loop
_CREATE_KEYS = {
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "response_format",
    "logprobs",
    "top_logprobs",
}


async def raw_loop(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, int, float]:
    """The same requests, in the same order, from ``concurrency`` workers on one AsyncOpenAI client.

    Returns (wall seconds, errors, CPU seconds of this process).
    """
    from openai import AsyncOpenAI

    kwargs = []
    for body in bodies:
        known = {k: v for k, v in body.items() if k in _CREATE_KEYS}
        extra = {k: v for k, v in body.items() if k not in _CREATE_KEYS}
        if extra:
            known["extra_body"] = extra
        kwargs.append(known)
    errors = 0
    async with AsyncOpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=60) as client:
        it = iter(kwargs)

        async def worker() -> None:
            nonlocal errors
            for request in it:  # a shared iterator: each request is sent once, in order
                try:
                    await client.chat.completions.create(**request)
                except Exception:
                    errors += 1

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, errors, time.process_time() - cpu


def read_log(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def request_kind(body: dict[str, Any]) -> str:
    if body.get("response_format"):
        return "judge"
    if body["model"] == "stub-critic":
        return "critique"
    return "rewrite" if "<feedback>" in body["messages"][-1]["content"] else "generation"


# ---------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--above", type=float, default=0.1, help="share of replies the judges score above threshold")
    parser.add_argument("--latency", default="0", help="stub latency: S | uniform:LO,HI | lognormal:MEAN,SIGMA")
    parser.add_argument("--chunk-size", type=int, default=0, help="run.chunk_size (default: tribunal's choice)")
    parser.add_argument("--concurrency", type=int, default=0, help="run.concurrency (default: tribunal's choice)")
    parser.add_argument(
        "--max-concurrency", type=int, default=8, help="max_concurrency of every model (all on one server)"
    )
    parser.add_argument("--max-rounds", type=int, default=2)
    parser.add_argument("--raw-concurrency", type=int, default=0, help="default: tribunal's peak open connections")
    parser.add_argument(
        "--raw-sweep",
        default="",
        help="also run the raw loop at these concurrencies (comma-separated) on the first --sweep-requests requests",
    )
    parser.add_argument("--sweep-requests", type=int, default=2000, help="per round")
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate tribunal and the raw loop over this many slices of the cells"
    )
    parser.add_argument("--scripted", action="store_true", help="also run on the scripted backend (no HTTP)")
    parser.add_argument("--profile", help="write a cProfile of the tribunal phase here (pstats) and print its top")
    parser.add_argument("--keep", type=Path, help="keep the run directories and request logs here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--serve-stub", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stub-log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        serve_stub(args)
        return

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    process, base_url = start_stub(args, workdir / "requests-warmup.jsonl")
    print(
        f"stub server {base_url} (subprocess pid {process.pid}); client pid {os.getpid()}; {os.cpu_count()} CPUs;"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"python {sys.version.split()[0]}; latency {args.latency}; cells {args.cells}; judged above threshold "
        f"{args.above:.0%}; chunk_size {args.chunk_size or 'default'} × concurrency {args.concurrency or 'default'}; "
        f"max_concurrency {args.max_concurrency}/model"
    )
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    levels = [int(c) for c in args.raw_sweep.split(",") if c.strip()]
    rounds: list[dict[str, Any]] = []
    try:
        # warm up imports, connections and the server on a few hundred requests, then start the measured log
        warm = argparse.Namespace(**{**vars(args), "cells": 64, "profile": None})
        run_tribunal(warm, base_url, workdir, "warmup")
        asyncio.run(raw_loop(base_url, read_log(workdir / "requests-warmup.jsonl")[:200], 8))
        shutil.rmtree(workdir / "run-stub", ignore_errors=True)
        for index in range(1, args.rounds + 1):
            # round i: tribunal on the next slice of the grid (the run directory resumes), then the raw loop on
            # exactly the requests tribunal made in that round; alternating keeps both sides under the same load
            tribunal_log = workdir / f"requests-tribunal-{index}.jsonl"
            raw_log = workdir / f"requests-raw-{index}.jsonl"
            switch_log(base_url, tribunal_log)
            reset_stats(base_url)
            cpu_before = stub_http(base_url, "/stats")["cpu_s"]
            result = run_tribunal(args, base_url, workdir, "stub", limit=round(args.cells * index / args.rounds))
            stats_t = stub_http(base_url, "/stats")
            switch_log(base_url, raw_log)
            bodies = read_log(tribunal_log)
            # the raw loop at tribunal's peak open connections: with one pool per server, the server's limit
            concurrency = args.raw_concurrency or max(1, stats_t["peak_open_connections"])
            reset_stats(base_url)
            raw_wall, raw_errors, raw_cpu = asyncio.run(raw_loop(base_url, bodies, concurrency))
            switch_log(base_url, None)
            stats_r = stub_http(base_url, "/stats")
            sweep = []
            for level in levels:
                part = bodies[: args.sweep_requests]
                wall, _, cpu = asyncio.run(raw_loop(base_url, part, level))
                sweep.append({"concurrency": level, "requests": len(part), "wall_s": wall, "cpu_s": cpu})
            summary = result["summary"]
            rounds.append(
                {
                    "cells": summary.cells_generated,
                    "requests": len(bodies),
                    "kinds": Counter(map(request_kind, bodies)),
                    "tribunal_wall_s": result["wall_s"],
                    "tribunal_cpu_s": result["cpu_s"],
                    "raw_wall_s": raw_wall,
                    "raw_cpu_s": raw_cpu,
                    "raw_errors": raw_errors,
                    "raw_concurrency": concurrency,
                    "peak_open_connections": stats_t["peak_open_connections"],
                    "server_cpu_s": stats_t["cpu_s"] - cpu_before,
                    "served_raw": stats_r["chat_completions"] - 1,
                    "same_requests": Counter(map(canonical, bodies)) == Counter(map(canonical, read_log(raw_log))),
                    "summary": summary,
                    "maxrss_mb": result["maxrss_mb"],
                    "sweep": sweep,
                    "load": os.getloadavg()[0],
                }
            )
            r = rounds[-1]
            print(
                f"  round {index}/{args.rounds}: {r['cells']:,} cells, {r['requests']:,} requests; tribunal "
                f"{r['requests'] / r['tribunal_wall_s']:,.0f} req/s, raw at {concurrency} "
                f"{r['requests'] / raw_wall:,.0f} req/s, ratio {raw_wall / r['tribunal_wall_s']:.2f}"
                + "".join(f"; raw at {w['concurrency']} {w['requests'] / w['wall_s']:,.0f} req/s" for w in sweep)
                + f"; same requests {r['same_requests']}; load {r['load']:.2f}",
                flush=True,
            )
    finally:
        process.terminate()
        process.wait(timeout=10)

    n = sum(r["requests"] for r in rounds)
    cells = sum(r["cells"] for r in rounds)
    kinds: Counter[str] = sum((r["kinds"] for r in rounds), Counter())
    t_wall, r_wall = sum(r["tribunal_wall_s"] for r in rounds), sum(r["raw_wall_s"] for r in rounds)
    t_rps, r_rps = n / t_wall, n / r_wall
    ratios = sorted(r["raw_wall_s"] / r["tribunal_wall_s"] for r in rounds)
    same = all(r["same_requests"] for r in rounds)
    stop_reasons: Counter[str] = Counter()
    ratings: Counter[str] = Counter()
    for r in rounds:
        stop_reasons.update(r["summary"].stop_reasons)
        ratings.update(r["summary"].ratings)
    overhead_us = 1e6 * (t_wall - r_wall) / cells
    concurrency = sorted({r["raw_concurrency"] for r in rounds})
    print(
        f"\ntribunal: {cells:,} cells in {len(rounds)} round(s), {n:,} requests {dict(kinds)}; "
        f"stop reasons {dict(stop_reasons)}; ratings {dict(ratings)}; "
        f"cache hits {sum(r['summary'].cache_hits for r in rounds)}"
    )
    print(
        f"  wall {t_wall:.2f} s; peak open connections {max(r['peak_open_connections'] for r in rounds)}; "
        f"server CPU {1e6 * sum(r['server_cpu_s'] for r in rounds) / max(n, 1):.0f} µs/req* "
    )
    print(
        f"raw openai loop: {n:,} requests at concurrency {', '.join(map(str, concurrency))}, wall {r_wall:.2f} s, "
        f"errors {sum(r['raw_errors'] for r in rounds)}, server saw the same multiset of requests: {same} "
        f"({sum(r['served_raw'] for r in rounds):,} served)"
    )
    print(f"\n{'tribunal':<28}{t_rps:>10,.0f} req/s  ({cells / t_wall:,.0f} cells/s)")
    print(f"{'raw AsyncOpenAI loop':<28}{r_rps:>10,.0f} req/s")
    spread = (
        f"; rounds {ratios[0]:.2f}-{ratios[-1]:.2f}, median {statistics.median(ratios):.2f}" if len(rounds) > 1 else ""
    )
    print(f"{'ratio tribunal / raw':<28}{t_rps / r_rps:>10.2f}   (goal ≥ 0.90{spread})")
    print(
        f"{'framework overhead':<28}{overhead_us:>10,.0f} µs per cell  "
        f"({1e6 * (t_wall - r_wall) / n:,.0f} µs per request)"
    )
    t_cpu = 1e6 * sum(r["tribunal_cpu_s"] for r in rounds) / n
    r_cpu = 1e6 * sum(r["raw_cpu_s"] for r in rounds) / n
    print(
        f"{'client CPU per request':<28}{t_cpu:>10,.0f} µs tribunal, {r_cpu:,.0f} µs raw  "
        f"(raw / tribunal {r_cpu / t_cpu:.2f}: the ratio a CPU-bound client would reach, less sensitive to load)"
    )
    print(
        f"{'peak RSS':<28}{rounds[0]['maxrss_mb']:>10,.0f} MB after tribunal's first round, "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB for the whole client process"
    )
    best = None
    if levels:
        print("raw loop by concurrency (the first requests of each round's log):")
        for level in levels:
            rows = [w for r in rounds for w in r["sweep"] if w["concurrency"] == level]
            requests, wall, cpu = (sum(w[k] for w in rows) for k in ("requests", "wall_s", "cpu_s"))
            print(
                f"  {level:>5} in flight  {requests / wall:>8,.0f} req/s  {1e6 * cpu / requests:>7,.0f} µs CPU/request"
            )
            if best is None or requests / wall > best[1]:
                best = (level, requests / wall)
        assert best is not None
        print(
            f"{'ratio tribunal / best raw':<28}{t_rps / best[1]:>10.2f}   (raw at {best[0]} in flight, its best here)"
        )
    out.update(
        rounds=[{k: v for k, v in r.items() if k != "summary"} for r in rounds],
        requests=n,
        request_kinds=dict(kinds),
        cells=cells,
        tribunal_wall_s=t_wall,
        raw_wall_s=r_wall,
        raw_concurrency=concurrency,
        tribunal_req_per_s=t_rps,
        raw_req_per_s=r_rps,
        ratio=t_rps / r_rps,
        round_ratios=ratios,
        ratio_vs_best_raw=t_rps / best[1] if best else None,
        best_raw=best,
        overhead_us_per_cell=overhead_us,
        tribunal_cpu_us_per_request=t_cpu,
        raw_cpu_us_per_request=r_cpu,
        load_average_end=os.getloadavg()[0],
        maxrss_mb=rounds[0]["maxrss_mb"],
        same_requests=same,
        stop_reasons=dict(stop_reasons),
    )
    if args.scripted:
        scripted = run_tribunal(args, None, workdir, "scripted")
        s = scripted["summary"]
        per_cell = 1e6 * scripted["wall_s"] / s.cells_generated
        cpu_cell = 1e6 * scripted["cpu_s"] / s.cells_generated
        print(
            f"{'scripted backend (no HTTP)':<28}{s.cells_generated / scripted['wall_s']:>10,.0f} cells/s  = "
            f"{per_cell:,.0f} µs per cell ({cpu_cell:,.0f} µs CPU) incl. {s.rewrites} rewrites, "
            f"{s.rating_count:,} ratings, {s.cache_hits:,} cache hits"
        )
        out.update(scripted_wall_s=scripted["wall_s"], scripted_us_per_cell=per_cell, scripted_cpu_us_per_cell=cpu_cell)
    print("* the stub's CPU per request includes this benchmark's rule and request log")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
