"""A panel: the raters that judge every generation, how their scores combine, and who detects refusals."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from agents.base import Backend
from configs.schema import PanelConfig, RaterSpec
from raters.aggregate import Method
from raters.base import Rater
from raters.registry import RaterOptionsError, create_rater
from raters.types import Rating


@dataclass
class Panel:
    """Raters plus the aggregation settings.

    Attributes:
        raters: the panel members, by distinct name.
        method: ``mean``, ``median`` or ``majority`` (see :mod:`raters.aggregate`).
        threshold: the yes/no cut of ``majority``.
        refusal_detector: the name of the member whose ``refusal`` rating fills ``generations.refusal``.
    """

    raters: list[Rater] = field(default_factory=list)
    method: Method = "mean"
    threshold: float = 0.5
    refusal_detector: str | None = None

    def __bool__(self) -> bool:
        return bool(self.raters)

    def refusal_flags(self, ratings: Sequence[Rating]) -> dict[str, bool]:
        """Item key → refusal flag, from the detector's scored ``refusal`` ratings (unscored: no flag)."""
        if self.refusal_detector is None:
            return {}
        return {
            r.item_key: (r.score or 0.0) >= 0.5
            for r in ratings
            if r.rater.name == self.refusal_detector and r.dimension == "refusal" and r.scored
        }

    async def aclose(self) -> None:
        for rater in self.raters:
            with contextlib.suppress(Exception):
                await rater.aclose()


class PanelError(ValueError):
    """A rater spec that cannot be built; ``field_path`` names it in the config (``panel.raters[2].kind``)."""

    def __init__(self, field_path: str, problem: str) -> None:
        self.field_path = field_path
        self.problem = problem
        super().__init__(f"{field_path}: {problem}")


def build_panel(
    config: PanelConfig,
    backends: Mapping[str, Backend],
    *,
    only: Sequence[str] | None = None,
    config_path: str | Path = "<config>",
) -> Panel:
    """Build the raters of a panel config.

    Args:
        config: the ``panel`` section.
        backends: the run's backends by model name (LLM judges that name a configured model share them).
        only: build just these raters, by name; a name that is not in the panel but is a rater kind that needs
            no model (``profanity-check``, ``refusal-patterns``, ``prototype``) adds that kind with defaults.
        config_path: for error messages.

    Raises:
        PanelError: an unknown kind, model, rubric or dimension, or a rater that rejects its options.
    """
    specs: list[tuple[str, RaterSpec]] = [(f"panel.raters[{i}]", s) for i, s in enumerate(config.raters)]
    if only is not None:
        by_name = {s.name: (path, s) for path, s in specs}
        specs = []
        for name in only:
            if name in by_name:
                specs.append(by_name[name])
                continue
            try:
                specs.append((f"--raters {name}", RaterSpec(name=name, kind=name)))
            except ValidationError:
                known = ", ".join(by_name) or "none"
                raise PanelError(f"--raters {name}", f"not a rater of the panel ({known}) nor a rater kind") from None
    raters = []
    for field_path, spec in specs:
        try:
            raters.append(create_rater(spec, backends, config_path=config_path, field_path=f"{field_path}.model"))
        except KeyError as exc:
            problem = exc.args[0] if exc.args else str(exc)
            raise PanelError(f"{field_path}.kind" if "kind" in problem else f"{field_path}.model", problem) from None
        except RaterOptionsError as exc:
            raise PanelError(f"{field_path}.{exc.field_path}", exc.problem) from None
        except ValueError as exc:
            if hasattr(exc, "field_path") and hasattr(exc, "path"):  # a ConfigError from the backend
                raise
            raise PanelError(field_path, str(exc)) from None
    detector = config.refusal_detector if config.refusal_detector in {r.name for r in raters} else None
    return Panel(raters=raters, method=config.aggregation, threshold=config.threshold, refusal_detector=detector)
