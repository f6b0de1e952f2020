"""LangGraph state machines, the runner, the transcript store and the CLI.

Kept import-light: submodules are imported where they are used, so that ``graphs.tables`` stays cheap
for ``analysis``.
"""
