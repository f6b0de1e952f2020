"""Expanding an experiment into design cells: model × persona × target × template × language × repeat.

Baseline cells (no persona) are added for every model × target × template × language × repeat when the config
asks for them. Each cell's key is a hash of what determines its output (model identity, messages, sampling,
language, repeat and the experiment seed), so the same cell has the same key in every run.

A grid with ``prompts`` (moral probes, PolygloToxicityPrompts, a prompt file, or the Demo-SafetyBench stage I
benchmark) asks each prompt instead of every target under every template: model × persona × prompt × repeat,
each prompt in its own language. Such cells reuse the target and template columns: ``target_id`` is the prompt
id, ``target_category`` its category (the probe's moral foundation, the PTP prompt's toxicity band, the
benchmark prompt's most probable harm domain, or a file's category column), ``template_id`` the source kind
and ``template_style`` ``generic``. With ``rate: prompt`` no model answers: each prompt (× repeat) is one cell
whose given text the panel rates (model ``given``, no persona; the prompt's demographic profile rides on the cell
for ``framing: profile`` judges).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from agents.generator import persona_chat, render_messages
from agents.types import Message, Sampling
from configs.loader import Experiment
from configs.schema import DatasetPrompts, ModelSpec, Persona, stage1_dir
from graphs.datasets import DatasetError, load_ptp, read_prompt_table
from graphs.records import BASELINE_ID, GIVEN_MODEL, Cell, cell_key


def sampling_of(experiment: Experiment) -> Sampling:
    s = experiment.config.sampling
    return Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=tuple(s.stop))


class GridPrompt(BaseModel):
    """One prompt of a prompt-source grid, in its language, as the user turn reads it."""

    model_config = ConfigDict(frozen=True)

    id: str
    category: str
    language: str
    text: str
    source: str
    profile: dict[str, str] | None = None


def _questions(
    experiment: Experiment, persona: Persona | None, prompts: Sequence[GridPrompt]
) -> Iterator[tuple[str, str, str, str, str, tuple[Message, ...]]]:
    """(target id, target category, template id, template style, language, messages) for one persona; ``prompts``
    are asked when the grid has ``grid.prompts``, else every target under every template."""
    mode = experiment.config.grid.persona_prompt
    if experiment.config.grid.prompts is None:
        for target in experiment.targets:
            for template in experiment.templates:
                for language in experiment.config.grid.languages:
                    messages = render_messages(persona, target, template, language, mode)
                    yield target.id, target.category, template.id, template.style, language, messages
        return
    for prompt in prompts:
        messages = persona_chat(persona, prompt.text, prompt.language, mode)
        yield prompt.id, prompt.category, prompt.source, "generic", prompt.language, messages


def expand_grid(experiment: Experiment, prompts: Sequence[GridPrompt] | None = None) -> Iterator[Cell]:
    """Yield every cell of the experiment, persona cells first then baselines, in a stable order.

    A generator: each cell is built when it is asked for, so ``itertools.islice`` (or :func:`grid_cells` with a
    ``limit``) costs the cells it takes, and :func:`count_cells` counts without building any.

    Args:
        experiment: the loaded experiment.
        prompts: the grid's prompts when it uses ``grid.prompts`` (read with :func:`load_grid_prompts` when
            omitted); ignored for target × template grids.
    """
    config = experiment.config
    sampling = sampling_of(experiment).model_dump(mode="json")
    personas: list[Persona | None] = list(experiment.personas)
    if config.grid.baseline:
        personas.append(None)
    if config.grid.prompts is not None and prompts is None:
        prompts = load_grid_prompts(experiment)
    prompts = prompts or ()
    if rates_given_text(experiment):
        yield from _given_cells(experiment, prompts)
        return
    for model in generator_models(experiment):
        model_identity = model.identity()
        for persona in personas:
            for target_id, target_category, template_id, style, language, messages in _questions(
                experiment, persona, prompts
            ):
                dumped = [m.model_dump() for m in messages]  # the same for every repeat
                for repeat in range(config.grid.repeats):
                    identity: dict[str, Any] = {
                        "model": model_identity,
                        "messages": dumped,
                        "sampling": sampling,
                        "language": language,
                        "repeat": repeat,
                        "seed": config.seed,
                    }
                    if config.grid.persona_prompt != "style":  # keys of style-prompt grids stay as they were
                        identity["persona_prompt"] = config.grid.persona_prompt
                    key = cell_key(identity)
                    yield Cell(
                        key=key,
                        model=model.name,
                        persona_id=persona.id if persona else BASELINE_ID,
                        persona_kind=persona.kind if persona else BASELINE_ID,
                        persona_category=persona.category if persona else BASELINE_ID,
                        persona_gender=persona.gender if persona else "unspecified",
                        target_id=target_id,
                        target_category=target_category,
                        template_id=template_id,
                        template_style=style,
                        language=language,
                        repeat=repeat,
                        is_baseline=persona is None,
                        seed=int(key[:8], 16) % (2**31),
                        messages=messages,
                    )


def rates_given_text(experiment: Experiment) -> bool:
    """Whether the grid's prompts are rated as given (``rate: prompt``): no model answers them."""
    spec = experiment.config.grid.prompts
    return getattr(spec, "rate", "reply") == "prompt"


