"""What a dataset is (its name, where to get it, how its cache folders and splits are named), and its error."""

from __future__ import annotations

from dataclasses import dataclass


class DatasetError(ValueError):
    """A dataset file is missing, unreadable, or lacks a field the loader needs."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from, for error messages and cache look-ups."""

    name: str
    url: str
    hf_id: str | None = None
    #: Lower-case letters and digits that a cache folder's name contains when it holds this dataset.
    cache_key: str = ""
    #: Split names that can appear in file paths.
    splits: tuple[str, ...] = ()

    def where(self) -> str:
        if self.hf_id:
            return f"get it from the Hugging Face dataset {self.hf_id} ({self.url})"
        return f"get it from {self.url}"


__all__ = ["DatasetError", "DatasetSource"]
