"""The judge audit against rating the same texts in a run: ``audit_judges`` vs ``rate_run``, same judges, same stub.

Issue #15's goal: the audit of 4 judges on 1,000 labelled texts costs no more than rating those texts in a run (one
request per text, judge and variant). In one run:

1. starts the loopback stub server (``tests/helpers/stub_server.py``) as a SUBPROCESS (its own core), with a rule
   that answers every judge request with a JSON verdict ``{"rationale": ..., "toxicity": N}``, N taken from a hash
   of the judged text (and, for one text in five, nudged by a hash of the judge's model), so scores vary; the rule
   also keeps an order-free digest of every request body it sees (count, bytes, sum of hashes), read and reset
   with a control request, so that both sides can be shown to send the same multiset of requests;
2. writes ``--texts`` unique synthetic texts with 3 annotators' 0/1 labels each (the generic labels CSV,
   ``item_id,text,label,annotator``) and the same texts as a prompt file;
3. builds, once and untimed, a run directory whose stored generations are exactly those texts (a scripted generator
   whose reply is ``{last}`` on a ``grid.prompts: {kind: file}`` grid, no panel);
4. alternates, for ``--rounds`` rounds:

   * **audit**: ``audit_judges(experiment, fresh OUT, AuditOptions(labels=CSV, swap=False, retest=False,
     injection=False))``: the labelled set only, rated through ``judge_batch`` with the audit's response cache,
     then the judge card (validity vs the humans with bootstrap intervals) and ``ratings.jsonl``;
   * **rate**: ``rate_run`` with the same 4 judges on a fresh copy of that run directory (nothing cached): the
     judging graph per chunk and the ratings written to the store;

   both from ONE config (``run.chunk_size``, ``run.concurrency``, and the judges' ``max_concurrency``), the judges'
   option ``context: false`` so that the two sides send byte-identical requests (a run's generation carries its
   prompt, a labelled text none; with the prompt the run's requests would only be longer);
5. audits the last round's OUT again: everything from the response cache (0 calls).

Prints, per side: median wall time, requests/s, client CPU per request, where the time goes (setup → first chunk,
rating, after the last chunk), the stub's request count (must be ``texts × 4`` on each side) and peak open
connections, and the ratio audit / rate (goal ≤ 1.0), with the load average next to every figure.
``--profile DIR`` also writes cProfile statistics of one more audit and one more rate (top functions printed).

Usage::

    python benchmarks/bench_audit.py                    # 1,000 texts, 3 rounds (~1.5 min on 2 cores)
    python benchmarks/bench_audit.py --quick            # 200 texts, 1 round
    python benchmarks/bench_audit.py --texts 1000 --rounds 5 --chunk-size 16 --concurrency 8 --max-concurrency 8
    python benchmarks/bench_audit.py --profile /tmp/prof   # cProfile of one audit and one rate
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from stubproc import start_stub_process, stub_http  # noqa: E402  (the benchmarks' shared stub helpers)

JUDGES = ("judge-a", "judge-b", "judge-c", "judge-d")
CONTROL_MODEL = "__bench_audit_control__"
SUBJECTS = ("My neighbour", "The new manager", "Our bus driver", "That commenter", "The referee", "His cousin")
VERBS = ("said that", "wrote that", "claimed that", "shouted that", "posted that", "argued that")
CLAIMS = (
    "people from the coast are wonderful cooks",
    "everyone in that town is a lazy idiot",
    "the library should open on Sundays",
    "those people are vermin and should leave",
    "the match was fair and well played",
    "anyone who disagrees is stupid and disgusting",
    "the new bridge will shorten the commute",
    "they are all criminals, every one of them",
)


# ------------------------------------------------------------------------------------------- the stub process
def judged_text(content: str) -> str:
    start, end = content.find("<data>\n"), content.find("\n</data>")
    return content[start + 7 : end] if start >= 0 and end > start else content


def true_score(text: str) -> int:
    """The text's score on 1..5 (what the stub judges give, give or take one; what the humans' labels follow)."""
    return zlib.crc32(text.encode()) % 5 + 1


def _stub_rule() -> Any:
    """JSON verdicts from a hash of the judged text, and an order-free digest of every request body."""
    state = {"count": 0, "bytes": 0, "digest": 0}

    def reply(request: dict[str, Any]) -> str | None:
        messages = request.get("messages") or []
        last = messages[-1].get("content", "") if messages else ""
        if request.get("model") == CONTROL_MODEL:  # return the digest so far and start a new one
            out = json.dumps({**state, "digest": f"{state['digest']:032x}"})
            state.update(count=0, bytes=0, digest=0)
            return out
        body = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        state["count"] += 1
        state["bytes"] += len(body)
        state["digest"] = (state["digest"] + int.from_bytes(hashlib.blake2b(body, digest_size=16).digest())) % 2**128
        fmt = request.get("response_format")
        if not fmt:
            return "OK."
        text = judged_text(last)
        schema = fmt.get("json_schema", {}).get("schema", {})
        verdict: dict[str, Any] = {"rationale": "A short rationale from the stub judge."}
        for key in schema.get("required", []):
            if key == "rationale":
                continue
            values = schema.get("properties", {}).get(key, {}).get("enum") or [1, 2, 3, 4, 5]
            index = true_score(text) - 1
            nudge = zlib.crc32(f"{request.get('model')}|{text}".encode()) % 10
            index += 1 if nudge == 0 else -1 if nudge == 1 else 0  # judges disagree on one text in five
            verdict[key] = values[min(max(index, 0), len(values) - 1)]
        return json.dumps(verdict)

    return reply


def serve_stub() -> None:
    from tests.helpers.stub_server import StubConfig, StubRule, StubServer, serve_until_signal

    asyncio.run(serve_until_signal(StubServer(StubConfig(rules=[StubRule("", _stub_rule())]))))


def start_stub() -> tuple[subprocess.Popen[str], str]:
    return start_stub_process(__file__)


def take_digest(base_url: str) -> dict[str, Any]:
    """The stub's digest of the requests since the last call (and a fresh one from now on)."""
    body = {"model": CONTROL_MODEL, "messages": [{"role": "user", "content": "digest"}]}
    reply = stub_http(base_url, "/v1/chat/completions", body)
    return json.loads(reply["choices"][0]["message"]["content"])


