"""The rater registry: built-in kinds, kinds registered in-process, entry points and ``module:Class``.

Third-party raters are found three ways, in this order: a class registered with :func:`register_rater` in the
running process; an entry point of the group ``tribunal.raters`` (``[project.entry-points."tribunal.raters"]``
in the package's ``pyproject.toml``, ``mykind = "mypkg.raters:MyRater"``); or ``kind: mypkg.raters:MyRater``
written in the config.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any

from agents.base import Backend, create_backend
from configs.schema import ModelSpec, RaterSpec
from raters.base import Rater

ENTRY_POINT_GROUP = "tribunal.raters"

_REGISTRY: dict[str, type[Rater]] = {}
_BUILTINS = {
    "llm": "raters.llm_judge:LLMJudge",
    "refusal-patterns": "raters.refusal_patterns:PatternRefusalRater",
    "profanity-check": "raters.profanity:ProfanityCheckRater",
    "prototype": "raters.prototype:PrototypeRater",
    "hf-classifier": "raters.hf_classifier:HFClassifierRater",
    "moral-probe": "raters.moral_probe:MoralProbeRater",
}


def register_rater(kind: str) -> Callable[[type[Rater]], type[Rater]]:
    """Class decorator that registers a rater class under ``kind``."""

    def decorate(cls: type[Rater]) -> type[Rater]:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorate


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load(target: str) -> type[Rater]:
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"cannot load rater class {target!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Rater)):
        raise KeyError(f"{target!r} is not a subclass of raters.Rater")
    return cls


def rater_class(kind: str) -> type[Rater]:
    """The class of a rater kind: registered in-process, built-in, an entry point or ``module:Class``.

    Raises:
        KeyError: the kind is unknown (the message lists the known kinds).
    """
    if kind in _REGISTRY:
        return _REGISTRY[kind]
    if kind in _BUILTINS:
        return _load(_BUILTINS[kind])
    for ep in _entry_points():
        if ep.name == kind:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Rater)):
                raise KeyError(f"entry point {kind!r} ({ep.value}) is not a subclass of raters.Rater")
            cls.kind = cls.kind or kind
            _REGISTRY[kind] = cls
            return cls
    if ":" in kind:
        return _load(kind)
    known = ", ".join(sorted(available_raters()))
    raise KeyError(f"unknown rater kind {kind!r}; known kinds: {known} (or write module:Class)")


def available_raters() -> dict[str, str]:
    """Rater kinds and where they come from, without importing heavy runtimes."""
    found = dict(_BUILTINS)
    found.update({kind: f"{cls.__module__}:{cls.__qualname__}" for kind, cls in _REGISTRY.items()})
    for ep in _entry_points():
        found.setdefault(ep.name, ep.value)
    return found


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
