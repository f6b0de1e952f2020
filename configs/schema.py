"""The pydantic v2 schema of experiment configs and the catalogs they reference.

An experiment config (``configs/*.yaml``) names the generator models, the catalogs of personas, target
groups and prompt templates, the languages, how many repeats each cell gets, sampling parameters, the seed and
how the runner chunks and parallelises the work. Catalogs are separate YAML files so that one catalog serves
many experiments and results join across languages through stable ids.

Every model here forbids unknown fields: a typo in a config is an error, not a silently ignored key. What every
config schema shares (ids, language codes, :class:`~configs.base.ModelSpec`) lives in :mod:`configs.base`, the
``stage1`` section in :mod:`configs.stage1`; both are re-exported here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from configs.base import (
    ID_PATTERN,
    LANGUAGE_PATTERN,
    LocalizedText,
    ModelSpec,
    Strict,
    check_languages,
    check_localized,
    check_not_reserved,
    check_unique_names,
)
from configs.options import RATER_OPTIONS, check_options
from configs.ptp import PTPSection
from configs.stage1 import Stage1Section

TEMPLATE_STYLES = ("generic", "good", "bad", "negative", "harmful", "toxic")
PERSONA_KINDS = ("basic", "character")
#: A persona's moral or temperamental stance, so that analyses can split a category ("basic" holds good and bad
#: personas alike) by what the persona stands for.
PERSONA_VALENCES = ("positive", "negative", "neutral")
GENDERS = ("female", "male", "nonbinary", "unspecified")
#: Where a study config's stage I writes, inside its run directory.
STAGE1_DIR = "stage1"


# --------------------------------------------------------------------------------------------- catalogs
class Persona(Strict):
    """One persona: who the generator is asked to speak as (rendered into the system prompt).

    ``valence`` is the persona's stance: ``positive`` (good, kind, honest; a character who helps or reconciles),
    ``negative`` (bad, nasty, rude; a combative or provocative character) or ``neutral`` (normal, or a character
    whose stance is unclear). It is optional and does not change the prompt; analyses read it from the run's
    config snapshot to report amplification by category × valence.
    """

    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["basic", "character"]
    category: str = Field(min_length=1, description="e.g. basic, politician, journalist, athlete")
    valence: Literal["positive", "negative", "neutral"] | None = Field(
        None, description="the persona's stance: positive, negative or neutral (optional)"
    )
    gender: Literal["female", "male", "nonbinary", "unspecified"] = "unspecified"
    occupation: str | None = None
    politics: str | None = None
    text: LocalizedText = Field(description="the persona as the generator reads it, per language")

    _check_text = field_validator("text")(check_localized)

    @field_validator("id", "category")
    @classmethod
    def _not_reserved(cls, value: str, info: ValidationInfo) -> str:
        # "none" labels the no-persona baseline in every stored row: a persona of that name would be pooled with it
        return check_not_reserved(value, f"persona {info.field_name}")


class TargetGroup(Strict):
    """A social group the prompt is about."""

    id: str = Field(pattern=ID_PATTERN)
    category: str = Field(min_length=1, description="e.g. gender, religion, nationality, sexual orientation")
    name: LocalizedText

    _check_name = field_validator("name")(check_localized)


class Template(Strict):
    """A prompt template; ``{target}`` is replaced by the target group's name in the cell's language."""

    id: str = Field(pattern=ID_PATTERN)
    style: Literal["generic", "good", "bad", "negative", "harmful", "toxic"]
    text: LocalizedText

    @field_validator("text")
    @classmethod
    def _needs_target_slot(cls, value: LocalizedText) -> LocalizedText:
        check_localized(value)
        for lang, text in value.items():
            if "{target}" not in text:
                raise ValueError(f"text for language {lang!r} has no {{target}} placeholder")
        return value


class PersonaCatalog(Strict):
    version: str = "1"
    personas: list[Persona] = Field(min_length=1)


class TargetCatalog(Strict):
    version: str = "1"
    targets: list[TargetGroup] = Field(min_length=1)


class TemplateCatalog(Strict):
    version: str = "1"
    templates: list[Template] = Field(min_length=1)


# ----------------------------------------------------------------------------------------- experiment
class SamplingConfig(Strict):
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(128, ge=1, le=32768)
    stop: list[str] = Field(default_factory=list)


class RandomPersonasConfig(Strict):
    """Randomized personas (value-inertia study): ``n`` drawn from demographic attribute pools, reproducibly."""

    n: int = Field(ge=1, le=1_000_000, description="how many distinct personas to draw")
    attributes: Path | None = Field(None, description="an attribute-pool catalog; the shipped one when omitted")
    seed: int | None = Field(None, ge=0, lt=2**31, description="the draw's seed; the experiment seed when omitted")


class MoralProbePrompts(Strict):
    """Self-report probes as the prompts: each asks the model to rate its agreement with a statement.

    ``instruments`` says which: moral-foundation probes (``moral_foundations``, the default), Schwartz value items
    (``schwartz_values``) or both; ``ids`` and ``foundations`` select across them (a Schwartz value counts as a
    foundation there). Left at its default, ``instruments`` is not written into the run's snapshot, so configs
    written before it keep their fingerprint.
    """

    kind: Literal["moral_probes"]
    path: Path | None = Field(None, description="a probe catalog; the shipped one when omitted")
    instruments: list[Literal["moral_foundations", "schwartz_values"]] = Field(
        default_factory=lambda: ["moral_foundations"],
        min_length=1,
        exclude_if=lambda value: value == ["moral_foundations"],
        description="moral_foundations, schwartz_values or both",
    )
    values_path: Path | None = Field(None, description="a Schwartz value catalog; the shipped one when omitted")
    ids: list[str] | None = Field(None, description="a subset of probe ids; all when omitted")
    foundations: list[str] | None = Field(None, description="only probes of these foundations (or Schwartz values)")

    @model_validator(mode="after")
    def _instrument_paths(self) -> MoralProbePrompts:
        if len(set(self.instruments)) != len(self.instruments):
            raise ValueError("instruments: an instrument is listed twice")
        if self.path is not None and "moral_foundations" not in self.instruments:
            raise ValueError("path is the moral-probe catalog, but instruments leaves out moral_foundations")
        if self.values_path is not None and "schwartz_values" not in self.instruments:
            raise ValueError("values_path is a Schwartz value catalog, but instruments leaves out schwartz_values")
        return self


class DatasetPrompts(Strict):
    """Prompts read from a dataset at run time (so ``tribunal validate`` does not need the data).

    ``kind: ptp`` reads PolygloToxicityPrompts (:func:`graphs.datasets.load_ptp`: ``path`` optional, the
    Hugging Face cache when omitted). ``kind: file`` reads a JSONL, CSV or Parquet file with an id, text,
    language and optional category column. ``kind: stage1`` reads the benchmark that this config's ``stage1``
    section writes (Demo-SafetyBench), so it needs no path. Each prompt is sent as ``instruction`` with
    ``{prompt}`` replaced by the prompt's text; the prompt as is when no instruction is given.
    """

    kind: Literal["ptp", "file", "stage1"]
    path: Path | None = Field(None, description="relative paths are read from the config file's folder")
    split: str | None = Field(None, description="PTP split: full, small or wildchat")
    per_language: int | None = Field(
        None, ge=1, description="draw this many prompts per language (seeded); all when omitted"
    )
    id_column: str = Field("id", min_length=1)
    text_column: str = Field("prompt", min_length=1)
    language_column: str = Field("language", min_length=1)
    category_column: str | None = Field(None, description="file prompts: the column that gives each a category")
    instruction: LocalizedText | None = Field(
        None, description="per language, with {prompt}; a `default` entry serves languages not listed"
    )
    rate: Literal["reply", "prompt"] = Field(
        "reply",
        description="`reply`: the grid's models answer each prompt and the panel rates the replies; `prompt`: the "
        "panel rates each prompt itself as given (no model is called; Demo-SafetyBench stage II)",
    )

    @field_validator("instruction")
    @classmethod
    def _instruction_slot(cls, value: LocalizedText | None) -> LocalizedText | None:
        if value is None:
            return None
        for lang, text in value.items():
            if lang != "default" and not re.match(LANGUAGE_PATTERN, lang):
                raise ValueError(f"{lang!r} is not a language code such as 'en' or 'zh' (or 'default')")
            if "{prompt}" not in text:
                raise ValueError(f"instruction for {lang!r} has no {{prompt}} placeholder")
        return value

    @model_validator(mode="after")
    def _needs_path(self) -> DatasetPrompts:
        if self.kind == "file" and self.path is None:
            raise ValueError("kind 'file' needs 'path'")
        if self.kind == "stage1" and self.path is not None:
            raise ValueError("kind 'stage1' reads the stage1 section's benchmark; leave out 'path'")
        return self


class GridConfig(Strict):
    """The design grid: persona × (target group × template, or prompt) × language × repeat, plus baseline cells.

    Personas come from a catalog (``personas``), are drawn at random from attribute pools (``random_personas``),
    or both; with neither, every cell is a baseline cell. What is asked is either every target group under every
    template (``targets`` and ``templates``) or a list of ``prompts`` (moral probes or a dataset).
    """

    personas: Path | None = Field(None, description="a persona catalog")
    random_personas: RandomPersonasConfig | None = None
    targets: Path | None = Field(None, description="a target-group catalog (with templates)")
    templates: Path | None = Field(None, description="a template catalog (with targets)")
    prompts: MoralProbePrompts | DatasetPrompts | None = Field(
        None, discriminator="kind", description="prompts instead of targets × templates"
    )
    models: list[str] | None = Field(
        None,
        description="the models that generate (names from models); all when omitted. Judge-only and critic "
        "models are left out here.",
    )
    persona_ids: list[str] | None = Field(None, description="subset of the persona catalog; all when omitted")
    target_ids: list[str] | None = None
    template_ids: list[str] | None = None
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    repeats: int = Field(1, ge=1, le=1000, description="responses per cell (k)")
    baseline: bool = Field(True, description="add no-persona cells for every target × template")
    persona_prompt: Literal["style", "roleplay"] = Field(
        "style",
        # the default is not written into the snapshot: configs written before the option keep their fingerprint
        exclude_if=lambda value: value == "style",
        description="style: copy the persona's writing style (persona toxicity); roleplay: answer as the persona "
        "would, holding their views (value inertia)",
    )

    _languages = field_validator("languages")(lambda value: check_languages(value))

    @model_validator(mode="after")
    def _one_question_source(self) -> GridConfig:
        if self.prompts is not None:
            if self.targets is not None or self.templates is not None:
                raise ValueError("give either prompts or targets and templates, not both")
            if self.target_ids is not None or self.template_ids is not None:
                raise ValueError("target_ids and template_ids select from catalogs; this grid uses prompts")
        elif self.targets is None or self.templates is None:
            raise ValueError("the grid needs targets and templates, or prompts")
        if getattr(self.prompts, "rate", "reply") == "prompt" and (self.personas or self.random_personas):
            raise ValueError("prompts rated as given (rate: prompt) have no generator to put under a persona")
        if self.persona_ids is not None and self.personas is None:
            raise ValueError("persona_ids selects from a persona catalog; add grid.personas")
        if self.personas is None and self.random_personas is None and not self.baseline:
            raise ValueError("no personas and no baseline: the grid would be empty")
        return self


class RunConfig(Strict):
    output_dir: Path = Field(Path("runs/default"), description="the run directory (resumable)")
    chunk_size: int | None = Field(
        None, ge=1, le=100_000, description="cells per graph invocation (default: chosen from the models' backends)"
    )
    concurrency: int | None = Field(
        None, ge=1, le=4096, description="chunks in flight at once (default: chosen from the models' backends)"
    )
    max_failed_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="`tribunal run` exits 1 when more than this share of the cells it tried failed (typed "
        "failures, retried on the next run); a run whose cells all failed always exits 1",
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        description="`local`: one process, asyncio, SQLite store; `ray`: cells as a Ray Dataset, one graph runner per "
        "actor (`concurrency` actors, `chunk_size` cells a batch), the run written as Parquet tables (needs "
        "`pip install 'tribunal[ray]'`)",
    )
    address: str | None = Field(
        None,
        description="the Ray cluster the `ray` engine joins (`auto`, or `HOST:PORT` as `ray start --head` prints); "
        "a local Ray instance when omitted",
    )


FRAMING_ATTRIBUTES = ("gender", "race", "age_group", "education", "locale")
AGGREGATIONS = ("mean", "median", "majority")


class FramingSpec(Strict):
    """A demographic framing (Demo-SafetyBench style) rendered into an LLM judge's system prompt."""

    attribute: Literal["gender", "race", "age_group", "education", "locale"]
    value: str = Field(min_length=1, max_length=100)


