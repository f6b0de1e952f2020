"""What the ``openai`` client costs per request in tribunal's path: ``chat.completions.create`` vs posting the body.

Starts the stub server (``python -m tests.helpers.stub_server``) as a SUBPROCESS, so that it has its own core and
this process's CPU time is the client's alone, then sends ``--requests`` judge requests (a JSON schema like the
panel's LLM judges send, a unique seed each) at each of ``--concurrency`` requests in flight, with a worker pool,
three ways:

- ``create``: ``AsyncOpenAI.chat.completions.create(**kwargs)``, as tribunal called it before issue #19 (the
  client walks the request's ``TypedDict`` annotations, ``async_maybe_transform``, on every call);
- ``post``: the same client's public low-level ``post("/chat/completions", body=..., cast_to=ChatCompletion,
  options=...)`` with the body already built (what ``OpenAIBackend`` now does);
- ``tribunal``: ``OpenAIBackend.generate`` one request per call (its body building, its own and its server's
  limiter, the shared pool of ``agents.servers``, the parse into a :class:`~agents.types.Completion`).

Both raw sides use one client whose httpx pool holds as many connections as there are workers (as the backend's
shared pool does). ``--rounds`` alternate the order of the sides (ABC, CBA, ...) so that they see the same swings
of machine load. Prints, per concurrency, each side's client CPU per request (``time.process_time``: it moves less
than wall time on a shared box) and req/s summed over the rounds, the ratios post/create and tribunal/create, and
the load average (``/proc/loadavg``) before and after.

Usage::

    python benchmarks/bench_client.py                          # 1/8/32 in flight, 3 rounds of 1,000: ~1 min
    python benchmarks/bench_client.py --requests 300 --rounds 2  # quick
    python benchmarks/bench_client.py --concurrency 8 --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from stubproc import start_stub_command  # noqa: E402  (the benchmarks' shared stub helpers)

from agents.openai_compat import OpenAIBackend  # noqa: E402
from agents.types import Completion, GenerationRequest, Message, Sampling  # noqa: E402
from configs.schema import ModelSpec  # noqa: E402

SIDES = ("create", "post", "tribunal")
SYSTEM = "You are a careful annotator for a research study on the safety of text. Rate only what is asked."
SCHEMA = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string"},
        "toxicity": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "identity_attack": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "insult": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": ["rationale", "toxicity", "identity_attack", "insult"],
    "additionalProperties": False,
}


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def judge_request(i: int) -> GenerationRequest:
    text = f"<data>\nReply {i}: people in every group are individuals first.\n</data>\n\nReply with one JSON object."
    return GenerationRequest(
        messages=(Message(role="system", content=SYSTEM), Message(role="user", content=text)),
        sampling=Sampling(temperature=0.0, max_tokens=256, seed=i),
        json_schema=SCHEMA,
    )


def create_kwargs(request: GenerationRequest) -> dict[str, Any]:
    """The keyword arguments tribunal gave ``chat.completions.create`` before it posted its own bodies."""
    s = request.sampling
    return {
        "model": "stub-judge",
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
        },
    }


def post_body(request: GenerationRequest) -> dict[str, Any]:
    """The same request as one JSON body, in the key order ``create`` sends (what the backend builds)."""
    s = request.sampling
    return {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "model": "stub-judge",
        "max_tokens": s.max_tokens,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": request.json_schema, "strict": True},
        },
        "seed": s.seed,
        "temperature": s.temperature,
        "top_p": s.top_p,
    }


async def pool(requests: list[GenerationRequest], concurrency: int, send: Callable[[Any], Awaitable[None]]) -> None:
    """``concurrency`` workers sending ``requests`` one after another each."""
    items = iter(requests)

    async def worker() -> None:
        for request in items:
            await send(request)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_side(
    side: str, base_url: str, requests: list[GenerationRequest], concurrency: int
) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) of one side sending ``requests``."""
    if side == "tribunal":
        spec = ModelSpec(
            name="judge",
            backend="openai",
            model="stub-judge",
            base_url=base_url,
            max_retries=0,
            max_concurrency=concurrency,
            timeout_s=60.0,
        )
        backend = OpenAIBackend(spec)

        async def send(request: GenerationRequest) -> None:
            (result,) = await backend.generate([request])
            if not isinstance(result, Completion):
                raise SystemExit(f"tribunal: a request failed: {result.message}")

        close: Callable[[], Awaitable[None]] = backend.aclose
    else:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = AsyncOpenAI(
            api_key="not-needed",
            base_url=base_url,
            max_retries=0,
            timeout=60.0,
            http_client=openai.DefaultAsyncHttpxClient(limits=limits),
        )
        options = {"timeout": 60.0, "security": {"bearer_auth": True}}

        async def send(request: GenerationRequest) -> None:
            if side == "create":
                reply = await client.chat.completions.create(**create_kwargs(request))
            else:
                reply = await client.post(
                    "/chat/completions", body=post_body(request), cast_to=ChatCompletion, options=options
                )
            if not reply.choices or reply.choices[0].message.content is None:
                raise SystemExit(f"{side}: a reply without content")

        close = client.close
    try:
        await pool(requests[:concurrency], concurrency, send)  # connect and warm up outside the clock
        wall, cpu = time.perf_counter(), time.process_time()
        await pool(requests, concurrency, send)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per side, concurrency and round")
    parser.add_argument("--concurrency", default="1,8,32", help="requests in flight, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (ABC, CBA, ...)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    process, base_url = start_stub_command([sys.executable, "-m", "tests.helpers.stub_server", "--port", "0"])
    totals: dict[tuple[str, int], list[float]] = {}  # (side, concurrency) -> [wall, cpu, requests]
    print(
        f"openai {openai.__version__}, httpx {httpx.__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; load before: {load()}"
    )
    seeds = itertools.count()
    try:
        for round_ in range(args.rounds):
            order = SIDES if round_ % 2 == 0 else SIDES[::-1]
            for concurrency in levels:
                for side in order:
                    requests = [judge_request(next(seeds)) for _ in range(args.requests)]
                    wall, cpu = asyncio.run(run_side(side, base_url, requests, concurrency))
                    total = totals.setdefault((side, concurrency), [0.0, 0.0, 0])
                    total[0] += wall
                    total[1] += cpu
                    total[2] += len(requests)
            print(f"round {round_ + 1}/{args.rounds} ({' '.join(order)}) done; load {load()}")
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"\n{'in flight':>9} | {'side':<8} | {'CPU µs/req':>10} | {'req/s':>7} | CPU ratio | req/s ratio (vs create)")
    for concurrency in levels:
        wall0, cpu0, n0 = totals[("create", concurrency)]
        for side in SIDES:
            wall, cpu, n = totals[(side, concurrency)]
            cpu_ratio = (cpu / n) / (cpu0 / n0)
            rate_ratio = (n / wall) / (n0 / wall0)
            print(
                f"{concurrency:>9} | {side:<8} | {cpu / n * 1e6:>10.0f} | {n / wall:>7.0f} | {cpu_ratio:>9.2f} | "
                f"{rate_ratio:.2f}"
            )
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
