"""The Demo-SafetyBench stage I config: where prompts come from, the harm-domain classifier, expansion, dedup.

A stage I config is either a file of its own (:class:`Stage1Config`, ``tribunal bench build``) or the ``stage1``
section of a study config (:class:`Stage1Section` in :class:`configs.schema.ExperimentConfig`), whose stage II
then rates the benchmark stage I writes. The graph that runs it is :mod:`graphs.stage1`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from configs.base import ID_PATTERN, LANGUAGE_PATTERN, ModelSpec, Strict, check_languages, check_unique_names
from configs.options import LLMJudgeOptions, check_options

#: τ: prompts at this Hamming distance of a kept one, or closer, are near-duplicates (64-bit SimHash).
DEFAULT_MAX_DISTANCE = 10


class PromptSource(Strict):
    """Where the prompts come from.

    ``kind: beavertails`` reads the dataset with :func:`graphs.datasets.load_beavertails` (``path`` optional: the
    Hugging Face cache when omitted). ``kind: file`` reads a JSONL, JSON, CSV, TSV or Parquet file of prompts.
    ``kind: dices`` reads DICES-350 and/or DICES-990 (:func:`graphs.datasets.load_dices`; ``split`` ``350`` or
    ``990`` picks one set of a folder): one sample per (conversation, rater demographic profile), the profile
    (gender, race, age group, education, locale as DICES records them) and the humans' ratings kept on the row
    (:mod:`graphs.stage1.dices`); ``text_column``, ``id_column`` and ``metadata_columns`` do not apply.
    """

    kind: Literal["beavertails", "file", "dices"]
    path: Path | None = Field(None, description="relative paths are read from the config file's folder")
    split: str | None = Field(None, description="BeaverTails split (30k_test, 330k_train, ...); DICES: 350 or 990")
    text_column: str = Field("prompt", min_length=1)
    id_column: str | None = Field(None, description="stable prompt ids; a hash of the text when omitted")
    language_column: str | None = Field(None, description="per-prompt language codes; else `language`")
    language: str = Field("en", pattern=LANGUAGE_PATTERN)
    metadata_columns: list[str] | None = Field(
        None,
        description="columns kept with each prompt (demographic metadata); default: every other column of a "
        "file, none of BeaverTails",
    )
    limit: int | None = Field(None, ge=1, description="only the first N distinct prompts (DICES: conversations)")

    @model_validator(mode="after")
    def _file_needs_path(self) -> PromptSource:
        if self.kind == "file" and self.path is None:
            raise ValueError("kind 'file' needs 'path'")
        return self


class ClassifierConfig(Strict):
    """The LLM judge that sorts prompts into harm domains (``llm`` rater, ``beavertails`` rubric, JSON mode)."""

    model: str | ModelSpec = Field(description="a name from models, or a model written inline")
    threshold: float | None = Field(None, gt=0, le=1, description="δ; the rubric's (0.5) when omitted")
    options: dict[str, Any] = Field(
        default_factory=dict, description="llm rater options: max_tokens, temperature, seed, context"
    )

    @field_validator("options")
    @classmethod
    def _no_threshold_option(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "threshold" in value:
            raise ValueError("set δ as classifier.threshold, not in options")
        return check_options(value, LLMJudgeOptions)


class ExpansionConfig(Strict):
    """Filling low-resource domains with generated prompts."""

    enabled: bool = True
    model: str | ModelSpec = Field(description="the expander: a name from models, or a model written inline")
    min_count: int = Field(20, ge=0, description="domains with fewer prompts than this are low-resource")
    target_count: int | None = Field(None, ge=0, description="expand until this many; default min_count")
    per_request: int = Field(10, ge=1, le=200, description="prompts asked for per request (N)")
    max_rounds: int = Field(3, ge=0, le=50, description="expansion rounds at most")
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    examples: int = Field(3, ge=0, le=20, description="the domain's original prompts shown as examples")
    temperature: float = Field(0.9, ge=0, le=2)
    max_tokens: int = Field(512, ge=16, le=32768)

    _languages = field_validator("languages")(lambda value: check_languages(value))

    @model_validator(mode="after")
    def _target(self) -> ExpansionConfig:
        if self.target_count is not None and self.target_count < self.min_count:
            raise ValueError(f"target_count ({self.target_count}) is below min_count ({self.min_count})")
        return self

    @property
    def target(self) -> int:
        return self.min_count if self.target_count is None else self.target_count


class DedupConfig(Strict):
    """Near-duplicate removal: within one demographic profile only (samples of another profile never merge)."""

    max_hamming: int = Field(DEFAULT_MAX_DISTANCE, ge=0, le=64, description="τ: drop prompts this close or closer")


class SweepConfig(Strict):
    """The balanced-thresholds sweep: which samples the benchmark would hold at each (δ, τ) pair.

    Stage I writes ``sweep.csv`` (every pair's samples and their domains at δ) and ``sweep_counts.csv`` (samples
    per domain and pair) from the same classifications and fingerprints, without new model calls; the report's
    ``headline_threshold_sweep`` adds ICC and DS (with its null) per pair from the ratings. Expansion is not
    redone per pair: generated prompts enter a pair when their target domain holds at its δ.
    """

    thresholds: list[float] = Field(
        default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7], min_length=1, description="δ values"
    )
    max_hamming: list[int] = Field(default_factory=lambda: [3, 6, 10, 13, 16], min_length=1, description="τ values")

    @field_validator("thresholds")
    @classmethod
    def _deltas(cls, value: list[float]) -> list[float]:
        if any(not 0 < v <= 1 for v in value):
            raise ValueError("each δ must be in (0, 1]")
        return sorted(set(value))

    @field_validator("max_hamming")
    @classmethod
    def _taus(cls, value: list[int]) -> list[int]:
        if any(not 0 <= v <= 64 for v in value):
            raise ValueError("each τ must be between 0 and 64")
        return sorted(set(value))


class Stage1RunConfig(Strict):
    output_dir: Path = Field(Path("runs/bench"), description="where the benchmark is written (--out overrides)")
    chunk_size: int = Field(32, ge=1, le=100_000, description="prompts per classifier batch")
    concurrency: int = Field(4, ge=1, le=4096, description="classifier batches in flight")
    cache: bool = Field(True, description="keep a response cache in the output folder")
    keep_unflagged: bool = Field(False, description="keep prompts classified into no domain (domains: [])")


class Stage1Section(Strict):
    """The ``stage1`` section of a study config: stage I settings that share the study's models and seed."""

    prompts: PromptSource
    extra_prompts: list[PromptSource] = Field(
        default_factory=list,
        description="further sources (BeaverTails, a file), read after `prompts`; with a profile source (DICES) "
        "each of their prompts is a sample under every demographic profile of `prompts`",
    )
    classifier: ClassifierConfig
    expansion: ExpansionConfig | None = None
    dedup: DedupConfig = DedupConfig()
    sweep: SweepConfig | None = None
    chunk_size: int = Field(32, ge=1, le=100_000, description="prompts per classifier batch")
    concurrency: int = Field(4, ge=1, le=4096, description="classifier batches in flight")
    keep_unflagged: bool = Field(False, description="keep prompts classified into no domain (domains: [])")


class Stage1Config(Strict):
    """A Demo-SafetyBench stage I config of its own (``tribunal bench build``)."""

    name: str = Field(pattern=ID_PATTERN)
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**31)
    models: list[ModelSpec] = Field(default_factory=list)
    prompts: PromptSource
    extra_prompts: list[PromptSource] = Field(
        default_factory=list,
        description="further sources (BeaverTails, a file), read after `prompts`; with a profile source (DICES) "
        "each of their prompts is a sample under every demographic profile of `prompts`",
    )
    classifier: ClassifierConfig
    expansion: ExpansionConfig | None = None
    dedup: DedupConfig = DedupConfig()
    sweep: SweepConfig | None = None
    run: Stage1RunConfig = Stage1RunConfig()

    _unique_model_names = field_validator("models")(lambda value: check_unique_names(value, "model"))


__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "ClassifierConfig",
    "DedupConfig",
    "ExpansionConfig",
    "PromptSource",
    "Stage1Config",
    "Stage1RunConfig",
    "Stage1Section",
    "SweepConfig",
]
