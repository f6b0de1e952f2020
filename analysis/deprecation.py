"""Renamed keyword arguments that keep working, with a ``DeprecationWarning``, for one release.

The agreement functions name the rated thing ``units`` (Krippendorff's term) everywhere; :func:`analysis.icc`
called it ``targets`` (pingouin's) and :func:`analysis.fleiss_kappa` ``subjects`` (Fleiss'). The old keywords
are accepted until :data:`REMOVAL` and warn; positional calls never changed.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["REMOVAL", "renamed_keyword"]

#: The release in which the renamed keywords stop being accepted.
REMOVAL = "0.2.0"

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keyword(old: str, new: str) -> Callable[[F], F]:
    """Let ``new`` also be passed as ``old`` until :data:`REMOVAL`, with a ``DeprecationWarning``.

    Args:
        old: The keyword's former name.
        new: Its name now (a parameter of the decorated function).

    Returns:
        A decorator; the decorated function's signature (``inspect.signature``) shows only ``new``.

    Raises:
        TypeError: (from the decorated function) both ``old`` and ``new`` were passed.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {old!r} and {new!r}; pass only {new}=")
                warnings.warn(
                    f"{fn.__name__}({old}=...) is deprecated and will be removed in {REMOVAL}; "
                    f"use {fn.__name__}({new}=...)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
