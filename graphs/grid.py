"""Expanding an experiment into design cells: model × persona × target × template × language × repeat.

Baseline cells (no persona) are added for every model × target × template × language × repeat when the config
asks for them. Each cell's key is a hash of what determines its output (model identity, messages, sampling,
language, repeat and the experiment seed), so the same cell has the same key in every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.generator import render_messages
from agents.types import GenerationRequest, Message, Sampling, content_key
from configs.loader import Experiment
from configs.schema import ModelSpec, Persona

BASELINE_ID = "none"


class Cell(BaseModel):
    """One design cell and the chat it sends."""

    model_config = ConfigDict(frozen=True)

    key: str
    model: str
    persona_id: str
    persona_kind: str
    persona_category: str
    persona_gender: str
    target_id: str
    target_category: str
    template_id: str
    template_style: str
    language: str
    repeat: int
    is_baseline: bool
    seed: int
    messages: tuple[Message, ...]

    def request(self, sampling: Sampling) -> GenerationRequest:
        return GenerationRequest(messages=self.messages, sampling=sampling.model_copy(update={"seed": self.seed}))


def sampling_of(experiment: Experiment) -> Sampling:
    s = experiment.config.sampling
    return Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, stop=tuple(s.stop))


def expand_grid(experiment: Experiment) -> Iterator[Cell]:
    """Yield every cell of the experiment, persona cells first then baselines, in a stable order."""
    config = experiment.config
    sampling = sampling_of(experiment).model_dump(mode="json")
    personas: list[Persona | None] = list(experiment.personas)
    if config.grid.baseline:
        personas.append(None)
    for model in generator_models(experiment):
        for persona in personas:
            for target in experiment.targets:
                for template in experiment.templates:
                    for language in config.grid.languages:
                        messages = render_messages(persona, target, template, language)
                        for repeat in range(config.grid.repeats):
                            identity: dict[str, Any] = {
                                "model": model.identity(),
                                "messages": [m.model_dump() for m in messages],
                                "sampling": sampling,
                                "language": language,
                                "repeat": repeat,
                                "seed": config.seed,
                            }
                            key = content_key(identity)
                            yield Cell(
                                key=key,
                                model=model.name,
                                persona_id=persona.id if persona else BASELINE_ID,
                                persona_kind=persona.kind if persona else BASELINE_ID,
                                persona_category=persona.category if persona else BASELINE_ID,
                                persona_gender=persona.gender if persona else "unspecified",
                                target_id=target.id,
                                target_category=target.category,
                                template_id=template.id,
                                template_style=template.style,
                                language=language,
                                repeat=repeat,
                                is_baseline=persona is None,
                                seed=int(key[:8], 16) % (2**31),
                                messages=messages,
                            )


def generator_models(experiment: Experiment) -> list[ModelSpec]:
    """The models that generate: ``grid.models`` when given, else every configured model."""
    config = experiment.config
    if config.grid.models is None:
        return list(config.models)
    by_name = {m.name: m for m in config.models}
    return [by_name[name] for name in config.grid.models]


def count_cells(experiment: Experiment) -> int:
    config = experiment.config
    personas = len(experiment.personas) + (1 if config.grid.baseline else 0)
    return (
        len(generator_models(experiment))
        * personas
        * len(experiment.targets)
        * len(experiment.templates)
        * len(config.grid.languages)
        * config.grid.repeats
    )
