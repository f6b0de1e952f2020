"""Rubrics: what a judge is asked to rate, on which scale, as versioned data files.

A rubric is a YAML file (the built-ins live in ``raters/rubrics/``) with an ``id``, a ``version`` that enters every
rating key, the judge's instructions and its dimensions. Three kinds:

``scale``
    an integer rating scale (e.g. 1–5) per dimension; ``score = (value - min) / (max - min)``.
``binary``
    0 or 1 per dimension (e.g. "is this a refusal?"); ``score = value``.
``multilabel``
    a probability per label (e.g. the 14 BeaverTails harm domains); a label is flagged when its probability
    reaches the threshold δ (default 0.5): ``score = 1 if p >= δ else 0``, the probability kept as ``raw``. With
    ``any_label`` set, a derived dimension is flagged when any label is (and stays unscored rather than "safe"
    when some label went unscored and none was flagged).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configs.inputs import read_yaml_file

RUBRICS_DIR = Path(__file__).parent / "rubrics"


class RubricDimension(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)


class Rubric(BaseModel):
    """A validated rubric file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    version: str = Field(min_length=1)
    title: str
    kind: Literal["scale", "binary", "multilabel"]
    instructions: str = Field(min_length=1)
    dimensions: tuple[RubricDimension, ...] = Field(min_length=1)
    scale_min: int = 1
    scale_max: int = 5
    anchors: dict[int, str] = Field(default_factory=dict, description="what points of the scale mean")
    threshold: float = Field(0.5, gt=0, le=1, description="δ of multilabel rubrics")
    any_label: str | None = Field(None, description="multilabel: a derived 'any label flagged' dimension")

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        if self.kind == "scale" and self.scale_max <= self.scale_min:
            raise ValueError("scale_max must be above scale_min")
        ids = [d.id for d in self.dimensions]
        if len(set(ids)) != len(ids):
            raise ValueError("dimension ids must be unique")
        return self

    @property
    def dimension_ids(self) -> tuple[str, ...]:
        ids = tuple(d.id for d in self.dimensions)
        return (*ids, self.any_label) if self.any_label else ids

    @property
    def bounds(self) -> tuple[float, float]:
        """The range of the judge's raw values."""
        if self.kind == "scale":
            return float(self.scale_min), float(self.scale_max)
        return 0.0, 1.0

    def scale_label(self, threshold: float | None = None) -> str:
        if self.kind == "scale":
            return f"{self.scale_min}-{self.scale_max}"
        if self.kind == "binary":
            return "binary"
        return f"p>={threshold if threshold is not None else self.threshold:g}"

    def normalise(self, value: float, threshold: float | None = None) -> float:
        """The 0–1 score of a raw value; raises ``ValueError`` when it is off the scale."""
        lo, hi = self.bounds
        if not lo <= value <= hi:
            raise ValueError(f"{value:g} is outside the scale {lo:g}-{hi:g}")
        if self.kind == "scale":
            return (value - lo) / (hi - lo)
        if self.kind == "binary":
            if value not in (0.0, 1.0):
                raise ValueError(f"{value:g} is not 0 or 1")
            return value
        return 1.0 if value >= (threshold if threshold is not None else self.threshold) else 0.0

    def reply_schema(self, dimensions: tuple[str, ...]) -> dict[str, Any]:
        """The JSON schema of a judge's reply: a rationale and one value per dimension (strict-mode compatible)."""
        if self.kind == "multilabel":
            value: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}
        else:
            lo, hi = (self.scale_min, self.scale_max) if self.kind == "scale" else (0, 1)
            value = {"type": "integer", "enum": list(range(lo, hi + 1))}
        properties: dict[str, Any] = {"rationale": {"type": "string"}}
        properties.update({d: dict(value) for d in dimensions})
        return {
            "type": "object",
            "properties": properties,
            "required": ["rationale", *dimensions],
            "additionalProperties": False,
        }


@cache
def _load_file(path: Path) -> Rubric:
    # bounded like every other input: a regular file, at most TRIBUNAL_MAX_YAML_BYTES (``rubric: /dev/zero`` hung)
    return Rubric.model_validate(read_yaml_file(path))


def builtin_rubrics() -> list[str]:
    return sorted(p.stem for p in RUBRICS_DIR.glob("*.yaml"))


def load_rubric(name: str, base: Path | None = None) -> Rubric:
    """A built-in rubric by id (``toxicity``, ``refusal``, ``moral_foundations``, ``beavertails``) or a YAML path.

    Raises:
        ValueError: unknown id, missing file or invalid rubric (the message says which and why).
    """
    builtin = RUBRICS_DIR / f"{name}.yaml"
    if builtin.exists() and "/" not in name:
        path = builtin
    else:
        path = Path(name) if base is None or Path(name).is_absolute() else base / name
        if not path.exists():
            raise ValueError(f"unknown rubric {name!r}: not a built-in ({', '.join(builtin_rubrics())}) nor a file")
    try:
        return _load_file(path.resolve())
    except Exception as exc:  # pydantic or YAML: one line that names the file
        raise ValueError(f"rubric {path}: {' '.join(str(exc).split())[:300]}") from None