def stub_stats(base_url: str, reset: bool = False) -> dict[str, Any]:
    stats = stub_http(base_url, "/stats")
    if reset:
        stub_http(base_url, "/stats/reset", {})
    return stats


# ---------------------------------------------------------------------------------------------- inputs
def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        subject, verb, claim = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(CLAIMS)
        texts.append(f"{subject} {verb} {claim} (note {i}).")
    assert len(set(texts)) == n
    return texts


def write_inputs(texts: list[str], workdir: Path, seed: int = 0) -> tuple[Path, Path]:
    """The labels CSV (3 annotators a text; each agrees with the hashed score, one vote in ten flipped) and the
    same texts as a prompt file."""
    import pandas as pd

    rng = random.Random(seed + 1)
    rows = []
    for i, text in enumerate(texts):
        label = int(true_score(text) >= 4)
        for annotator in ("ann1", "ann2", "ann3"):
            vote = 1 - label if rng.random() < 0.1 else label
            rows.append({"item_id": f"t{i:05d}", "text": text, "label": vote, "annotator": annotator})
    labels = workdir / "labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    prompts = workdir / "prompts.csv"
    pd.DataFrame({"id": [f"t{i:05d}" for i in range(len(texts))], "prompt": texts, "language": "en"}).to_csv(
        prompts, index=False
    )
    return labels, prompts


def experiment_config(args: argparse.Namespace, base_url: str, prompts: Path, out: Path, judged: bool) -> dict:
    """One config for both sides: a scripted generator replying ``{last}`` over the prompt file, 4 LLM judges on
    the stub (``judged``; without them: the config that generates the run directory)."""
    models: list[dict[str, Any]] = [{"name": "gen", "backend": "scripted", "options": {"default": "{last}"}}]
    config: dict[str, Any] = {
        "name": "bench-audit",
        "seed": 5,
        "models": models,
        "sampling": {"temperature": 0.0, "max_tokens": 64},
        "grid": {"prompts": {"kind": "file", "path": str(prompts)}, "languages": ["en"]},
        "run": {"output_dir": str(out), "chunk_size": args.chunk_size, "concurrency": args.concurrency},
    }
    if judged:
        models += [
            {
                "name": name,
                "backend": "openai",
                "model": f"stub-{name}",
                "base_url": base_url,
                "max_concurrency": args.max_concurrency,
                "timeout_s": 60,
            }
            for name in JUDGES
        ]
        config["panel"] = {
            "aggregation": "mean",
            "raters": [
                {
                    "name": name.replace("-", "_"),
                    "kind": "llm",
                    "model": name,
                    "rubric": "toxicity",
                    "dimensions": ["toxicity"],
                    "options": {"mode": "json", "context": args.context},
                }
                for name in JUDGES
            ],
        }
    return config