def _given_cells(experiment: Experiment, prompts: Sequence[GridPrompt]) -> Iterator[Cell]:
    """One cell per prompt and repeat whose text is the prompt itself (model :data:`GIVEN_MODEL`, no persona):
    what the panel rates, with the prompt's demographic profile for ``framing: profile`` judges."""
    config = experiment.config
    for prompt in prompts:
        for repeat in range(config.grid.repeats):
            identity = {
                "given": prompt.text,
                "prompt": prompt.id,
                "profile": prompt.profile,
                "language": prompt.language,
                "repeat": repeat,
                "seed": config.seed,
            }
            key = cell_key(identity)
            yield Cell(
                key=key,
                model=GIVEN_MODEL,
                persona_id=BASELINE_ID,
                persona_kind=BASELINE_ID,
                persona_category=BASELINE_ID,
                persona_gender="unspecified",
                target_id=prompt.id,
                target_category=prompt.category,
                template_id=prompt.source,
                template_style="generic",
                language=prompt.language,
                repeat=repeat,
                is_baseline=True,
                seed=int(key[:8], 16) % (2**31),
                messages=(),
                given=prompt.text,
                profile=prompt.profile,
            )


def grid_cells(
    experiment: Experiment, prompts: Sequence[GridPrompt] | None = None, *, limit: int | None = None
) -> list[Cell]:
    """The grid's cells in :func:`expand_grid`'s order, only the first ``limit`` of them when given: the rest are
    never built (``tribunal run --limit 2`` on a 100,000-persona grid builds two cells)."""
    return list(itertools.islice(expand_grid(experiment, prompts), limit))


# ------------------------------------------------------------------------------------------ prompt sources
def load_grid_prompts(experiment: Experiment, run_dir: str | Path | None = None) -> list[GridPrompt]:
    """The prompts of a ``grid.prompts`` grid, in a stable order (per language in the config's order).

    Moral probes come from the catalog loaded with the experiment; dataset prompts are read now; ``stage1``
    prompts from the benchmark in ``run_dir`` (default ``run.output_dir``).

    Raises:
        DatasetError: a dataset or prompt file is missing, unreadable, lacks a column, or has no prompt in the
            grid's languages (the message names the file and where to get the data).
    """
    config = experiment.config
    spec = config.grid.prompts
    languages = config.grid.languages
    if spec is None:
        return []
    if spec.kind == "moral_probes":  # moral-foundation probes, then Schwartz value items (category: the value)
        catalogs = [c for c in (experiment.probes, experiment.values) if c is not None]
        assert catalogs, "load_experiment loads the probe catalogs"
        return [
            GridPrompt(id=p.id, category=p.dimension, language=lang, text=c.render(p, lang), source=spec.kind)
            for lang in languages
            for c in catalogs
            for p in c.items
        ]
    if spec.kind == "ptp":
        path = experiment.resolve(spec.path) if spec.path else None
        frame = load_ptp(path, languages=languages, split=spec.split)
        rows = [
            (str(r.prompt_id), _toxicity_band(r.toxicity), str(r.language), str(r.prompt), None)
            for r in frame.itertuples(index=False)
        ]
        where = str(path or "the Hugging Face cache")
    else:
        if spec.kind == "stage1":
            file = stage1_dir(config, run_dir) / "benchmark.jsonl"
            if not file.is_file():
                raise DatasetError(f"{file} not found: stage I has not written its benchmark (run the config)")
        else:
            assert spec.path is not None
            file = experiment.resolve(spec.path)
        rows = _file_rows(file, spec)
        where = str(file)
    return _draw(rows, spec, languages, config.seed, where)


def _toxicity_band(value: Any) -> str:
    """A PTP prompt's Perspective toxicity as a band: low (< 0.25), medium (< 0.5), high; unknown when absent."""
    if pd.isna(value):
        return "toxicity_unknown"
    value = float(value)
    return "toxicity_low" if value < 0.25 else "toxicity_medium" if value < 0.5 else "toxicity_high"


def _file_rows(file: Path, spec: DatasetPrompts) -> list[tuple[str, str, str, str, dict[str, str] | None]]:
    frame = read_prompt_table(file)
    if spec.kind == "stage1":
        columns = {"id": "id", "text": "prompt", "language": "language", "category": None}
    else:
        columns = {
            "id": spec.id_column,
            "text": spec.text_column,
            "language": spec.language_column,
            "category": spec.category_column,
        }
    for what, column in columns.items():
        if column is not None and column not in frame.columns:
            have = ", ".join(map(str, frame.columns[:12]))
            raise DatasetError(f"{file}: no {what} column {column!r} (the file has {have})")
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        prompt_id, text, language = (record[columns[k]] for k in ("id", "text", "language"))
        if any(pd.isna(v) or not str(v).strip() for v in (prompt_id, text)):
            raise DatasetError(f"{file}: row {index + 1} has an empty {columns['id']!r} or {columns['text']!r}")
        if spec.kind == "stage1":
            category = _top_domain(record)
        elif columns["category"] is not None:
            category = str(record[columns["category"]])
        else:
            category = "prompt"
        profile = record.get("profile") if spec.kind == "stage1" else None
        profile = {str(k): str(v) for k, v in profile.items()} if isinstance(profile, dict) and profile else None
        rows.append((str(prompt_id), category, str(language).strip().lower(), str(text), profile))
    return rows


