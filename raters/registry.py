"""The rater registry: built-in kinds, kinds registered in-process, entry points and ``module:Class``.

Third-party raters are found three ways, in this order: a class registered with :func:`register_rater` in the
running process; an entry point of the group ``tribunal.raters`` (``[project.entry-points."tribunal.raters"]``
in the package's ``pyproject.toml``, ``mykind = "mypkg.raters:MyRater"``); or ``kind: mypkg.raters:MyRater``
written in the config.

A rater class declares its options as a pydantic model, its ``Options`` class attribute: the built-in kinds' are
in :data:`configs.options.RATER_OPTIONS` (checked when the config is validated), a third-party class's are
checked by :func:`create_rater`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from agents.base import Backend, create_backend
from agents.registry import Registry
from configs.options import first_problem
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
        "value-probe": "raters.moral_probe:ValueProbeRater",
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


class RaterOptionsError(ValueError):
    """A rater spec's options do not fit its kind's ``Options``; ``field_path`` is relative to the spec."""

    def __init__(self, field_path: str, problem: str) -> None:
        self.field_path = field_path
        self.problem = problem
        super().__init__(f"{field_path}: {problem}")


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
        RaterOptionsError: the options do not fit the class's ``Options`` model (third-party kinds are checked
            here; the built-ins' options were checked with the config already).
        ValueError: the rater rejects its configuration.
    """
    cls = rater_class(spec.kind)
    options_model = getattr(cls, "Options", None)
    if options_model is not None:
        try:
            options_model.model_validate(spec.options)
        except ValidationError as exc:
            where, problem = first_problem(exc)
            raise RaterOptionsError(f"options.{where}" if where else "options", problem) from None
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
