"""The language catalog (``catalogs/languages.yaml``): each language's resource class and where it comes from.

A language's *resource class* says how much data NLP has for it, on Joshi et al.'s (2020) scale from 0 (virtually
no data) to 5 (dominant online presence, much labelled data). The PolygloToxicityPrompts study reports toxicity
by resource class; the analysis reads the same file (:func:`analysis.toxicity.scorers.language_resources`, which
cannot import this package), and a test checks that both readings agree.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from configs.base import LANGUAGE_PATTERN, Strict
from configs.catalog_schema import CATALOG_DIR, read_catalog_yaml

#: The catalog shipped with tribunal.
DEFAULT_LANGUAGES = CATALOG_DIR / "languages.yaml"
#: Joshi et al.'s (2020) classes, from the fewest resources (0) to the most (5).
RESOURCE_CLASSES = (0, 1, 2, 3, 4, 5)


class CatalogSource(Strict):
    """Where a catalog's attribute comes from: the reference to cite, and the published table it was read from."""

    citation: str = Field(min_length=10)
    url: str | None = Field(None, pattern=r"^https?://")


class LanguageEntry(Strict):
    """One language: its code as the grid writes it, its English name and its resource class."""

    code: str = Field(pattern=LANGUAGE_PATTERN)
    name: str = Field(min_length=1)
    resource_class: int = Field(ge=0, le=5, description="Joshi et al. (2020): 0 (fewest resources) to 5 (most)")
    note: str | None = None


class LanguageCatalog(Strict):
    """The language catalog: a source for its classes, the classes' names, and one entry per language."""

    version: str = "1"
    source: CatalogSource
    classes: dict[int, str] = Field(description="resource class → its name in the source")
    languages: list[LanguageEntry] = Field(min_length=1)

    @field_validator("classes")
    @classmethod
    def _all_classes(cls, value: dict[int, str]) -> dict[int, str]:
        if sorted(value) != list(RESOURCE_CLASSES):
            raise ValueError(f"name every resource class 0-5 once (got {sorted(value)})")
        return value

    @model_validator(mode="after")
    def _unique_codes(self) -> LanguageCatalog:
        codes = [entry.code for entry in self.languages]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"language(s) listed twice: {', '.join(twice)}")
        return self

    def resource_class(self, code: str) -> int | None:
        """A language's resource class; ``None`` when the catalog does not list it."""
        for entry in self.languages:
            if entry.code == code:
                return entry.resource_class
        return None


def load_languages(path: str | Path = DEFAULT_LANGUAGES) -> LanguageCatalog:
    """Load and validate a language catalog.

    Args:
        path: the YAML file; the catalog shipped with tribunal when omitted.

    Returns:
        The validated catalog.
    """
    return LanguageCatalog.model_validate(read_catalog_yaml(path))


__all__ = [
    "DEFAULT_LANGUAGES",
    "RESOURCE_CLASSES",
    "CatalogSource",
    "LanguageCatalog",
    "LanguageEntry",
    "load_languages",
]