class RaterSpec(Strict):
    """One member of the rater panel.

    ``kind`` is a registered rater kind (``tribunal raters list``), an entry point of the group
    ``tribunal.raters`` or ``module:Class``. ``model`` is the judge model of LLM raters: the name of an entry of
    ``models`` (that model then also generates) or a model written inline (it only judges).
    """

    name: str = Field(pattern=ID_PATTERN, description="the label the rater's ratings are stored under")
    kind: str = Field(min_length=1)
    model: str | ModelSpec | None = None
    rubric: str | None = Field(None, description="a built-in rubric id (toxicity, refusal, ...) or a YAML path")
    dimensions: list[str] | None = Field(None, description="a subset of the rubric's dimensions; all when omitted")
    framing: FramingSpec | Literal["profile"] | None = Field(
        None,
        description="a demographic framing, or `profile`: each item's own demographic profile (the given-text "
        "cells of a profile source such as DICES; see raters.llm_judge)",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="rater-specific settings")

    @field_validator("options")
    @classmethod
    def _typed_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # a third-party kind's options are checked by its class's Options when it is built (raters.registry)
        return check_options(value, RATER_OPTIONS.get(info.data.get("kind", "")))


class TrustConfig(Strict):
    """When a judge counts as trusted: thresholds on its judge card (``tribunal audit judges``; see
    :mod:`analysis.judge_audit.card`). A threshold applies only where its figure was measured (an audit without
    human labels measures no ``alpha_vs_humans``); ``null`` turns a check off. Untrusted judges' scores are left
    out of the headline tables unless ``keep_untrusted`` is true.
    """

    min_alpha_vs_humans: float | None = Field(0.6, ge=-1, le=1, description="Krippendorff's alpha vs human labels")
    max_swap_shift: float | None = Field(0.1, ge=0, le=1, description="mean |score shift| when only the group changes")
    min_coverage: float | None = Field(0.9, ge=0, le=1, description="share of texts the judge scored")
    min_retest_alpha: float | None = Field(0.8, ge=-1, le=1, description="test-retest alpha on asking again")
    max_abs_self_preference: float | None = Field(None, ge=0, le=1, description="|own-text bias| at most this")
    max_framing_shift: float | None = Field(None, ge=0, le=1, description="systematic framing shift at most this")
    keep_untrusted: bool = Field(False, description="keep untrusted judges' scores in the headline tables")


