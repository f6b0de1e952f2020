"""Reading a stage I config: a standalone one (``tribunal bench build``) or a study config's ``stage1`` section."""

from __future__ import annotations

from pathlib import Path

from configs.loader import ConfigError, check_references, check_stage1_references, read_yaml, validate_as
from configs.schema import ExperimentConfig, stage1_dir
from configs.stage1 import PromptSource, Stage1Config, Stage1RunConfig


def load_stage1_config(path: str | Path) -> Stage1Config:
    """Read and check a stage I config; ``prompts.path`` comes back absolute (relative to the config's folder).

    ``path`` is a stage I config, or a study config with a ``stage1`` section (Demo-SafetyBench), whose stage I
    writes to ``<run.output_dir>/stage1``. The prompt file itself is read by :func:`graphs.stage1.run_stage1`,
    whose :class:`~graphs.datasets.DatasetError` says where to get missing data.

    Raises:
        ConfigError: on the first problem, as one line ``file: field: problem``.
    """
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict) and "grid" in data:
        experiment = validate_as(ExperimentConfig, data, path)
        if experiment.stage1 is None:
            raise ConfigError(path, "stage1", "this experiment config has no stage1 section to build")
        check_references(experiment, path)
        return stage1_config(experiment, base=path.parent)
    config = validate_as(Stage1Config, data, path)
    check_stage1_references(config.models, config, path)
    return _resolve_prompt_path(config, path.parent)


def stage1_config(
    experiment: ExperimentConfig, run_dir: str | Path | None = None, *, base: Path | None = None
) -> Stage1Config:
    """The stage I config of a study config's ``stage1`` section: its models and seed, output in
    ``<run directory>/stage1`` (``run_dir`` defaults to ``run.output_dir``); with ``base`` (the config's folder),
    ``prompts.path`` comes back absolute.

    Raises:
        ValueError: the config has no ``stage1`` section.
    """
    section = experiment.stage1
    if section is None:
        raise ValueError(f"config {experiment.name!r} has no stage1 section")
    config = Stage1Config(
        name=experiment.name,
        description=experiment.description,
        seed=experiment.seed,
        models=experiment.models,
        prompts=section.prompts,
        extra_prompts=section.extra_prompts,
        classifier=section.classifier,
        expansion=section.expansion,
        dedup=section.dedup,
        sweep=section.sweep,
        run=Stage1RunConfig(
            output_dir=stage1_dir(experiment, run_dir),
            chunk_size=section.chunk_size,
            concurrency=section.concurrency,
            keep_unflagged=section.keep_unflagged,
        ),
    )
    return config if base is None else _resolve_prompt_path(config, base)


def _resolve_prompt_path(config: Stage1Config, base: Path) -> Stage1Config:
    """``prompts.path`` made absolute against the config's folder (whether the file exists is checked when it is
    read, so that the error can say where to get the data)."""

    def resolved(source: PromptSource) -> PromptSource:
        if source.path is None:
            return source
        return source.model_copy(update={"path": (base / source.path).resolve()})

    extra = [resolved(s) for s in config.extra_prompts]
    return config.model_copy(update={"prompts": resolved(config.prompts), "extra_prompts": extra})


__all__ = ["load_stage1_config", "stage1_config"]
