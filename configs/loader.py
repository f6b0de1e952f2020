"""Loading and validating experiment configs and their catalogs.

Every problem becomes a :class:`ConfigError` whose message is one line: ``FILE: FIELD.PATH: PROBLEM``. The CLI
prints it and exits with status 2 before anything is written. What is valid but probably not meant (a panel
whose raters score the study's dimension on different kinds of scale, :func:`scale_mix_warnings`; a generator that
is also a measuring judge, :func:`configs.judge_overlap.judge_overlap_warnings`; a vLLM model with little GPU memory
to spare, :func:`configs.gpu_memory.gpu_memory_warnings`) is logged as a warning on the ``configs.loader`` logger,
which ``tribunal validate`` and ``tribunal run`` print.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from configs.base import ENV_REF, ConfigError, ModelSpec
from configs.catalog_schema import (
    DEFAULT_MORAL_PROBES,
    DEFAULT_SCHWARTZ_VALUES,
    SCHWARTZ_VALUES,
    MoralProbeCatalog,
    PersonaAttributes,
    ValueCatalog,
)
from configs.gpu_memory import gpu_memory_warnings
from configs.inputs import read_yaml_file
from configs.judge_overlap import judge_overlap_warnings
from configs.schema import (
    ExperimentConfig,
    Persona,
    PersonaCatalog,
    TargetCatalog,
    TargetGroup,
    Template,
    TemplateCatalog,
)
from configs.stage1 import Stage1Config, Stage1Section

ModelT = TypeVar("ModelT", bound=BaseModel)
logger = logging.getLogger(__name__)


def _field_path(loc: tuple[Any, ...], data: Any = None) -> str:
    """``loc`` as ``a.b[0].c``; ``data`` (the validated input) lets it leave out the tags of discriminated unions,
    which pydantic puts in ``loc`` (``grid.prompts.file.path``) but which are no field the user wrote."""
    out = ""
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("kind") == part:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out or "(top level)"


def read_yaml(
    path: Path, *, referenced_as: tuple[str | Path, str] | None = None, kind: Literal["yaml", "data"] = "yaml"
) -> Any:
    """Read one YAML file within bounds (:mod:`configs.inputs`: a regular file, at most
    ``TRIBUNAL_MAX_YAML_BYTES``, aliases bounded), every I/O or syntax problem a one-line :class:`ConfigError`.

    Args:
        path: the file.
        referenced_as: the config file and field that named it; I/O problems then name those.
        kind: ``data`` reads it under ``TRIBUNAL_MAX_INPUT_BYTES`` instead (a run directory's snapshot).
    """
    return read_yaml_file(path, referenced_as=referenced_as, kind=kind)


def validate_as(model: type[ModelT], data: Any, path: Path) -> ModelT:
    """Validate ``data`` against ``model``; the first error becomes a :class:`ConfigError`."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise ConfigError(path, "(top level)", f"expected a mapping of fields, got {kind}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        raise ConfigError(path, _field_path(tuple(first["loc"]), data), message) from None


@dataclass(frozen=True)
class Experiment:
    """A validated config with its catalogs loaded and filtered to the selected entries."""

    config: ExperimentConfig
    path: Path
    personas: tuple[Persona, ...]
    targets: tuple[TargetGroup, ...]
    templates: tuple[Template, ...]
    catalog_paths: dict[str, Path] = field(default_factory=dict)
    #: the moral-probe catalog, filtered to the selected probes, when ``grid.prompts`` is ``moral_probes``
    probes: MoralProbeCatalog | None = None
    #: the Schwartz value catalog, filtered likewise, when ``grid.prompts.instruments`` lists ``schwartz_values``
    values: ValueCatalog | None = None

    def snapshot(self) -> dict[str, Any]:
        """The resolved experiment as plain data, for the run directory (API keys stay ``${ENV}`` references)."""
        return {
            "config": self.config.model_dump(mode="json"),
            "source": str(self.path),
            "personas": [p.model_dump(mode="json") for p in self.personas],
            "targets": [t.model_dump(mode="json") for t in self.targets],
            "templates": [t.model_dump(mode="json") for t in self.templates],
            "probes": _probes_snapshot(self.probes, self.values),
        }

    def resolve(self, relative: Path) -> Path:
        """A path written in the config, resolved against the config file's folder."""
        return (self.path.parent / relative).resolve()


def _select(
    entries: list[Any], ids: list[str] | None, path: Path, config_path: Path, what: str, field_name: str
) -> tuple[Any, ...]:
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.id in seen:
            raise ConfigError(path, f"{what}[{index}].id", f"duplicate id {entry.id!r}")
        seen.add(entry.id)
    if ids is None:
        return tuple(entries)
    by_id = {e.id: e for e in entries}
    for index, wanted in enumerate(ids):
        if wanted not in by_id:
            raise ConfigError(
                config_path,
                f"grid.{field_name}[{index}]",
                f"{wanted!r} is not in the {what} catalog ({len(by_id)} ids)",
            )
    if len(set(ids)) != len(ids):
        raise ConfigError(config_path, f"grid.{field_name}", "an id is listed twice")
    return tuple(by_id[i] for i in ids)


def _check_languages(entries: tuple[Any, ...], attr: str, languages: list[str], path: Path, what: str) -> None:
    for index, entry in enumerate(entries):
        texts = getattr(entry, attr)
        for lang in languages:
            if lang not in texts:
                raise ConfigError(
                    path,
                    f"{what}[{index}].{attr}",
                    f"{entry.id!r} has no {lang!r} text, but the config asks for it",
                )


def load_experiment(path: str | Path) -> Experiment:
    """Load a config file and its catalogs, checking everything a run needs.

    Catalog paths are resolved relative to the config file's folder.

    Raises:
        ConfigError: on the first problem found, naming the file and field.
    """
    path = Path(path)
    config = validate_as(ExperimentConfig, read_yaml(path), path)
    check_references(config, path)
    base = path.parent
    grid = config.grid
    paths: dict[str, Path] = {}

    def catalog(field_name: str, model: type[ModelT]) -> ModelT:
        catalog_path = (base / getattr(grid, field_name)).resolve()
        if not catalog_path.exists():
            raise ConfigError(path, f"grid.{field_name}", f"catalog file {catalog_path} does not exist")
        paths[field_name] = catalog_path
        return validate_as(model, read_yaml(catalog_path, referenced_as=(path, f"grid.{field_name}")), catalog_path)

    personas: tuple[Persona, ...] = ()
    if grid.personas is not None:
        entries = catalog("personas", PersonaCatalog).personas
        personas = _select(entries, grid.persona_ids, paths["personas"], path, "personas", "persona_ids")
        _check_languages(personas, "text", grid.languages, paths["personas"], "personas")
    if grid.random_personas is not None:
        personas += _random_personas(config, path)
        _check_ids_distinct(personas, path)

    targets: tuple[TargetGroup, ...] = ()
    templates: tuple[Template, ...] = ()
    probes = values = None
    if grid.prompts is None:
        target_entries = catalog("targets", TargetCatalog).targets
        template_entries = catalog("templates", TemplateCatalog).templates
        targets = _select(target_entries, grid.target_ids, paths["targets"], path, "targets", "target_ids")
        templates = _select(template_entries, grid.template_ids, paths["templates"], path, "templates", "template_ids")
        _check_languages(targets, "name", grid.languages, paths["targets"], "targets")
        _check_languages(templates, "text", grid.languages, paths["templates"], "templates")
    elif grid.prompts.kind == "moral_probes":
        probes, values = _probe_catalogs(config, path, paths)

    for message in [*scale_mix_warnings(config, path), *judge_overlap_warnings(config, path)]:
        logger.warning(message)
    for message in gpu_memory_warnings(config, path):  # raises ConfigError where a model cannot fit at all
        logger.warning(message)
    return Experiment(
        config=config,
        path=path,
        personas=personas,
        targets=targets,
        templates=templates,
        catalog_paths=paths,
        probes=probes,
        values=values,
    )


def _random_personas(config: ExperimentConfig, path: Path) -> tuple[Persona, ...]:
    from configs.personas_random import DEFAULT_PERSONA_ATTRIBUTES, sample_personas

    spec = config.grid.random_personas
    assert spec is not None
    source = (path.parent / spec.attributes).resolve() if spec.attributes else DEFAULT_PERSONA_ATTRIBUTES
    if not source.exists():
        raise ConfigError(path, "grid.random_personas.attributes", f"catalog file {source} does not exist")
    attributes = validate_as(
        PersonaAttributes, read_yaml(source, referenced_as=(path, "grid.random_personas.attributes")), source
    )
    seed = config.seed if spec.seed is None else spec.seed
    try:
        drawn = sample_personas(attributes, spec.n, seed, config.grid.languages)
    except ValueError as exc:
        raise ConfigError(path, "grid.random_personas", str(exc)) from None
    return tuple(drawn)


def _check_ids_distinct(personas: tuple[Persona, ...], path: Path) -> None:
    seen: set[str] = set()
    for persona in personas:
        if persona.id in seen:
            raise ConfigError(path, "grid.random_personas", f"persona id {persona.id!r} is also in the catalog")
        seen.add(persona.id)


def _probes_snapshot(probes: MoralProbeCatalog | None, values: ValueCatalog | None) -> Any:
    """The probe catalogs as the snapshot's ``probes``: the moral catalog alone as before (so that fingerprints of
    earlier runs hold), both instruments by name when Schwartz values are asked."""
    moral = probes.model_dump(mode="json") if probes else None
    if values is None:
        return moral
    return {"moral_foundations": moral, "schwartz_values": values.model_dump(mode="json")}


def _probe_catalogs(
    config: ExperimentConfig, path: Path, paths: dict[str, Path]
) -> tuple[MoralProbeCatalog | None, ValueCatalog | None]:
    """The instruments' catalogs, each filtered to the selected items (``ids`` and ``foundations`` select across
    both; a Schwartz value counts as a foundation)."""
    spec = config.grid.prompts
    assert spec is not None and spec.kind == "moral_probes"
    wanted = {
        "moral_foundations": ("path", spec.path, DEFAULT_MORAL_PROBES, MoralProbeCatalog, "probes"),
        "schwartz_values": ("values_path", spec.values_path, DEFAULT_SCHWARTZ_VALUES, ValueCatalog, "values"),
    }
    catalogs: dict[str, Any] = {}
    for instrument in spec.instruments:
        field_name, written, default, model, key = wanted[instrument]
        source = (path.parent / written).resolve() if written else default
        if not source.exists():
            raise ConfigError(path, f"grid.prompts.{field_name}", f"catalog file {source} does not exist")
        paths[key] = source
        catalog = validate_as(model, read_yaml(source, referenced_as=(path, f"grid.prompts.{field_name}")), source)
        missing = [lang for lang in config.grid.languages if lang not in catalog.instruction]
        if missing:
            raise ConfigError(source, "instruction", f"no {', '.join(missing)} text, but the config asks for it")
        catalogs[instrument] = (source, catalog)
    every = [item for _, catalog in catalogs.values() for item in catalog.items]
    where = next(iter(catalogs.values()))[0] if len(catalogs) == 1 else path  # the file a repeated id is in
    chosen = list(_select(every, spec.ids, where, path, "probes", "prompts.ids"))
    if spec.foundations is not None:
        known = sorted({item.dimension for item in every})
        for index, name in enumerate(spec.foundations):
            if name not in known:
                raise ConfigError(
                    path, f"grid.prompts.foundations[{index}]", f"{name!r} is not a foundation ({', '.join(known)})"
                )
        chosen = [item for item in chosen if item.dimension in spec.foundations]
    if not chosen:
        raise ConfigError(path, "grid.prompts", "no probe is left after the ids and foundations filters")
    kept = {id(item) for item in chosen}
    moral, values = catalogs.get("moral_foundations"), catalogs.get("schwartz_values")
    probes = moral[1].model_copy(update={"probes": [p for p in moral[1].probes if id(p) in kept]}) if moral else None
    items = values[1].model_copy(update={"items": [i for i in values[1].items if id(i) in kept]}) if values else None
    return (probes if probes is None or probes.probes else None), (items if items is None or items.items else None)


def check_references(config: ExperimentConfig, path: Path) -> None:
    """Names that point elsewhere in the config (judge models, critic, rewriter, measuring raters) must exist."""
    models = {m.name for m in config.models}
    known = ", ".join(sorted(models))
    for index, name in enumerate(config.grid.models or []):
        if name not in models:
            raise ConfigError(path, f"grid.models[{index}]", f"{name!r} is not in models ({known})")
    for index, rater in enumerate(config.panel.raters):
        if isinstance(rater.model, str) and rater.model not in models:
            raise ConfigError(
                path,
                f"panel.raters[{index}].model",
                f"{rater.model!r} is not in models ({known}); name a configured model or write the judge inline",
            )
    if config.stage1 is not None:
        check_stage1_references(config.models, config.stage1, path, "stage1.")
    mitigation = config.mitigation
    if mitigation is None:
        return
    if isinstance(mitigation.critic, str) and mitigation.critic not in models:
        raise ConfigError(path, "mitigation.critic", f"{mitigation.critic!r} is not in models ({known})")
    if mitigation.rewriter is not None and mitigation.rewriter not in models:
        raise ConfigError(path, "mitigation.rewriter", f"{mitigation.rewriter!r} is not in models ({known})")
    raters = {r.name for r in config.panel.raters}
    if mitigation.enabled and not raters:
        raise ConfigError(path, "mitigation", "the loop needs a panel to measure with; add panel.raters")
    for field_name in ("raters", "gate", "measure"):
        for index, name in enumerate(getattr(mitigation, field_name) or []):
            if name not in raters:
                known_raters = ", ".join(sorted(raters))
                raise ConfigError(
                    path, f"mitigation.{field_name}[{index}]", f"{name!r} is not a panel rater ({known_raters})"
                )
    held_out = set(mitigation.measure or [])
    if mitigation.enabled and held_out and mitigation.gate_raters is None and raters <= held_out:
        raise ConfigError(path, "mitigation.measure", "every panel rater is held out: name a gate panel too")


def check_stage1_references(
    models: Sequence[ModelSpec], stage1: Stage1Config | Stage1Section, path: Path, prefix: str = ""
) -> None:
    """Demo-SafetyBench stage I's classifier and expander name configured models (or are written inline).

    ``stage1`` is a stage I config or a study config's ``stage1`` section; ``prefix`` goes before the field names.
    """
    names = {m.name for m in models}
    known = ", ".join(sorted(names)) or "none configured"
    references = [("classifier.model", stage1.classifier.model)]
    if stage1.expansion is not None:
        references.append(("expansion.model", stage1.expansion.model))
    for field_path, model in references:
        if isinstance(model, str) and model not in names:
            raise ConfigError(
                path, prefix + field_path, f"{model!r} is not in models ({known}); name one or write it inline"
            )


# ------------------------------------------------------------------------------------------------ scale mix
#: The kind of scale each built-in rater kind scores on (the ``scale`` its ratings record, read by
#: ``analysis.toxicity.scale_kind``): ``probability`` (probabilities and 0/1 labels), ``rating`` (an integer rating
#: scale mapped to 0–1) or ``other``. LLM judges score on their rubric's kind (:data:`RUBRIC_SCALE_KINDS`).
RATER_SCALE_KINDS = {
    "hf-classifier": "probability",
    "profanity-check": "probability",
    "refusal-patterns": "probability",
    "prototype": "other",
    "moral-probe": "rating",
    "value-probe": "rating",
}
#: A rubric's ``kind`` → the kind of scale an LLM judge on it scores on.
RUBRIC_SCALE_KINDS = {"scale": "rating", "binary": "probability", "multilabel": "probability"}
#: What the built-in rater kinds rate when the spec names no dimensions (as shipped; LLM judges: their rubric's).
_DEFAULT_DIMENSIONS = {
    "profanity-check": ("profanity", "toxicity", "insult"),
    "refusal-patterns": ("refusal",),
    "moral-probe": ("care", "fairness", "loyalty", "authority", "sanctity"),
    "value-probe": SCHWARTZ_VALUES,
    "prototype": ("toxicity",),
}
#: The dimension(s) each study measures (a run without a study is analysed on its toxicity dimension).
STUDY_DIMENSIONS = {
    None: ("toxicity",),
    "persona_toxicity": ("toxicity",),
    "ptp_multilingual": ("toxicity",),
    "value_inertia": (*_DEFAULT_DIMENSIONS["moral-probe"], *SCHWARTZ_VALUES),
    "demo_safetybench": ("harmfulness",),
}
_RUBRICS_DIR = Path(__file__).resolve().parents[1] / "raters" / "rubrics"


def scale_mix_warnings(config: ExperimentConfig, path: Path) -> list[str]:
    """One message per dimension the study measures whose panel raters score on different kinds of scale.

    Averaging a 0–1 probability with a 1–5 rating mapped to ``(v − 1)/4`` puts "moderately" (3 of 5) at 0.5, a
    toxic verdict; the analysis then leaves out toxicity probability and expected maximum toxicity. The measured
    dimensions are :data:`STUDY_DIMENSIONS` of the config's study plus the mitigation loop's. A rater's kind of
    scale comes from :data:`RATER_SCALE_KINDS`, or for an LLM judge from its rubric file (configs reads the rubric
    as data and imports nothing from ``raters``); third-party kinds and unreadable rubrics are skipped.
    """
    measured = list(STUDY_DIMENSIONS.get(config.study, ("toxicity",)))
    if config.mitigation is not None and config.mitigation.enabled and config.mitigation.dimension not in measured:
        measured.append(config.mitigation.dimension)
    raters = [
        (spec.name, *_rater_scale(spec.kind, spec.rubric, spec.dimensions, spec.options, path.parent))
        for spec in config.panel.raters
    ]
    messages = []
    for dimension in measured:
        by_kind: dict[str, list[str]] = {}
        for name, kind, dims in raters:
            if kind is not None and dims is not None and dimension in dims:
                by_kind.setdefault(kind, []).append(name)
        if len(by_kind) < 2:
            continue
        parts = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(by_kind.items()))
        example = " (a 3 of 1–5 counts as 0.5)" if "rating" in by_kind else ""
        consequence = ""
        if "tox" in dimension:
            consequence = ", and the analysis leaves out toxicity probability and expected maximum toxicity"
        messages.append(
            f"{path}: panel.raters: the {dimension!r} scores mix kinds of scale ({parts}); their mean puts different "
            f"scales on one 0–1 axis{example}{consequence}. Score {dimension!r} on one kind of scale, or give the "
            "other raters other dimensions"
        )
    return messages