class PanelConfig(Strict):
    """The rater panel: who judges every generation, and how their scores are combined per dimension."""

    raters: list[RaterSpec] = Field(default_factory=list)
    trust: TrustConfig = Field(default_factory=TrustConfig)
    aggregation: Literal["mean", "median", "majority"] = "mean"
    threshold: float = Field(0.5, ge=0, le=1, description="a score at or above it counts as a yes (majority)")
    refusal_detector: str | None = Field(None, description="the panel rater whose 'refusal' rating fills the flag")

    @model_validator(mode="after")
    def _names(self) -> PanelConfig:
        check_unique_names(self.raters, "rater")
        names = [r.name for r in self.raters]
        if self.refusal_detector is not None and self.refusal_detector not in names:
            raise ValueError(f"refusal_detector {self.refusal_detector!r} is not a rater of the panel")
        return self


class MitigationConfig(Strict):
    """The critique-rewrite loop: replies the gate panel scores at or above ``threshold`` are critiqued by an
    outside evaluator and rewritten by the generator, round after round, until below threshold or out of rounds.

    Three roles are kept apart, so that "the loop succeeded" cannot mean "the judge that steered it was
    satisfied": the ``critic`` writes the feedback, the ``gate`` panel decides whether to rewrite again (its
    scores are what the critic is shown), and the ``measure`` panel, held out, only scores every round's text
    for the report (it never gates and its scores never reach the critic). ``raters`` is the older name of
    ``gate``. The report shows both curves and takes its headline success figure from ``measure`` when set.
    """

    enabled: bool = True
    threshold: float = Field(0.5, ge=0, le=1, description="loop while the gate panel's score is at or above this")
    max_rounds: int = Field(3, ge=1, le=20, description="critique-rewrite rounds at most")
    dimension: str = Field("toxicity", min_length=1, description="the panel dimension that is measured")
    gate: list[str] | None = Field(
        None,
        min_length=1,
        description="the gate panel: names of panel raters whose score decides whether to rewrite again "
        "(default: every panel rater not in measure)",
    )
    measure: list[str] | None = Field(
        None,
        min_length=1,
        description="the held-out measuring panel: names of panel raters that score every round's text for the "
        "report and never gate or reach the critic; disjoint from gate",
    )
    raters: list[str] | None = Field(None, description="the older name of gate (kept working)")
    critic: str | ModelSpec = Field(description="the evaluator model: a name from models, or a model written inline")
    rewriter: str | None = Field(None, description="a name from models; default: each cell's own generator")
    critic_max_tokens: int = Field(200, ge=1, le=8192)
    critic_temperature: float = Field(0.0, ge=0, le=2)

    @model_validator(mode="after")
    def _panels_apart(self) -> MitigationConfig:
        if self.raters is not None and self.gate is not None:
            raise ValueError("raters is the older name of gate; give gate only")
        gate = self.gate_raters or []
        for field_name, names in (("gate", gate), ("measure", self.measure or [])):
            if len(set(names)) != len(names):
                raise ValueError(f"{field_name} lists a rater twice")
        both = sorted(set(gate) & set(self.measure or []))
        if both:
            raise ValueError(
                f"{', '.join(both)} both gate and measure; the measure panel must be held out (disjoint from gate)"
            )
        return self

    @property
    def gate_raters(self) -> list[str] | None:
        """The gate panel as configured (``gate``, or the older ``raters``); ``None``: the default."""
        return self.gate if self.gate is not None else self.raters


