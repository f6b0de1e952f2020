"""``tribunal models list`` and ``tribunal models try``: the backends, and one reply from a model."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.table import Table

from configs.loader import ConfigError
from graphs.cli.console import console, errors, fail, load_or_fail


@click.group("models")
def models() -> None:
    """Model backends."""


@models.command("list")
def models_list() -> None:
    """Show the available backends."""
    from agents.base import available_backends, backend_class

    table = Table("backend", "description", "json schema", "logprobs", "source")
    for kind, source in sorted(available_backends().items()):
        try:
            cls = backend_class(kind)
            table.add_row(kind, cls.description, _yes(cls.supports_json_schema), _yes(cls.supports_logprobs), source)
        except Exception as exc:  # a backend whose dependencies are missing is still listed
            table.add_row(kind, f"[red]unavailable: {exc}[/]", "", "", source)
    console.print(table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


@models.command("try")
@click.argument("model")
@click.argument("prompt")
@click.option("--config", type=click.Path(dir_okay=False), help="Take MODEL by name from this config's models.")
@click.option("--base-url", help="For an ad-hoc openai backend: the server's base URL.")
@click.option("--api-key-env", help="For an ad-hoc openai backend: the variable holding the API key.")
@click.option("--system", help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(1, 32768), default=128, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
def models_try(
    model: str,
    prompt: str,
    config: str | None,
    base_url: str | None,
    api_key_env: str | None,
    system: str | None,
    max_tokens: int,
    temperature: float,
) -> None:
    """Print one reply of MODEL to PROMPT.

    MODEL is a model name from --config, or BACKEND[:MODEL_ID] such as 'embedded', 'openai:gpt-4o-mini' or
    'vllm:Qwen/Qwen2.5-7B-Instruct'.
    """
    from pydantic import ValidationError

    from agents.base import create_backend
    from agents.types import GenerationRequest, Message, Sampling
    from configs.schema import ModelSpec

    if config:
        experiment = load_or_fail(config)
        specs = {m.name: m for m in experiment.config.models}
        if model not in specs:
            fail(f"{config}: models: no model named {model!r} (have: {', '.join(specs)})")
        spec = specs[model]
    else:
        backend, _, model_id = model.partition(":")
        try:
            spec = ModelSpec(
                name="try",
                backend=backend,
                model=model_id or None,
                base_url=base_url,
                api_key=f"${{{api_key_env}}}" if api_key_env else None,
            )
        except ValidationError as exc:
            fail(f"{model}: {exc.errors(include_url=False)[0]['msg'].removeprefix('Value error, ')}")
    messages = [Message(role="user", content=prompt)]
    if system:
        messages.insert(0, Message(role="system", content=system))
    request = GenerationRequest(
        messages=tuple(messages), sampling=Sampling(max_tokens=max_tokens, temperature=temperature, seed=0)
    )

    async def once() -> Any:
        instance = create_backend(spec)
        try:
            return (await instance.generate([request]))[0]
        finally:
            await instance.aclose()

    try:
        result = asyncio.run(once())
    except ConfigError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"{type(exc).__name__}: {exc}", code=1)
    if result.kind == "failure":
        fail(f"{result.failure.value}: {result.message}", code=1)
    console.print(result.text, markup=False, highlight=False)
    errors.print(
        f"[dim]finish={result.finish_reason} tokens={result.usage.prompt_tokens}+{result.usage.completion_tokens} "
        f"latency={result.latency_s:.2f}s[/]"
    )
