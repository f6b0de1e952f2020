"""Running stage I: the models it calls, the domain classifier, and the build of a benchmark from a config.

:func:`run_stage1` builds the benchmark of a stage I config; :func:`ensure_stage1` builds a study config's stage I
into its run directory unless it is built already (``tribunal run`` of ``demo_safetybench.yaml`` calls it before
stage II). Model calls go through the response cache in ``DIR/cache.sqlite``: building again with the same config
pays for no call twice (delete the file to ask afresh).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from agents.base import Backend, create_backend
from agents.cached import CachedBackend
from configs.loader import ConfigError, Experiment
from configs.schema import ModelSpec, RaterSpec
from configs.stage1 import Stage1Config
from graphs.stage1.config import stage1_config
from graphs.stage1.domains import DOMAINS, RUBRIC
from graphs.stage1.graph import build_stage1_graph, recursion_limit
from graphs.stage1.nodes import LoggedProgress, Stage1, Stage1Progress
from graphs.stage1.state import Stage1Result
from graphs.stage1.writer import benchmark_is_complete, read_result
from graphs.store import TranscriptStore
from raters.base import Rater
from raters.registry import create_rater

CACHE_FILE = "cache.sqlite"


def _model_spec(config: Stage1Config, model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else next(m for m in config.models if m.name == model)


def build_stage1_backends(config: Stage1Config, config_path: str | Path = "<config>") -> dict[str, Backend]:
    """The classifier's and the expander's backends by model name (shared when both name the same model).

    Raises:
        ConfigError: an unknown backend, a rejected option or an unset ``${ENV}`` reference.
    """
    wanted = [("classifier.model", config.classifier.model)]
    if config.expansion is not None and config.expansion.enabled:
        wanted.append(("expansion.model", config.expansion.model))
    backends: dict[str, Backend] = {}
    for field_path, model in wanted:
        spec = _model_spec(config, model)
        if spec.name in backends:
            continue
        if isinstance(model, str):
            field_path = f"models[{[m.name for m in config.models].index(model)}]"
        try:
            backends[spec.name] = CachedBackend(create_backend(spec, config_path=config_path, field_path=field_path))
        except KeyError as exc:
            raise ConfigError(config_path, field_path, exc.args[0] if exc.args else str(exc)) from None
    return backends


def build_classifier(config: Stage1Config, backends: dict[str, Backend], config_path: str | Path = "<config>") -> Rater:
    """The ``llm`` rater with the ``beavertails`` rubric over the 14 domains, at δ."""
    spec = _model_spec(config, config.classifier.model)
    options = dict(config.classifier.options)
    if config.classifier.threshold is not None:
        options["threshold"] = config.classifier.threshold
    try:
        rater_spec = RaterSpec(
            name="domain-classifier",
            kind="llm",
            model=spec.name,
            rubric=RUBRIC,
            dimensions=list(DOMAINS),
            options=options,
        )
        return create_rater(rater_spec, backends)
    except (ValueError, KeyError) as exc:
        raise ConfigError(config_path, "classifier", exc.args[0] if exc.args else str(exc)) from None


async def run_stage1(
    config: Stage1Config,
    out_dir: str | Path | None = None,
    *,
    config_path: str | Path = "<config>",
    backends: dict[str, Backend] | None = None,
    progress: Stage1Progress | None = None,
) -> Stage1Result:
    """Build the benchmark of ``config`` into ``out_dir`` (default ``run.output_dir``).

    Args:
        config: a validated config (:func:`graphs.stage1.load_stage1_config`).
        out_dir: the output folder; created once the prompts have loaded, so a bad source writes nothing.
        config_path: for error messages and the summary.
        backends: prebuilt backends by model name (tests); built from the config when omitted.
        progress: receives stage names and advances (the command's progress bar).

    Raises:
        DatasetError: the prompt source cannot be read (nothing is written).
        ConfigError: a model cannot be built.
    """
    out = Path(out_dir or config.run.output_dir)
    backends = backends if backends is not None else build_stage1_backends(config, config_path)
    classifier = build_classifier(config, backends, config_path)
    expander = None
    if config.expansion is not None and config.expansion.enabled:
        expander = backends[_model_spec(config, config.expansion.model).name]
    cached = [b for b in dict.fromkeys(backends.values()) if isinstance(b, CachedBackend)]
    stores: list[TranscriptStore] = []

    def open_output() -> None:
        out.mkdir(parents=True, exist_ok=True)
        if config.run.cache and cached:
            store = TranscriptStore(out / CACHE_FILE)
            stores.append(store)
            for backend in cached:
                backend.cache = store

    stage = Stage1(
        config=config,
        classifier=classifier,
        expander=expander,
        out_dir=out,
        progress=progress or LoggedProgress(),
        config_path=str(config_path),
        on_loaded=open_output,
        backends=cached,
    )
    graph = build_stage1_graph(stage)
    rounds = config.expansion.max_rounds if config.expansion else 0
    try:
        state = await graph.ainvoke({}, config={"recursion_limit": recursion_limit(rounds)})
    finally:
        for backend in cached:
            backend.cache = None
        for store in stores:
            store.close()
        await classifier.aclose()
        for backend in dict.fromkeys(backends.values()):
            with contextlib.suppress(Exception):
                await backend.aclose()
    return state["result"]


async def ensure_stage1(
    experiment: Experiment,
    run_dir: str | Path | None = None,
    *,
    config_path: str | Path | None = None,
    progress: Stage1Progress | None = None,
) -> Stage1Result | None:
    """Build a study config's stage I into ``<run directory>/stage1`` unless a finished benchmark is there.

    Args:
        experiment: a loaded study config (:func:`configs.loader.load_experiment`).
        run_dir: the run directory (``run.output_dir`` by default).
        config_path: how errors and the summary name the config (its path as loaded by default).
        progress: receives stage names and advances.

    Returns:
        ``None`` when the config has no ``stage1`` section; else the benchmark's result, read back from its
        summary when ``stage1.json`` was already there (delete it to rebuild).

    Raises:
        DatasetError: the prompt source cannot be read (nothing is written).
        ConfigError: a model cannot be built.
    """
    if experiment.config.stage1 is None:
        return None
    config = stage1_config(experiment.config, run_dir, base=experiment.path.parent)
    out = config.run.output_dir
    if benchmark_is_complete(out):
        return read_result(out)
    where = experiment.path if config_path is None else config_path
    return await run_stage1(config, out, config_path=where, progress=progress)


__all__ = ["CACHE_FILE", "build_classifier", "build_stage1_backends", "ensure_stage1", "run_stage1"]