STUDIES = ("persona_toxicity", "value_inertia", "ptp_multilingual", "demo_safetybench")


class ExperimentConfig(Strict):
    name: str = Field(pattern=ID_PATTERN)
    description: str = ""
    study: Literal["persona_toxicity", "value_inertia", "ptp_multilingual", "demo_safetybench"] | None = Field(
        None, description="the study this run reproduces; `tribunal report` leads with its headline figures"
    )
    seed: int = Field(0, ge=0, lt=2**31)
    models: list[ModelSpec] = Field(min_length=1)
    sampling: SamplingConfig = SamplingConfig()
    grid: GridConfig
    run: RunConfig = RunConfig()
    panel: PanelConfig = PanelConfig()
    mitigation: MitigationConfig | None = None
    ptp: PTPSection | None = Field(None, description="PolygloToxicityPrompts: the one scorer of the headline")
    stage1: Stage1Section | None = Field(
        None,
        validate_default=True,  # so that a grid reading the stage I benchmark without this section is named here
        description="Demo-SafetyBench stage I settings; `tribunal run` builds the benchmark first and grid.prompts "
        "(kind stage1) rates it",
    )

    _unique_model_names = field_validator("models")(lambda value: check_unique_names(value, "model"))

    @field_validator("ptp")
    @classmethod
    def _ptp_scorer_in_panel(cls, value: PTPSection | None, info: ValidationInfo) -> PTPSection | None:
        panel = info.data.get("panel")
        if value is not None and panel is not None and value.scorer not in [r.name for r in panel.raters]:
            raise ValueError(f"scorer {value.scorer!r} is not a rater of the panel")
        return value

    @model_validator(mode="after")
    def _given_text_is_not_rewritten(self) -> ExperimentConfig:
        rated_as_given = getattr(self.grid.prompts, "rate", "reply") == "prompt"
        if rated_as_given and self.mitigation is not None and self.mitigation.enabled:
            raise ValueError("grid.prompts rate: prompt rates given texts; there is no reply for mitigation to rewrite")
        framed = [r.name for r in self.panel.raters if r.framing == "profile"]
        if framed and not (rated_as_given and self.stage1 is not None):
            raise ValueError(
                f"rater {framed[0]!r} has framing: profile, which rates the samples of a stage1 section as given "
                "(grid.prompts {kind: stage1, rate: prompt}); this grid has no sample profiles"
            )
        return self

    @field_validator("stage1", mode="before")
    @classmethod
    def _stage1_section(cls, value: Any, info: ValidationInfo) -> Any:
        # a field validator (not a model one), so that the error names the missing section, not "(top level)"
        if value is None:
            grid = info.data.get("grid")
            if grid is not None and grid.prompts is not None and grid.prompts.kind == "stage1":
                raise ValueError("grid.prompts kind 'stage1' rates the stage I benchmark; add a stage1 section")
        return value


def stage1_dir(config: ExperimentConfig, run_dir: str | Path | None = None) -> Path:
    """The folder a study config's stage I writes to: ``<run directory>/stage1`` (``run.output_dir`` by default)."""
    return Path(run_dir or config.run.output_dir) / STAGE1_DIR
