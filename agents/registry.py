"""Plugin registries: the classes of one kind of plugin (model backends, raters) by name.

A name is looked up in this order: a class registered in the running process (:meth:`Registry.register`), a
built-in (imported only when asked for, so listing never loads a heavy runtime), an entry point of the
registry's group in an installed package (``[project.entry-points."tribunal.raters"]`` in its
``pyproject.toml``: ``mykind = "mypkg.raters:MyRater"``), and, where the registry allows it, ``module:Class``
written in the config itself.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Plugin classes by name.

    Args:
        base: the class every plugin subclasses.
        group: the entry-point group installed packages register under.
        builtins: name → ``module:Class`` of the built-in plugins.
        noun: what a name names, for errors (``"backend"``, ``"rater kind"``); ``plural`` its plural.
        module_paths: whether a name may be a ``module:Class`` path.
    """

    def __init__(
        self,
        *,
        base: type[T],
        group: str,
        builtins: dict[str, str],
        noun: str,
        plural: str,
        module_paths: bool = False,
    ) -> None:
        self.base = base
        self.group = group
        self.builtins = dict(builtins)
        self.noun = noun
        self.plural = plural
        self.module_paths = module_paths
        self.classes: dict[str, type[T]] = {}

    def register(self, kind: str) -> Callable[[type[T]], type[T]]:
        """Class decorator that registers a class under ``kind`` (and sets its ``kind``)."""

        def decorate(cls: type[T]) -> type[T]:
            cls.kind = kind  # type: ignore[attr-defined]
            self.classes[kind] = cls
            return cls

        return decorate

    def get(self, kind: str) -> type[T]:
        """The class of ``kind``.

        Raises:
            KeyError: the name is unknown (the message lists the known ones) or its class cannot be loaded.
        """
        if kind in self.classes:
            return self.classes[kind]
        if kind in self.builtins:
            return self._load(self.builtins[kind])
        for ep in self._entry_points():
            if ep.name == kind:
                cls = self._checked(ep.load(), f"entry point {kind!r} ({ep.value})")
                cls.kind = getattr(cls, "kind", None) or kind  # type: ignore[attr-defined]
                self.classes[kind] = cls
                return cls
        if self.module_paths and ":" in kind:
            return self._load(kind)
        known = ", ".join(sorted(self.available()))
        hint = " (or write module:Class)" if self.module_paths else ""
        raise KeyError(f"unknown {self.noun} {kind!r}; known {self.plural}: {known}{hint}")

    def available(self) -> dict[str, str]:
        """Every known name and where its class comes from, without importing any of them."""
        found = dict(self.builtins)
        found.update({kind: f"{cls.__module__}:{cls.__qualname__}" for kind, cls in self.classes.items()})
        for ep in self._entry_points():
            found.setdefault(ep.name, ep.value)
        return found

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return list(importlib.metadata.entry_points(group=self.group))

    def _load(self, target: str) -> type[T]:
        module_name, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise KeyError(f"cannot load {self.noun} class {target!r}: {exc}") from None
        return self._checked(cls, repr(target))

    def _checked(self, cls: object, what: str) -> type[T]:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise KeyError(f"{what} is not a subclass of {self.base.__module__}.{self.base.__qualname__}")
        return cls