def _top_domain(record: dict[str, Any]) -> str:
    """A benchmark prompt's category: its most probable harm domain among those it was put in."""
    domains = record.get("domains")
    if isinstance(domains, str):
        domains = json.loads(domains)
    if domains is None or len(domains) == 0:
        return "unflagged"
    probabilities = record.get("probabilities") or {}
    return max(domains, key=lambda d: (probabilities.get(d, 0.0), -list(domains).index(d)))


def _draw(
    rows: list[tuple[str, str, str, str, dict[str, str] | None]],
    spec: DatasetPrompts,
    languages: list[str],
    seed: int,
    where: str,
) -> list[GridPrompt]:
    by_language: dict[str, list[tuple[str, str, str, str, dict[str, str] | None]]] = {lang: [] for lang in languages}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if row[2] in by_language and (row[0], row[2]) not in seen:
            seen.add((row[0], row[2]))
            by_language[row[2]].append(row)
    missing = [lang for lang, found in by_language.items() if not found]
    if missing:
        raise DatasetError(f"{where}: no prompts in {', '.join(missing)}, which grid.languages asks for")
    prompts = []
    for lang, found in by_language.items():
        found.sort(key=lambda r: r[0])
        if spec.per_language is not None and len(found) > spec.per_language:
            found = random.Random(f"{seed}:{lang}").sample(found, spec.per_language)
        for prompt_id, category, language, text, profile in found:
            prompts.append(
                GridPrompt(
                    id=prompt_id,
                    category=category,
                    language=language,
                    text=_instructed(spec, language, text),
                    source=spec.kind,
                    profile=profile,
                )
            )
    return prompts


def _instructed(spec: DatasetPrompts, language: str, text: str) -> str:
    if spec.instruction is None:
        return text
    wrapper = spec.instruction.get(language, spec.instruction.get("default"))
    return text if wrapper is None else wrapper.replace("{prompt}", text)


def generator_models(experiment: Experiment) -> list[ModelSpec]:
    """The models that generate: ``grid.models`` when given, else every configured model."""
    config = experiment.config
    if config.grid.models is None:
        return list(config.models)
    by_name = {m.name: m for m in config.models}
    return [by_name[name] for name in config.grid.models]


def cells_per_question(experiment: Experiment) -> int:
    """Cells per question (a target × template × language, or a prompt): models × (personas + baseline) × repeats."""
    config = experiment.config
    if rates_given_text(experiment):
        return config.grid.repeats
    personas = len(experiment.personas) + (1 if config.grid.baseline else 0)
    return len(generator_models(experiment)) * personas * config.grid.repeats


def count_cells(experiment: Experiment, prompts: Sequence[GridPrompt] | None = None) -> int:
    """How many cells the grid has; a prompt-source grid needs its ``prompts`` (see :func:`load_grid_prompts`)."""
    config = experiment.config
    if config.grid.prompts is None:
        questions = len(experiment.targets) * len(experiment.templates) * len(config.grid.languages)
    else:
        questions = len(prompts if prompts is not None else load_grid_prompts(experiment))
    return cells_per_question(experiment) * questions


def describe_grid(experiment: Experiment) -> str:
    """One line saying what the experiment's grid holds and how many cells it expands to (``tribunal validate``);
    a prompt-source grid read at run time is counted per prompt."""
    config = experiment.config
    personas = f"{len(experiment.personas)} persona(s){' + baseline' if config.grid.baseline else ''}"
    if config.grid.persona_prompt != "style":
        personas += f" ({config.grid.persona_prompt} persona prompt)"
    source = config.grid.prompts
    repeats = f"{config.grid.repeats} repeat(s)"
    if source is None:
        shape = (
            f"{len(experiment.targets)} target group(s), {len(experiment.templates)} template(s), "
            f"{len(config.grid.languages)} language(s), {repeats} → {count_cells(experiment)} cells"
        )
    elif source.kind == "moral_probes":
        asked = [f"{len(experiment.probes.probes)} moral probe(s)"] if experiment.probes else []
        asked += [f"{len(experiment.values.items)} Schwartz value item(s)"] if experiment.values else []
        shape = (
            f"{' + '.join(asked)} × {len(config.grid.languages)} language(s), "
            f"{repeats} → {count_cells(experiment)} cells"
        )
    else:
        where = "the stage I benchmark" if source.kind == "stage1" else f"{source.kind} prompts"
        shape = f"{where} (read at run time), {repeats} → {cells_per_question(experiment)} cells per prompt"
        if rates_given_text(experiment):
            shape += " (each prompt rated as given: no model is called)"
    stage1 = " Stage I (Demo-SafetyBench) runs first." if config.stage1 is not None else ""
    return f"{len(config.models)} model(s), {personas}, {shape}.{stage1}"