def _rater_scale(
    kind: str, rubric: str | None, dimensions: list[str] | None, options: dict[str, Any], base: Path
) -> tuple[str | None, tuple[str, ...] | None]:
    """A rater's kind of scale and the dimensions it rates; ``None`` for what cannot be known here."""
    dims: tuple[str, ...] | None = tuple(dimensions) if dimensions else None
    if kind == "llm":
        data = _rubric_data(rubric or "toxicity", base)
        if data is None:
            return None, dims
        scale = RUBRIC_SCALE_KINDS.get(str(data.get("kind")))
        if dims is None:
            ids = [d.get("id") for d in data.get("dimensions") or [] if isinstance(d, dict)]
            dims = tuple(str(i) for i in [*ids, data.get("any_label")] if i)
        return scale, dims
    if kind == "hf-classifier" and dims is None and isinstance(options.get("labels"), dict):
        dims = tuple(str(v) for v in options["labels"].values())
    return RATER_SCALE_KINDS.get(kind), dims or _DEFAULT_DIMENSIONS.get(kind)


def _rubric_data(name: str, base: Path) -> dict[str, Any] | None:
    """A rubric file's YAML (built-in id or path, relative to the config's folder), ``None`` when unreadable."""
    builtin = _RUBRICS_DIR / f"{name}.yaml"
    candidates = [builtin] if "/" not in name and builtin.is_file() else [base / name, Path(name)]
    for candidate in candidates:
        try:  # bounded: a rubric path of /dev/zero or a FIFO must not hang validation
            data = read_yaml_file(candidate)
        except ConfigError:
            continue
        if isinstance(data, dict):
            return data
    return None


def resolve_env(value: str | None, *, path: str | Path, field_path: str) -> str | None:
    """Resolve a ``${ENV_VAR}`` reference at run time; the value is never stored or printed."""
    if value is None:
        return None
    match = ENV_REF.match(value)
    if not match:
        return value
    name = match.group(1)
    resolved = os.environ.get(name)
    if not resolved:
        raise ConfigError(path, field_path, f"environment variable {name} is not set")
    return resolved
