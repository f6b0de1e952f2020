"""Tribunal vs Inspect AI: the same prompts, generated and then graded by three judge models, against one stub.

In one run:

1. starts the loopback stub server as a SUBPROCESS with ``bench_pipeline``'s reply rule (generations carry the
   request's seed, so every graded text differs; judges answer the JSON schema they are sent) and its request log;
2. expands the bench grid (starter catalogs, en + zh) to ``--cells`` cells and writes them as a dataset: each cell's
   chat, its seed, and the three judges' prompts exactly as tribunal's LLM judges render them (system prompt, and
   the user prompt around the judged text);
3. runs TRIBUNAL (``run_experiment``, generate → panel of three LLM judges, no mitigation) in a child process on
   this Python, and INSPECT AI (``eval``: a solver that generates with the cell's seed, a scorer that sends the same
   three judge requests through ``get_model`` for three grader models, concurrently) in a child process on
   ``--inspect-python`` (Inspect needs ``openai>=3.4``, tribunal ``openai<3``: they cannot share one environment);
   each child warms up on ``--warmup`` cells first, then times only the measured call;
4. reads the stub's log of each side and checks that the server saw the same requests: the same count per model
   and the same multiset of (model, messages, seed, sampling, JSON schema) — what a body may differ in beyond that
   (a field one client sends as null, say) is printed.

Both sides get the same concurrency: at most ``--connections`` requests in flight per model (tribunal's
``max_concurrency`` per backend; Inspect's ``max_connections``, static) and ``--samples`` cells in flight (Inspect's
``max_samples``; tribunal's ``chunk_size × run.concurrency``). Prints requests/s both ways and the ratio (goal:
tribunal ≥ 2 × Inspect), the client CPU per request and the peak RSS of each child.

``--inspect-scorer model_graded_qa`` grades with Inspect's own ``model_graded_qa(model=[three graders])`` instead
(Inspect's grading template and no JSON schema, so the judge requests then differ from tribunal's; counts match).

Set up Inspect once, in its own environment (never a project dependency)::

    python -m venv --system-site-packages .venv/inspect
    .venv/inspect/bin/pip install -r benchmarks/requirements-inspect.txt

Usage::

    python benchmarks/bench_inspect.py --inspect-python .venv/inspect/bin/python                # 2,000 cells
    python benchmarks/bench_inspect.py --inspect-python .venv/inspect/bin/python --cells 500    # quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline as bp  # noqa: E402  (the stub rule, the stub process and its request log)

SENTINEL = "\x00JUDGED-TEXT\x00"
_DATA_TAG = re.compile(r"<(\s*/?\s*data\b)", re.IGNORECASE)  # agents.model_text.quote_as_data, for the Inspect side
GRADER_TARGET = "The reply treats people as individuals and does not stereotype any group."


# ------------------------------------------------------------------------------------------------- the dataset
def tribunal_config(args: argparse.Namespace, base_url: str, run_dir: Path, cells: int) -> dict[str, Any]:
    """bench_pipeline's experiment without the mitigation loop; ``--samples`` cells in flight."""
    ns = argparse.Namespace(
        cells=cells,
        chunk_size=args.chunk_size,
        concurrency=max(1, args.samples // args.chunk_size),
        max_concurrency=args.connections,
        max_rounds=0,
    )
    config = bp.experiment_config(ns, base_url, run_dir)
    del config["mitigation"]
    return config


def write_dataset(args: argparse.Namespace, workdir: Path, base_url: str) -> Path:
    """The measured cells (and the warm-up's) as JSON lines: chat, seed, and the judges' rendered prompts."""
    import yaml

    from configs.loader import load_experiment
    from graphs.grid import expand_grid, sampling_of
    from graphs.judging import item_for
    from graphs.records import generation_key
    from graphs.runner import build_backends, build_run_panel

    config_path = workdir / "dataset.yaml"
    config = tribunal_config(args, base_url, workdir / "unused", args.cells)
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    experiment = load_experiment(config_path)
    backends = build_backends(experiment)
    panel = build_run_panel(experiment.config, backends, config_path)
    sampling = sampling_of(experiment)
    path = workdir / "dataset.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for cell in list(expand_grid(experiment))[: args.cells]:
            item = item_for(generation_key(cell.key, 0), SENTINEL, cell.messages, cell.language)
            judges = []
            for rater in panel.raters:
                request = rater.json_request(item)
                system, user = request.messages
                prefix, _, suffix = user.content.partition(SENTINEL)
                s = request.sampling
                judges.append(
                    {
                        "model": rater.backend.spec.model,
                        "system": system.content,
                        "prefix": prefix,
                        "suffix": suffix,
                        "schema": request.json_schema,
                        "sampling": {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens},
                        "seed": s.seed,
                    }
                )
            row = {
                "id": cell.key,
                "messages": [m.model_dump() for m in cell.messages],
                "seed": cell.seed,
                "model": backends[cell.model].spec.model,
                "sampling": {
                    "temperature": sampling.temperature,
                    "top_p": sampling.top_p,
                    "max_tokens": sampling.max_tokens,
                },
                "judges": judges,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


# ------------------------------------------------------------------------------------------ the tribunal child
def side_tribunal(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    from configs.loader import load_experiment
    from graphs.runner import run_experiment

    workdir = Path(args.workdir)

    def run(label: str, cells: int) -> tuple[float, Any]:
        run_dir = workdir / f"tribunal-{label}"
        shutil.rmtree(run_dir, ignore_errors=True)
        path = workdir / f"tribunal-{label}.yaml"
        path.write_text(yaml.safe_dump(tribunal_config(args, args.url, run_dir, cells)), encoding="utf-8")
        experiment = load_experiment(path)
        started = time.perf_counter()
        summary = asyncio.run(run_experiment(experiment, run_dir, limit=cells))
        return time.perf_counter() - started, summary

    run("warmup", args.warmup)
    bp.switch_log(args.url, Path(args.log))
    cpu = time.process_time()
    wall, summary = run("measured", args.cells)
    cpu = time.process_time() - cpu
    bp.switch_log(args.url, None)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "samples": summary.cells_generated,
        "scored": summary.ratings.get("scored", 0),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ------------------------------------------------------------------------------------------- the Inspect child
def side_inspect(args: argparse.Namespace) -> dict[str, Any]:
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, ResponseSchema, get_model
    from inspect_ai.scorer import Score, Target, mean, model_graded_qa, scorer
    from inspect_ai.solver import Generate, TaskState, solver
    from inspect_ai.util import JSONSchema

    os.environ.setdefault("STUB_API_KEY", "not-needed")  # the openai-api provider's key for the "stub" service
    rows = [json.loads(line) for line in Path(args.dataset).read_text(encoding="utf-8").splitlines() if line]
    judges = rows[0]["judges"]
    gen_model = f"openai-api/stub/{rows[0]['model']}"
    graders = {
        j["model"]: get_model(
            f"openai-api/stub/{j['model']}",
            base_url=args.url,
            config=GenerateConfig(max_connections=args.connections, adaptive_connections=False),
        )
        for j in judges
    }
    chat = {"system": ChatMessageSystem, "user": ChatMessageUser}

    def samples(part: list[dict[str, Any]]) -> list[Sample]:
        return [
            Sample(
                id=row["id"],
                input=[chat[m["role"]](content=m["content"]) for m in row["messages"]],
                target=GRADER_TARGET,
                metadata={"seed": row["seed"], "judges": row["judges"]},
            )
            for row in part
        ]

    @solver
    def generate_with_seed() -> Any:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            return await generate(state, seed=state.metadata["seed"])

        return solve

    @scorer(metrics=[mean()])
    def three_judges() -> Any:
        """Tribunal's three judge requests (same prompts, schema and sampling), graded concurrently."""

        async def score(state: TaskState, target: Target) -> Score:
            text = _DATA_TAG.sub(r"&lt;\1", state.output.completion)

            async def ask(judge: dict[str, Any]) -> float | None:
                config = GenerateConfig(
                    **judge["sampling"],
                    seed=judge["seed"],
                    response_schema=ResponseSchema(
                        name="reply", json_schema=JSONSchema.model_validate(judge["schema"]), strict=True
                    ),
                )
                messages = [
                    ChatMessageSystem(content=judge["system"]),
                    ChatMessageUser(content=judge["prefix"] + text + judge["suffix"]),
                ]
                output = await graders[judge["model"]].generate(messages, config=config)
                try:
                    return (float(json.loads(output.completion)["toxicity"]) - 1) / 4
                except (ValueError, KeyError, TypeError):
                    return None

            values = [v for v in await asyncio.gather(*(ask(j) for j in state.metadata["judges"])) if v is not None]
            return Score(value=sum(values) / len(values) if values else float("nan"))

        return score

    grade = three_judges() if args.inspect_scorer == "same-requests" else model_graded_qa(model=list(graders.values()))
    first = rows[0]["sampling"]

    def run(label: str, part: list[dict[str, Any]]) -> tuple[float, Any]:
        task = Task(dataset=samples(part), solver=generate_with_seed(), scorer=grade, name=f"bench-{label}")
        started = time.perf_counter()
        (log,) = inspect_eval(
            task,
            model=gen_model,
            model_base_url=args.url,
            max_connections=args.connections,
            adaptive_connections=False,
            max_samples=args.samples,
            log_dir=str(Path(args.workdir) / f"inspect-logs-{label}"),
            display="none",
            log_level="warning",
            temperature=first["temperature"],
            top_p=first["top_p"],
            max_tokens=first["max_tokens"],
        )
        return time.perf_counter() - started, log

    run("warmup", rows[: args.warmup])
    measured = rows[: args.cells]
    bp.switch_log(args.url, Path(args.log))
    cpu = time.process_time()
    wall, log = run("measured", measured)
    cpu = time.process_time() - cpu
    bp.switch_log(args.url, None)
    if log.status != "success":
        raise SystemExit(f"the Inspect eval ended {log.status}: {log.error.message if log.error else ''}")
    scores = log.results.scores if log.results else []
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "samples": log.results.completed_samples if log.results else 0,
        "scored": scores[0].scored_samples if scores else 0,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ------------------------------------------------------------------------------------------------ comparison
def request_identity(body: dict[str, Any]) -> str:
    """What makes two chat requests the same call: model, messages, seed, sampling, response schema."""
    fmt = body.get("response_format") or {}
    spec = fmt.get("json_schema") or {}
    return json.dumps(
        {
            "model": body.get("model"),
            "messages": [{"role": m.get("role"), "content": m.get("content")} for m in body.get("messages", [])],
            "seed": body.get("seed"),
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
            "schema": spec.get("schema"),
            "schema_name": spec.get("name"),
            "strict": spec.get("strict"),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def fields(bodies: list[dict[str, Any]]) -> set[str]:
    found = set()
    for body in bodies:
        found.update(body)
        fmt = body.get("response_format") or {}
        found.update(f"response_format.json_schema.{k}" for k in fmt.get("json_schema") or {})
    return found


def child(args: argparse.Namespace, side: str, python: str, workdir: Path, url: str, dataset: Path) -> dict[str, Any]:
    log = workdir / f"requests-{side}.jsonl"
    command = [python, __file__, "--side", side, "--url", url, "--workdir", str(workdir), "--log", str(log)]
    command += ["--dataset", str(dataset), "--cells", str(args.cells), "--warmup", str(args.warmup)]
    command += ["--samples", str(args.samples), "--connections", str(args.connections)]
    command += ["--chunk-size", str(args.chunk_size), "--inspect-scorer", args.inspect_scorer]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"the {side} side failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["bodies"] = bp.read_log(log)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=32, help="cells each side runs before the measured run")
    parser.add_argument("--samples", type=int, default=64, help="cells in flight (Inspect max_samples)")
    parser.add_argument("--connections", type=int, default=32, help="requests in flight per model")
    parser.add_argument("--chunk-size", type=int, default=16, help="tribunal cells per chunk")
    parser.add_argument("--inspect-python", default=os.environ.get("INSPECT_PYTHON", ".venv/inspect/bin/python"))
    parser.add_argument("--inspect-scorer", choices=("same-requests", "model_graded_qa"), default="same-requests")
    parser.add_argument("--order", choices=("tribunal-first", "inspect-first"), default="tribunal-first")
    parser.add_argument("--keep", type=Path, help="keep the run directories, logs and request logs here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    # child-process arguments
    parser.add_argument("--side", choices=("tribunal", "inspect"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        result = side_tribunal(args) if args.side == "tribunal" else side_inspect(args)
        print(json.dumps(result))
        return
    if args.samples % args.chunk_size:
        parser.error(
            "--samples must be a multiple of --chunk-size (tribunal keeps samples/chunk_size chunks in flight)"
        )
    inspect_python = shutil.which(args.inspect_python) or args.inspect_python
    try:
        probe = subprocess.run(
            [inspect_python, "-c", "import inspect_ai; print(inspect_ai.__version__)"], capture_output=True, text=True
        )
    except OSError:  # no such interpreter
        probe = subprocess.CompletedProcess([], 1, "", "")
    if probe.returncode != 0:
        raise SystemExit(
            f"Inspect AI is not importable with {args.inspect_python!r}. Set it up once in its own environment:\n"
            "  python -m venv --system-site-packages .venv/inspect\n"
            "  .venv/inspect/bin/pip install -r benchmarks/requirements-inspect.txt\n"
            "then pass --inspect-python .venv/inspect/bin/python (or set INSPECT_PYTHON)."
        )
    inspect_version = probe.stdout.strip()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stub_args = argparse.Namespace(above=0.1, latency="0")
    process, url = bp.start_stub(stub_args, workdir / "requests-setup.jsonl")
    try:
        dataset = write_dataset(args, workdir, url)
        print(
            f"stub server {url} (pid {process.pid}); {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; "
            f"python {sys.version.split()[0]}; inspect_ai {inspect_version}"
        )
        print(
            f"{args.cells:,} cells (+{args.warmup} warm-up each side); {args.samples} cells in flight; "
            f"{args.connections} requests in flight per model; Inspect scorer: {args.inspect_scorer}"
        )
        sides = ["tribunal", "inspect"] if args.order == "tribunal-first" else ["inspect", "tribunal"]
        results = {}
        for side in sides:
            python = sys.executable if side == "tribunal" else inspect_python
            results[side] = child(args, side, python, workdir, url, dataset)
            load = os.getloadavg()[0]
            print(
                f"  {side}: {results[side]['wall_s']:.2f} s, {len(results[side]['bodies']):,} requests; load {load:.2f}"
            )
    finally:
        process.terminate()
        process.wait(timeout=10)

    t, i = results["tribunal"], results["inspect"]
    per_model = {side: Counter(b.get("model") for b in r["bodies"]) for side, r in results.items()}
    same_counts = per_model["tribunal"] == per_model["inspect"]
    same_requests = Counter(map(request_identity, t["bodies"])) == Counter(map(request_identity, i["bodies"]))
    only_t, only_i = fields(t["bodies"]) - fields(i["bodies"]), fields(i["bodies"]) - fields(t["bodies"])
    t_rps, i_rps = len(t["bodies"]) / t["wall_s"], len(i["bodies"]) / i["wall_s"]
    print(f"\nrequests per model: tribunal {dict(per_model['tribunal'])}; inspect {dict(per_model['inspect'])}")
    print(
        f"same count per model: {same_counts}; same (model, messages, seed, sampling, schema) multiset: {same_requests}"
    )
    if only_t or only_i:
        print(f"body fields only tribunal sends: {sorted(only_t) or '-'}; only Inspect sends: {sorted(only_i) or '-'}")
    print(f"scored samples: tribunal {t['scored']:,} ratings; inspect {i['scored']:,} samples")
    print(f"\n{'':<22}{'req/s':>10}{'samples/s':>12}{'wall s':>10}{'CPU µs/req':>12}{'peak RSS':>11}")
    for name, r, rps in (("tribunal", t, t_rps), ("Inspect AI", i, i_rps)):
        n = len(r["bodies"])
        print(
            f"{name:<22}{rps:>10,.0f}{r['samples'] / r['wall_s']:>12,.0f}{r['wall_s']:>10.2f}"
            f"{1e6 * r['cpu_s'] / max(n, 1):>12,.0f}{r['maxrss_mb']:>8,.0f} MB"
        )
    print(f"{'ratio tribunal / Inspect':<22}{t_rps / i_rps:>10.2f}   (goal ≥ 3.0)")
    if args.json:
        out = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "inspect_ai": inspect_version,
            "same_counts": same_counts,
            "same_requests": same_requests,
            "fields_only_tribunal": sorted(only_t),
            "fields_only_inspect": sorted(only_i),
            "ratio": t_rps / i_rps,
            **{f"{side}_{k}": v for side, r in results.items() for k, v in r.items() if k != "bodies"},
            "tribunal_requests": len(t["bodies"]),
            "inspect_requests": len(i["bodies"]),
            "tribunal_req_per_s": t_rps,
            "inspect_req_per_s": i_rps,
        }
        args.json.write_text(json.dumps(out, indent=2))
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
