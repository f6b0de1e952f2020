"""vLLM throughput (GPU machines): tribunal's generation stage against raw vLLM, offline and through a server.

In one run, on the same chat prompts (the starter grid's persona × target × template messages), greedy, the same
``max_tokens``, with ``ignore_eos`` off (counts are the tokens each path actually generated):

1. raw ``vllm.LLM.chat`` on all prompts in one call (one shared ``SamplingParams``);
2. raw ``vllm.LLM.generate`` on the same prompts pre-rendered with the tokenizer's chat template;
3. tribunal's ``VLLMBackend.generate`` (the ``vllm`` backend, sharing the same ``LLM`` engine: no second copy of
   the weights) on the same prompts as ``GenerationRequest`` objects, in chunks of ``--chunk-size``;
   goal ≥ 0.95 × the tokens/s of (1);
4. with ``--server-url`` (a running ``vllm serve``): tribunal's ``openai`` backend against a raw
   ``openai.AsyncOpenAI`` loop at the same concurrency, same prompts (add ``--server-only`` when the server holds
   the GPU and the offline engine cannot start beside it).

Each measurement is repeated ``--repeats`` times after a warm-up; the best is reported.

Usage (on a GPU machine with vLLM installed)::

    python benchmarks/bench_vllm.py --model /models/Qwen2.5-7B-Instruct
    python benchmarks/bench_vllm.py --model /models/m --prompts 2048 --max-tokens 128 --gpu-memory-utilization 0.85
    vllm serve /models/m --port 8000 &   # then:
    python benchmarks/bench_vllm.py --model /models/m --server-url http://127.0.0.1:8000/v1 --server-only
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STARTER = ROOT / "configs" / "catalogs" / "starter"


def chats(count: int) -> list[tuple[Any, ...]]:
    """``count`` chats from the starter catalogs (all personas, targets, templates, English and Chinese)."""
    from agents.generator import render_messages
    from configs.loader import read_yaml
    from configs.schema import PersonaCatalog, TargetCatalog, TemplateCatalog

    personas = PersonaCatalog.model_validate(read_yaml(STARTER / "personas.yaml")).personas
    targets = TargetCatalog.model_validate(read_yaml(STARTER / "targets.yaml")).targets
    templates = TemplateCatalog.model_validate(read_yaml(STARTER / "templates.yaml")).templates
    distinct = [
        render_messages(p, t, m, lang)
        for lang in ("en", "zh")
        for p in [*personas, None]
        for t in targets
        for m in templates
    ]
    return [distinct[i % len(distinct)] for i in range(count)]


def best(label: str, runs: list[tuple[float, int]], rows: list[dict[str, Any]]) -> float:
    seconds, tokens = min(runs, key=lambda r: r[0] / max(r[1], 1))
    tps = tokens / seconds
    rows.append({"path": label, "tokens": tokens, "seconds": seconds, "tokens_per_s": tps})
    print(f"{label:<48} {tps:>10,.0f} tok/s  ({tokens:,} tokens in {seconds:.2f} s)", flush=True)
    return tps


def offline(args: argparse.Namespace, prompts: list[tuple[Any, ...]], rows: list[dict[str, Any]]) -> None:
    import vllm

    from agents.types import GenerationRequest, Sampling
    from agents.vllm_offline import VLLMBackend
    from configs.schema import ModelSpec

    options: dict[str, Any] = {"gpu_memory_utilization": args.gpu_memory_utilization, "seed": 0}
    if args.max_model_len:
        options["max_model_len"] = args.max_model_len
    if args.tensor_parallel_size > 1:
        options["tensor_parallel_size"] = args.tensor_parallel_size
    started = time.perf_counter()
    llm = vllm.LLM(model=args.model, **options)
    print(f"vLLM {vllm.__version__} engine for {args.model} started in {time.perf_counter() - started:.0f} s")
    params = vllm.SamplingParams(temperature=0.0, max_tokens=args.max_tokens, seed=0)
    conversations = [[m.model_dump() for m in chat] for chat in prompts]
    tokenizer = llm.get_tokenizer()
    rendered = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    backend = VLLMBackend(ModelSpec(name="vllm", backend="vllm", model=args.model), llm=llm)
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=0)
    requests = [GenerationRequest(messages=chat, sampling=sampling) for chat in prompts]

    def raw_chat() -> tuple[float, int]:
        t = time.perf_counter()
        outs = llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return time.perf_counter() - t, sum(len(o.outputs[0].token_ids) for o in outs)

    def raw_generate() -> tuple[float, int]:
        t = time.perf_counter()
        outs = llm.generate(rendered, sampling_params=params, use_tqdm=False)
        return time.perf_counter() - t, sum(len(o.outputs[0].token_ids) for o in outs)

    async def tribunal_all() -> list[Any]:
        size = args.chunk_size or len(requests)
        results = []
        for i in range(0, len(requests), size):  # the runner hands the backend one chunk per graph invocation
            results += await backend.generate(requests[i : i + size])
        return results

    def tribunal() -> tuple[float, int]:
        t = time.perf_counter()
        outs = asyncio.run(tribunal_all())
        failures = [o for o in outs if o.kind != "completion"]
        if failures:
            raise SystemExit(f"tribunal's vllm backend failed {len(failures)} requests: {failures[0]}")
        return time.perf_counter() - t, sum(o.usage.completion_tokens or 0 for o in outs)

    llm.chat(conversations[: min(32, len(conversations))], sampling_params=params, use_tqdm=False)  # warm-up
    results: dict[str, list[tuple[float, int]]] = {"chat": [], "generate": [], "tribunal": []}
    for _ in range(args.repeats):  # interleaved, so drift falls on every path alike
        results["chat"].append(raw_chat())
        results["generate"].append(raw_generate())
        results["tribunal"].append(tribunal())
    chat_tps = best("raw vllm.LLM.chat", results["chat"], rows)
    gen_tps = best("raw vllm.LLM.generate (pre-rendered prompts)", results["generate"], rows)
    chunk = args.chunk_size or len(requests)
    tri_tps = best(f"tribunal VLLMBackend (chunks of {chunk})", results["tribunal"], rows)
    print(f"ratio tribunal / raw chat: {tri_tps / chat_tps:.3f}; / raw generate: {tri_tps / gen_tps:.3f} (goal ≥ 0.95)")


def server(args: argparse.Namespace, prompts: list[tuple[Any, ...]], rows: list[dict[str, Any]]) -> None:
    from openai import AsyncOpenAI

    from agents.openai_compat import OpenAIBackend
    from agents.types import GenerationRequest, Sampling
    from configs.schema import ModelSpec

    model = args.served_model_name or args.model
    concurrency = args.server_concurrency
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=0)
    requests = [GenerationRequest(messages=chat, sampling=sampling) for chat in prompts]

    async def raw() -> tuple[float, int]:
        async with AsyncOpenAI(base_url=args.server_url, api_key="not-needed", max_retries=0, timeout=600) as client:
            it = iter(prompts)
            tokens = 0

            async def worker() -> None:
                nonlocal tokens
                for chat in it:
                    reply = await client.chat.completions.create(
                        model=model,
                        messages=[m.model_dump() for m in chat],
                        temperature=0.0,
                        top_p=1.0,
                        max_tokens=args.max_tokens,
                        seed=0,
                    )
                    tokens += reply.usage.completion_tokens if reply.usage else 0

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t, tokens

    async def tribunal() -> tuple[float, int]:
        spec = ModelSpec(
            name="served",
            backend="openai",
            model=model,
            base_url=args.server_url,
            max_concurrency=concurrency,
            timeout_s=600,
            max_retries=0,
        )
        backend = OpenAIBackend(spec)
        t = time.perf_counter()
        outs = await backend.generate(requests)
        seconds = time.perf_counter() - t
        await backend.aclose()
        failures = [o for o in outs if o.kind != "completion"]
        if failures:
            raise SystemExit(f"tribunal's openai backend failed {len(failures)} requests: {failures[0]}")
        return seconds, sum(o.usage.completion_tokens or 0 for o in outs)

    asyncio.run(raw())  # warm-up (and the server's prefix cache for both alike)
    results: dict[str, list[tuple[float, int]]] = {"raw": [], "tribunal": []}
    for _ in range(args.repeats):
        results["raw"].append(asyncio.run(raw()))
        results["tribunal"].append(asyncio.run(tribunal()))
    raw_tps = best(f"raw AsyncOpenAI loop → vllm serve ({concurrency} concurrent)", results["raw"], rows)
    tri_tps = best(f"tribunal openai backend → vllm serve ({concurrency})", results["tribunal"], rows)
    print(f"ratio tribunal / raw (server): {tri_tps / raw_tps:.3f} (goal ≥ 0.95)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a local model folder (or a model id vLLM can load)")
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=0, help="tribunal's chunk_size (default: all prompts)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--server-url", help="a running `vllm serve` endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--served-model-name", help="the server's model name (default: --model)")
    parser.add_argument("--server-concurrency", type=int, default=256)
    parser.add_argument("--server-only", action="store_true", help="skip the offline engine")
    args = parser.parse_args()

    need_offline = not args.server_only
    if need_offline and importlib.util.find_spec("vllm") is None:
        print(
            "bench_vllm: vLLM is not installed in this Python, so the offline comparison cannot run. Install it on a "
            "GPU machine (pip install 'tribunal[vllm]' or pip install vllm), or measure a running server only with "
            "--server-url URL --server-only.",
            file=sys.stderr,
        )
        return 2
    if args.server_only and not args.server_url:
        parser.error("--server-only needs --server-url")
    if need_offline and not Path(args.model).exists():
        print(
            f"bench_vllm: note: {args.model} is not a local path; vLLM will try to resolve it itself", file=sys.stderr
        )
    prompts = chats(args.prompts)
    print(
        f"{len(prompts)} prompts, greedy, max_tokens {args.max_tokens}; {os.cpu_count()} CPUs; python "
        f"{sys.version.split()[0]}"
    )
    rows: list[dict[str, Any]] = []
    if need_offline:
        offline(args, prompts, rows)
    if args.server_url:
        server(args, prompts, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