def build_run_template(args: argparse.Namespace, base_url: str, prompts: Path, workdir: Path, texts: list[str]) -> Path:
    """A run directory whose stored generations are exactly ``texts`` (scripted generator, no panel; untimed)."""
    import yaml

    from configs.loader import load_experiment
    from graphs.runner import run_experiment
    from graphs.store import TranscriptStore

    template = workdir / "run-template"
    path = workdir / "generate.yaml"
    path.write_text(yaml.safe_dump(experiment_config(args, base_url, prompts, template, judged=False)), "utf-8")
    summary = asyncio.run(run_experiment(load_experiment(path), template))
    store = TranscriptStore.open(template)
    try:
        stored = [r["text"] for r in store.judgeable_generations()]
    finally:
        store.close()
    if sorted(stored) != sorted(texts):
        raise SystemExit(f"the run's generations are not the labelled texts ({len(stored)} stored)")
    print(f"run directory built: {summary.cells_generated:,} generations, the {len(texts):,} texts exactly")
    return template


# ---------------------------------------------------------------------------------------------- the sides
class Clock:
    """Times of on_start and of each on_progress call, for the setup / rating / finish split."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.started: float | None = None
        self.last: float | None = None
        self.done = 0

    def on_start(self, n: int) -> None:
        self.started = time.perf_counter()

    def on_progress(self, n: int) -> None:
        self.done += n
        self.last = time.perf_counter()


def run_side(kind: str, experiment: Any, config_path: Path, labels: Path, target: Path, template: Path) -> dict:
    """One timed audit (``target`` its OUT) or rate (``target`` a fresh copy of the template run)."""
    from graphs.audit import AuditOptions, audit_judges
    from graphs.runner import rate_run

    clock = Clock()
    if kind == "rate":
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(template, target)
        coroutine = rate_run(
            target, experiment.config, config_path, on_start=clock.on_start, on_progress=clock.on_progress
        )
    else:
        options = AuditOptions(labels=str(labels), swap=False, retest=False, injection=False)
        coroutine = audit_judges(experiment, target, options, on_start=clock.on_start, on_progress=clock.on_progress)
    load = os.getloadavg()[0]
    cpu, started = time.process_time(), time.perf_counter()
    result = asyncio.run(coroutine)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    t0 = started
    setup = (clock.started or t0) - t0
    rating = (clock.last or clock.started or t0) - (clock.started or t0)
    if kind == "rate":
        detail = {"ratings": result.ratings_written, "outcomes": result.outcomes}
    else:
        detail = {
            "calls": result.requests["calls"],
            "cache_hits": result.requests["cache_hits"],
            "coverage": min(r["coverage"] for r in result.records),
            "alpha_vs_humans": [round(r.get("alpha_vs_humans") or float("nan"), 2) for r in result.records],
        }
    return {
        "kind": kind,
        "wall_s": wall,
        "cpu_s": cpu,
        "setup_s": setup,
        "rating_s": rating,
        "finish_s": wall - setup - rating,
        "texts_done": clock.done,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        **detail,
    }


# ---------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="alternated audit / rate rounds")
    parser.add_argument("--quick", action="store_true", help="200 texts, 1 round")
    parser.add_argument("--chunk-size", type=int, default=16, help="run.chunk_size (both sides)")
    parser.add_argument("--concurrency", type=int, default=8, help="run.concurrency: chunks in flight (both sides)")
    parser.add_argument("--max-concurrency", type=int, default=8, help="requests in flight per judge backend")
    parser.add_argument(
        "--context",
        action="store_true",
        help="judges see the request a text answers (the run's requests then carry the prompt; the audit's not)",
    )
    parser.add_argument("--profile", type=Path, help="write cProfile stats of one more audit and rate here")
    parser.add_argument("--keep", type=Path, help="keep the inputs and directories here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--serve-stub", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        serve_stub()
        return
    if args.quick:
        args.texts, args.rounds = 200, 1

    import yaml

    from configs.loader import load_experiment

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    workdir.mkdir(parents=True, exist_ok=True)
    process, base_url = start_stub()
    expected = args.texts * len(JUDGES)
    print(
        f"stub server {base_url} (subprocess pid {process.pid}); client pid {os.getpid()}; {os.cpu_count()} CPUs; "
        f"python {sys.version.split()[0]}; {date.today()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"{args.texts:,} labelled texts × 3 annotators, {len(JUDGES)} LLM judges (json mode, context "
        f"{args.context}); run.chunk_size {args.chunk_size}, run.concurrency {args.concurrency}, max_concurrency "
        f"{args.max_concurrency} per judge backend; {args.rounds} round(s), expected {expected:,} requests a side"
    )
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "date": str(date.today())}
    results: list[dict[str, Any]] = []
    try:
        texts = make_texts(args.texts)
        labels, prompts = write_inputs(texts, workdir)
        template = build_run_template(args, base_url, prompts, workdir, texts)
        config_path = workdir / "judges.yaml"
        config = experiment_config(args, base_url, prompts, workdir / "unused-out", judged=True)
        config_path.write_text(yaml.safe_dump(config), "utf-8")
        experiment = load_experiment(config_path)

        # warm-up (imports, first connections, the stub's code paths): both sides on a few texts, untimed
        warm_n = min(48, args.texts)
        warm = workdir / "warm"
        warm.mkdir(exist_ok=True)
        warm_labels, warm_prompts = write_inputs(texts[:warm_n], warm)
        warm_template = build_run_template(args, base_url, warm_prompts, warm, texts[:warm_n])
        shutil.rmtree(warm / "audit", ignore_errors=True)
        run_side("audit", experiment, config_path, warm_labels, warm / "audit", warm_template)
        run_side("rate", experiment, config_path, warm_labels, warm / "rate", warm_template)
        take_digest(base_url)
        stub_stats(base_url, reset=True)

        for index in range(1, args.rounds + 1):
            order = ("audit", "rate") if index % 2 else ("rate", "audit")  # alternate who goes first
            digests = {}
            for kind in order:
                target = workdir / f"{kind}-{index}"
                shutil.rmtree(target, ignore_errors=True)
                result = run_side(kind, experiment, config_path, labels, target, template)
                digest = take_digest(base_url)
                stats = stub_stats(base_url, reset=True)
                result.update(
                    round=index,
                    served=stats["chat_completions"] - 1,  # less the digest's own control request
                    peak_connections=stats["peak_open_connections"],
                    server_cpu_s=stats["cpu_s"],
                    request_bytes=digest["bytes"],
                )
                digests[kind] = (digest["count"], digest["bytes"], digest["digest"])
                results.append(result)
                _print_side(result)
                if result["served"] != expected:
                    print(f"    !! the stub served {result['served']:,} requests, expected {expected:,}")
            same = digests["audit"] == digests["rate"]
            a = next(r for r in results if r["round"] == index and r["kind"] == "audit")
            b = next(r for r in results if r["round"] == index and r["kind"] == "rate")
            a["same_requests"] = b["same_requests"] = same
            print(
                f"  round {index}: ratio audit / rate {a['wall_s'] / b['wall_s']:.2f}; both sides sent the same "
                f"multiset of request bodies: {same}; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )

        # the second audit of the last OUT: answered by the cache
        again = run_side("audit", experiment, config_path, labels, workdir / f"audit-{args.rounds}", template)
        take_digest(base_url)
        stats = stub_stats(base_url, reset=True)
        again.update(served=stats["chat_completions"] - 1)
        print(
            f"second audit on the same OUT: calls {again['calls']}, cache hits {again['cache_hits']:,}, stub served "
            f"{again['served']}; wall {again['wall_s']:.2f} s (setup {again['setup_s']:.2f}, rating "
            f"{again['rating_s']:.2f}, finish {again['finish_s']:.2f}); load {again['load_after']:.2f}"
        )

        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for kind in ("audit", "rate"):
                target = workdir / f"{kind}-profile"
                shutil.rmtree(target, ignore_errors=True)
                profiler = cProfile.Profile()
                profiler.enable()
                run_side(kind, experiment, config_path, labels, target, template)
                profiler.disable()
                take_digest(base_url)
                stub_stats(base_url, reset=True)
                path = args.profile / f"{kind}.prof"
                profiler.dump_stats(path)
                print(f"\ncProfile of one {kind} ({path}), top 25 by cumulative time:")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    finally:
        process.terminate()
        process.wait(timeout=10)

    print()
    summary: dict[str, dict[str, float]] = {}
    for kind in ("audit", "rate"):
        mine = [r for r in results if r["kind"] == kind]
        wall = statistics.median(r["wall_s"] for r in mine)
        served = statistics.median(r["served"] for r in mine)
        cpu_us = 1e6 * sum(r["cpu_s"] for r in mine) / max(1, sum(r["served"] for r in mine))
        summary[kind] = {
            "median_wall_s": wall,
            "req_per_s": served / wall,
            "cpu_us_per_request": cpu_us,
            "median_setup_s": statistics.median(r["setup_s"] for r in mine),
            "median_rating_s": statistics.median(r["rating_s"] for r in mine),
            "median_finish_s": statistics.median(r["finish_s"] for r in mine),
        }
        s = summary[kind]
        label = "audit (audit_judges)" if kind == "audit" else "rate (rate_run)"
        print(
            f"{label:<22} median wall {wall:6.2f} s  {s['req_per_s']:6,.0f} req/s  {cpu_us:6,.0f} µs client CPU/request"
            f"  (setup {s['median_setup_s']:.2f} s, rating {s['median_rating_s']:.2f} s, "
            f"after the last chunk {s['median_finish_s']:.2f} s)"
        )
    ratios = [
        a["wall_s"] / b["wall_s"]
        for a in results
        if a["kind"] == "audit"
        for b in results
        if b["kind"] == "rate" and b["round"] == a["round"]
    ]
    ratio = summary["audit"]["median_wall_s"] / summary["rate"]["median_wall_s"]
    rating_ratio = summary["audit"]["median_rating_s"] / summary["rate"]["median_rating_s"]
    cpu_ratio = summary["audit"]["cpu_us_per_request"] / summary["rate"]["cpu_us_per_request"]
    served_ok = all(r["served"] == expected for r in results)
    same = all(r.get("same_requests") for r in results)
    loads = [r["load_before"] for r in results] + [r["load_after"] for r in results]
    print(
        f"{'ratio audit / rate':<22} {ratio:.2f} (median walls; goal ≤ 1.00: {'met' if ratio <= 1.0 else 'NOT met'})"
        f"; per round {', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f}); rating "
        f"phases alone {rating_ratio:.2f}; client CPU per request {cpu_ratio:.2f}"
    )
    print(
        f"requests: {expected:,} per side expected, stub served exactly that every time: {served_ok}; same request "
        f"bodies on both sides: {same}{' (by design not with --context)' if args.context else ''}; peak open "
        f"connections {max(r['peak_connections'] for r in results)}; load average {min(loads):.2f}-{max(loads):.2f} "
        f"during the rounds, {os.getloadavg()[0]:.2f} now"
    )
    out.update(
        rounds=results,
        summary=summary,
        ratio=ratio,
        round_ratios=ratios,
        rating_ratio=rating_ratio,
        cpu_ratio=cpu_ratio,
        second_audit=again,
        served_ok=served_ok,
        same_requests=same,
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)


def _print_side(r: dict[str, Any]) -> None:
    extra = (
        f"calls {r['calls']:,}, cache hits {r['cache_hits']}, coverage {r['coverage']:.2f}, α vs humans "
        f"{r['alpha_vs_humans']}"
        if r["kind"] == "audit"
        else f"ratings {r['ratings']:,} {r['outcomes']}"
    )
    print(
        f"  round {r['round']} {r['kind']:<5}: wall {r['wall_s']:6.2f} s, {r['served'] / r['wall_s']:5,.0f} req/s, "
        f"{1e6 * r['cpu_s'] / max(1, r['served']):5,.0f} µs CPU/req (setup {r['setup_s']:.2f}, rating "
        f"{r['rating_s']:.2f}, finish {r['finish_s']:.2f}); stub served {r['served']:,}, peak "
        f"{r['peak_connections']} connections; {extra}; load {r['load_before']:.2f}→{r['load_after']:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
