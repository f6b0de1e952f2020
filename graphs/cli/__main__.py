"""``python -m graphs.cli``: the same as the ``tribunal`` command."""

from graphs.cli import main

main()
