"""What every ``tribunal`` command shares: the two consoles, the one-line error exit and the progress bar."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from configs.loader import ConfigError, Experiment, load_experiment

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: MESSAGE`` on one line of stderr (markup in the message is shown, not interpreted) and exit.

    Exit codes: 2 bad input (config, catalog, arguments), 1 a run-time failure.
    """
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(code)


def load_or_fail(config: str) -> Experiment:
    """The experiment of a config file, or its one-line error and exit code 2."""
    try:
        return load_experiment(config)
    except ConfigError as exc:
        fail(str(exc))


def progress_bar(*extra: ProgressColumn | str, enabled: bool = True) -> Progress:
    """A live bar on stderr: spinner, description, bar, done of total, elapsed, then ``extra`` columns."""
    columns: list[Any] = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
    ]
    return Progress(*columns, console=errors, disable=not enabled)
