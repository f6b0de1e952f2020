"""Why a table is missing or partial: the rows of the ``notes`` and ``headline_notes`` tables.

Every analysis that can be left out (no ratings yet, no baseline, one rater, …) adds one row ``table, reason``
instead of raising, so that a partial run still gets a report that says what it lacks.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["NOTE_COLUMNS", "Notes"]

NOTE_COLUMNS = ["table", "reason"]


class Notes:
    """The reasons collected so far, in the order they were found."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []

    def add(self, table: str, reason: str) -> None:
        """Record that ``table`` is missing or partial because of ``reason`` (one clause, no final stop)."""
        self.rows.append({"table": table, "reason": reason})

    def frame(self) -> pd.DataFrame:
        """The notes as a DataFrame with columns ``table, reason`` (no rows when there are none)."""
        return pd.DataFrame(self.rows, columns=NOTE_COLUMNS)

    def __len__(self) -> int:
        return len(self.rows)
