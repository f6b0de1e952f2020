"""The rater registry: built-in kinds, kinds registered in-process, entry points and ``module:Class``.

Third-party raters are found three ways, in this order: a class registered with :func:`register_rater` in the
running process; an entry point of the group ``tribunal.raters`` (``[project.entry-points."tribunal.raters"]``
in the package's ``pyproject.toml``, ``mykind = "mypkg.raters:MyRater"``); or ``kind: mypkg.raters:MyRater``
written in the config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agents.base import Backend, create_backend
from agents.registry import Registry
from configs.schema import ModelSpec, RaterSpec
from raters.base import Rater

ENTRY_POINT_GROUP = "tribunal.raters"

RATERS: Registry[Rater] = Registry(
    base=Rater,
    group=ENTRY_POINT_GROUP,
    builtins={
        "llm": "raters.llm_judge:LLMJudge",
        "refusal-patterns": "raters.refusal_patterns:PatternRefusalRater",
        "profanity-check": "raters.profanity:ProfanityCheckRater",
        "prototype": "raters.prototype:PrototypeRater",
        "hf-classifier": "raters.hf_classifier:HFClassifierRater",
        "moral-probe": "raters.moral_probe:MoralProbeRater",
    },
    noun="rater kind",
    plural="kinds",
    module_paths=True,
)


def register_rater(kind: str) -> Callable[[type[Rater]], type[Rater]]:
    """Class decorator that registers a rater class under ``kind``."""
    return RATERS.register(kind)


def rater_class(kind: str) -> type[Rater]:
    """The class of a rater kind: registered in-process, built-in, an entry point or ``module:Class``.

    Raises:
        KeyError: the kind is unknown (the message lists the known kinds).
    """
    return RATERS.get(kind)


def available_raters() -> dict[str, str]:
    """Rater kinds and where they come from, without importing heavy runtimes."""
    return RATERS.available()


def create_rater(
    spec: RaterSpec,
    backends: Mapping[str, Backend] | None = None,
    **backend_kwargs: Any,
) -> Rater:
    """Build the rater a :class:`RaterSpec` describes.

    Args:
        spec: the rater's config.
        backends: already-built backends by model name, for specs that name a configured model.
        backend_kwargs: passed to :func:`agents.base.create_backend` for a judge model written inline.

    Raises:
        KeyError: unknown kind or model name.
        ValueError: the rater rejects its configuration.
    """
    cls = rater_class(spec.kind)
    backend: Backend | None = None
    if isinstance(spec.model, ModelSpec):
        backend = create_backend(spec.model, **backend_kwargs)
    elif isinstance(spec.model, str):
        if backends is None or spec.model not in backends:
            raise KeyError(f"no backend for model {spec.model!r}")
        backend = backends[spec.model]
    rater = cls(spec, backend=backend)
    rater.owns_backend = isinstance(spec.model, ModelSpec)
    return rater
