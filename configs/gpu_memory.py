r"""GPU memory arithmetic of a config's vLLM models, checked before a GPU is rented.

vLLM gives each engine ``gpu_memory_utilization`` (default 0.9) of the GPU's memory; in that share it holds the
weights, the activations of its profiling batch, CUDA graphs and the KV cache. The weights alone take

.. math::
    W = \frac{p \cdot 10^9 \cdot b}{t \cdot q} \ \text{bytes per GPU}

for :math:`p` = ``params_b`` billion parameters, :math:`b` bytes per parameter (4 for ``float32``, 2 for
``bfloat16``/``float16`` and for ``auto``, which is 16-bit for the chat checkpoints of these studies, 1 for
``fp8``, about 0.5 for 4-bit ``awq``/``gptq``/``bitsandbytes``), spread over :math:`t` =
``tensor_parallel_size`` × :math:`q` = ``pipeline_parallel_size`` GPUs. The budget is
``gpu_memory_utilization`` × ``gpu_memory_gb`` (a vLLM option of this project, not passed to vLLM: the card's
memory in GB as sold, 80 by default; 141 for an H200). Checks, in GB of :math:`10^9` bytes:

* **error** when :math:`W` is not below the budget: the engine cannot load the weights;
* **error** when the vLLM models a run loads add up to more than the whole GPU (they share it in one process,
  and an engine that asks for more than is free refuses to start);
* **warning** when less than :data:`MIN_HEADROOM_GB` is left after the weights: vLLM then has no room for its
  activations and CUDA graphs plus a KV cache that batches (a 4096-token sequence of a 7-9B model with grouped
  KV heads needs 0.2-0.5 GB on its own), and either refuses to start or runs a handful of sequences at a time;
* **warning** when a vLLM model gives no ``params_b``: its memory cannot be checked.

Quantization schemes not listed here are skipped (their size cannot be known from the config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from configs.base import ConfigError, ModelSpec
from configs.schema import ExperimentConfig

__all__ = ["DEFAULT_GPU_MEMORY_GB", "MIN_HEADROOM_GB", "gpu_memory_warnings", "weight_gb"]

#: The GPU's memory when the config declares none (``options.gpu_memory_gb``): an 80 GB A100 or H100.
DEFAULT_GPU_MEMORY_GB = 80.0
#: vLLM's own default share of the GPU.
DEFAULT_UTILIZATION = 0.9
#: Memory an engine needs beyond its weights to start and batch: activations, CUDA graphs, a useful KV cache.
MIN_HEADROOM_GB = 4.0
_QUANTIZED_BYTES = {
    "fp8": 1.0, "fbgemm_fp8": 1.0, "modelopt": 1.0, "awq": 0.5, "awq_marlin": 0.5, "gptq": 0.5, "gptq_marlin": 0.5,
    "marlin": 0.5, "bitsandbytes": 0.5,
}  # fmt: skip
_DTYPE_BYTES = {"float32": 4.0, "float": 4.0, "bfloat16": 2.0, "float16": 2.0, "half": 2.0, "auto": 2.0}


def weight_gb(spec: ModelSpec) -> float | None:
    """GB of weights per GPU of a vLLM model (``None``: no ``params_b``, or a precision this cannot size)."""
    options = spec.options
    if spec.params_b is None:
        return None
    quantization = options.get("quantization")
    if quantization is not None:
        per_param = _QUANTIZED_BYTES.get(str(quantization).lower())
    else:
        per_param = _DTYPE_BYTES.get(str(options.get("dtype") or "auto").lower())
    if per_param is None:
        return None
    gpus = int(options.get("tensor_parallel_size") or 1) * int(options.get("pipeline_parallel_size") or 1)
    return spec.params_b * per_param / gpus


def _loaded_vllm_models(config: ExperimentConfig) -> list[tuple[str, ModelSpec]]:
    """``(field path, spec)`` of every vLLM model a run of ``config`` loads: generators, judges, critic, rewriter."""
    index = {m.name: i for i, m in enumerate(config.models)}
    used: dict[str, None] = dict.fromkeys(config.grid.models if config.grid.models is not None else index)
    inline: list[tuple[str, ModelSpec]] = []

    def note(model: str | ModelSpec | None, field_path: str) -> None:
        if isinstance(model, str):
            used[model] = None
        elif model is not None:
            inline.append((field_path, model))

    for i, rater in enumerate(config.panel.raters):
        note(rater.model, f"panel.raters[{i}].model")
    if config.mitigation is not None and config.mitigation.enabled:
        note(config.mitigation.critic, "mitigation.critic")
        note(config.mitigation.rewriter, "mitigation.rewriter")
    out = [(f"models[{index[n]}]", config.models[index[n]]) for n in used if n in index]
    return [(where, spec) for where, spec in out + inline if spec.backend == "vllm"]


def gpu_memory_warnings(config: ExperimentConfig, path: Path) -> list[str]:
    """Check the vLLM models' memory arithmetic (module docstring); returns the warnings.

    Raises:
        ConfigError: a model's weights do not fit in its share, or the shares add up to more than the GPU.
    """
    messages = []
    shares: list[tuple[str, float]] = []
    gpu_gb = DEFAULT_GPU_MEMORY_GB
    for where, spec in _loaded_vllm_models(config):
        options: dict[str, Any] = spec.options
        gpu_gb = float(options.get("gpu_memory_gb") or DEFAULT_GPU_MEMORY_GB)
        share = float(options.get("gpu_memory_utilization") or DEFAULT_UTILIZATION)
        shares.append((spec.name, share))
        budget = share * gpu_gb
        weights = weight_gb(spec)
        if weights is None:
            why = "no params_b" if spec.params_b is None else f"quantization {options.get('quantization')!r}"
            messages.append(f"{path}: {where}: {spec.name!r} has {why}, so its GPU memory cannot be checked")
            continue
        field_path = f"{where}.options.gpu_memory_utilization"
        if weights >= budget:
            raise ConfigError(
                path,
                field_path,
                f"{spec.name!r}: {spec.params_b:g}B parameters need {weights:.1f} GB of weights per GPU, but "
                f"{share:g} × {gpu_gb:g} GB = {budget:.1f} GB is all vLLM may use; raise gpu_memory_utilization, "
                "declare the card's memory as options.gpu_memory_gb, or spread it with tensor_parallel_size",
            )
        if budget - weights < MIN_HEADROOM_GB:
            messages.append(
                f"{path}: {field_path}: {spec.name!r} leaves {budget - weights:.1f} GB after its {weights:.1f} GB of "
                f"weights in {share:g} × {gpu_gb:g} GB, under the {MIN_HEADROOM_GB:g} GB vLLM needs for activations, "
                "CUDA graphs and a KV cache that batches; raise gpu_memory_utilization"
            )
    total = sum(share for _, share in shares)
    if len(shares) > 1 and total > 1.0 + 1e-9:
        listed = ", ".join(f"{name} {share:g}" for name, share in shares)
        raise ConfigError(
            path,
            "models",
            f"the vLLM models a run loads share one GPU in one process, and their gpu_memory_utilization adds up "
            f"to {total:.2f} of it ({listed}); lower them to sum to at most 1",
        )
    return messages
