"""Validation warnings for judges that are not independent of what they judge.

A judge model that also generates scores its own replies among the others': LLM judges prefer their own text
(self-preference, Panickssery et al. 2024), so a persona's "amplification" or a model comparison measured by
it is tilted towards the judge's own model. And a mitigation loop measured by the evaluator that critiques it
reports that the critic was satisfied, not that the text got better. Both are valid configs (a researcher may
mean them: the judge card measures self-preference), so they are warnings, not errors:

* a panel rater whose judge model is a generator (``grid.models``, or every model when it is unset);
* a rater of the mitigation ``measure`` panel whose judge model is the critic's or the rewriter's.

Two references are the same model when they name the same entry of ``models``, or when they give the same model
id, whatever the backend or server (``Qwen/Qwen2.5-7B-Instruct`` offline on vLLM and behind ``vllm serve`` are one
model); entries without a model id (a backend's default, a scripted backend) match by name only. The report says
the same next to the affected tables (:mod:`analysis.self_judging`).
"""

from __future__ import annotations

from pathlib import Path

from configs.base import ModelSpec
from configs.schema import ExperimentConfig

__all__ = ["judge_overlap_warnings", "same_model"]


def same_model(a: ModelSpec, b: ModelSpec) -> bool:
    """Whether two model specs reach the same model: one name, or one model id (compared without case)."""
    return a.name == b.name or (a.model is not None and b.model is not None and a.model.lower() == b.model.lower())


def judge_overlap_warnings(config: ExperimentConfig, path: Path) -> list[str]:
    """One message per rater that judges its own model's generations, or measures with the critic's model.

    Args:
        config: A validated experiment config (references already checked).
        path: The config file, named in each message.

    Returns:
        One-line messages ``FILE: FIELD: ...`` (empty when every judge is independent).
    """
    by_name = {m.name: m for m in config.models}
    wanted = config.grid.models
    generators = [by_name[n] for n in wanted] if wanted is not None else list(config.models)

    def spec_of(model: str | ModelSpec | None) -> ModelSpec | None:
        return by_name.get(model) if isinstance(model, str) else model

    messages = []
    judges: dict[str, tuple[int, ModelSpec]] = {}
    for index, rater in enumerate(config.panel.raters):
        judge = spec_of(rater.model)
        if judge is None:
            continue
        judges[rater.name] = (index, judge)
        own = [g.name for g in generators if same_model(judge, g)]
        if own:
            messages.append(
                f"{path}: panel.raters[{index}].model: rater {rater.name!r} judges with {judge.name!r}, which also "
                f"generates ({', '.join(own)}): it scores its own replies among the others', and self-preference "
                "tilts what it measures; the report notes it. Judge with a model that does not generate, or read "
                "the judge card's self_preference before trusting it"
            )
    mitigation = config.mitigation
    if mitigation is None or not mitigation.enabled or not mitigation.measure:
        return messages
    helpers = [("critic", spec_of(mitigation.critic))]
    if mitigation.rewriter is not None:
        helpers.append(("rewriter", spec_of(mitigation.rewriter)))
    for name in mitigation.measure:
        index, judge = judges.get(name, (None, None))
        if judge is None:
            continue
        for role, helper in helpers:
            if helper is not None and same_model(judge, helper):
                messages.append(
                    f"{path}: mitigation.measure: held-out rater {name!r} (panel.raters[{index}]) judges with "
                    f"{judge.name!r}, the loop's {role}: the held-out measure would share the {role}'s taste. "
                    f"Measure with a model that neither critiques nor rewrites"
                )
    return messages
