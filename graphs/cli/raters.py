"""``tribunal raters list``: the rater kinds, the built-in rubrics and a config's panel."""

from __future__ import annotations

import click
from rich.table import Table

from configs.loader import ConfigError
from graphs.cli.console import console, fail, load_or_fail


@click.group("raters")
def raters() -> None:
    """Judges and rubrics."""


@raters.command("list")
@click.option("--config", type=click.Path(dir_okay=False), help="Also show this config's panel.")
def raters_list(config: str | None) -> None:
    """Show the rater kinds, the built-in rubrics and (with --config) a panel, with their dimensions."""
    from raters.registry import available_raters, rater_class
    from raters.rubric import builtin_rubrics, load_rubric

    table = Table("kind", "description", "dimensions", "source", title="rater kinds")
    for kind, source in sorted(available_raters().items()):
        try:
            cls = rater_class(kind)
            dims = f"rubric (default {cls.default_rubric})" if cls.default_rubric else ", ".join(cls.default_dimensions)
            table.add_row(kind, cls.description, dims or "from options", source)
        except Exception as exc:  # a rater whose dependencies are missing is still listed
            table.add_row(kind, f"[red]unavailable: {exc}[/]", "", source)
    console.print(table)
    rubrics = Table("rubric", "version", "kind", "dimensions", title="rubrics")
    for name in builtin_rubrics():
        rubric = load_rubric(name)
        rubrics.add_row(rubric.id, rubric.version, rubric.kind, ", ".join(rubric.dimension_ids))
    console.print(rubrics)
    if config:
        from graphs.runner import build_run_panel

        experiment = load_or_fail(config)
        try:
            # judge models are not loaded by listing: backends are built but never called
            from graphs.runner import judge_backends

            panel = build_run_panel(experiment.config, judge_backends(experiment.config, config), config)
        except ConfigError as exc:
            fail(str(exc))
        members = Table("name", "identity", "dimensions", title=f"panel of {config} ({panel.method})")
        for rater in panel.raters:
            members.add_row(rater.name, str(rater.identity()), ", ".join(rater.dimensions))
        console.print(members, soft_wrap=True)
