"""The ``tribunal`` command line: parse, call a library function, print.

One module per group of commands: :mod:`graphs.cli.experiment` (``validate``, ``run``, ``rate``),
:mod:`graphs.cli.results` (``analyze``, ``report``, ``export``), :mod:`graphs.cli.raters`, :mod:`graphs.cli.models`,
:mod:`graphs.cli.audit`, :mod:`graphs.cli.stage1` (``bench``); what they share (consoles, the one-line error exit,
progress bars) is :mod:`graphs.cli.console`. Commands import the library where they run, so ``tribunal --help``
stays fast.

Exit codes: 0 success, 1 a run-time failure, 2 bad input (config, catalog, arguments), 130 interrupted.
"""

from __future__ import annotations

import logging

import click

from graphs.cli import audit, experiment, models, raters, results, stage1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="tribunal")
def main(verbose: int) -> None:
    """tribunal: persona-driven generation, judge panels, mitigation and rater-agreement audits."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    # HTTP libraries log every header at debug level; a server echoing the API key must not put it in a log
    for name in ("httpcore", "httpx", "openai"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))


for command in (
    experiment.validate,
    experiment.run,
    experiment.rate,
    raters.raters,
    results.analyze,
    results.report,
    results.export,
    models.models,
    stage1.bench,
    audit.audit,
):
    main.add_command(command)

__all__ = ["main"]
