"""Loaders for the public datasets the studies use, from local files only: they never reach the network.

Each loader reads a file, a folder of files, or (when no path is given) a copy already on disk in the Hugging
Face cache, and returns a pandas DataFrame whose first columns are the documented, normalised ones; any other
columns of the source follow unchanged. Anything wrong (a missing file, a missing or malformed field) raises
:class:`DatasetError` with one line that names the file or field and, for a missing file, where to get the data.

Formats read: JSON lines (``.jsonl``, optionally ``.gz``/``.xz``/``.bz2``; a single explicit ``.json`` file may
also hold one JSON array), Parquet, Arrow (the ``.arrow`` files of a ``datasets`` cache or ``save_to_disk``
folder), CSV and TSV. Parquet and Arrow need ``pyarrow``, imported only when such a file is read; the
``datasets`` library is never needed.

Hugging Face caches searched when ``path`` is omitted: ``cache_dir`` if given, otherwise ``$HF_DATASETS_CACHE``,
``$HF_HUB_CACHE``, and ``datasets/`` and ``hub/`` under ``$HF_HOME`` (default ``~/.cache/huggingface``). A
folder belongs to a dataset when its name, reduced to lower-case letters and digits, contains the dataset's name
(``ToxicityPrompts___polyglo_toxicity_prompts`` and ``datasets--ToxicityPrompts--PolygloToxicityPrompts`` both
match PolygloToxicityPrompts). Where a cache keeps several revisions of one file, the newest is read.

Splits: a folder or cache may hold several splits of a dataset (PTP ``full``/``small``/``wildchat``;
BeaverTails ``30k_train``/``30k_test``/``330k_train``/``330k_test``; DICES ``350``/``990``). ``split`` keeps the
files whose path (below the folder) names that split. Reading several PTP or BeaverTails splits at once would
double-count prompts, so it is an error; the two DICES sets are disjoint and are concatenated, told apart by the
``dices_set`` column.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


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


PTP = DatasetSource(
    name="PolygloToxicityPrompts",
    url="https://huggingface.co/datasets/ToxicityPrompts/PolygloToxicityPrompts",
    hf_id="ToxicityPrompts/PolygloToxicityPrompts",
    cache_key="polyglotoxicityprompts",
    splits=("full", "small", "wildchat"),
)
DICES = DatasetSource(
    name="DICES",
    url="https://github.com/google-research-datasets/dices-dataset "
    "(350/diverse_safety_adversarial_dialog_350.csv, 990/diverse_safety_adversarial_dialog_990.csv)",
    cache_key="dices",
    splits=("350", "990"),
)
BEAVERTAILS = DatasetSource(
    name="BeaverTails",
    url="https://huggingface.co/datasets/PKU-Alignment/BeaverTails",
    hf_id="PKU-Alignment/BeaverTails",
    cache_key="beavertails",
    splits=("30k_train", "30k_test", "330k_train", "330k_test"),
)

#: The 14 BeaverTails harm domains: the exact keys of the dataset's ``category`` dict, in the dataset's order.
BEAVERTAILS_CATEGORIES: tuple[str, ...] = (
    "animal_abuse",
    "child_abuse",
    "controversial_topics,politics",
    "discrimination,stereotype,injustice",
    "drug_abuse,weapons,banned_substance",
    "financial_crime,property_crime,theft",
    "hate_speech,offensive_language",
    "misinformation_regarding_ethics,laws_and_safety",
    "non_violent_unethical_behavior",
    "privacy_violation",
    "self_harm",
    "sexually_explicit,adult_content",
    "terrorism,organized_crime",
    "violence,aiding_and_abetting,incitement",
)
#: DICES ``degree_of_harm`` levels, least to most harmful.
DICES_DEGREES_OF_HARM: tuple[str, ...] = ("Benign", "Debatable", "Moderate", "Extreme")

#: Normalised columns of :func:`load_ptp`, in order.
PTP_COLUMNS: tuple[str, ...] = ("prompt_id", "language", "prompt", "toxicity")
#: Normalised columns of :func:`load_dices`, in order.
DICES_COLUMNS: tuple[str, ...] = (
    "item_id",
    "rater_id",
    "rater_gender",
    "rater_race",
    "rater_race_raw",
    "rater_age",
    "rater_education",
    "rater_locale",
    "context",
    "response",
    "degree_of_harm",
    "safety_gold",
    "q_overall",
    "dices_set",
)
#: Normalised columns of :func:`load_beavertails`, in order (then one boolean column per harm domain).
BEAVERTAILS_COLUMNS: tuple[str, ...] = (
    "prompt",
    "response",
    "is_safe",
    "harm_categories",
    *BEAVERTAILS_CATEGORIES,
)

_SCAN_SUFFIXES = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".jsonl.xz": "jsonl",
    ".jsonl.bz2": "jsonl",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
}
# A lone .json file is read when named explicitly; folder scans skip it (caches keep metadata in .json files).
_EXPLICIT_SUFFIXES = {**_SCAN_SUFFIXES, ".json": "json", ".json.gz": "json", ".json.xz": "json"}
_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
# Path parts that differ between cached copies of one file: content hashes, dataset versions, hub folders.
_VOLATILE_PART = re.compile(r"^([0-9a-f]{8,}|\d+\.\d+\.\d+|snapshots)$")
_PTP_CONFIG_DIR = re.compile(r"^(?:ptp|wildchat)(?:[-_](?:small|full))?[-_]([a-z]{2,3})$")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# ---------------------------------------------------------------------------------------- public loaders
def read_prompt_table(file: Path) -> pd.DataFrame:
    """A JSONL, JSON, CSV, TSV or Parquet file of prompts as a DataFrame (CSV cells as strings).

    Raises:
        DatasetError: the file is missing, unreadable, of an unknown type, or holds a line that is not a JSON
            object.
    """
    if not file.is_file():
        raise DatasetError(f"prompt file {file} not found")
    name = file.name.lower()
    try:
        if name.endswith((".csv", ".tsv")):
            return pd.read_csv(file, sep="\t" if name.endswith(".tsv") else ",", dtype=str, keep_default_na=False)
        if name.endswith(".parquet"):
            return pd.read_parquet(file)
        if name.endswith((".jsonl", ".json")):
            text = file.read_text(encoding="utf-8")
            if text.lstrip().startswith("["):
                records = json.loads(text)
            else:
                records = []
                for number, line in enumerate(text.splitlines(), start=1):
                    if line.strip():
                        try:
                            records.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise DatasetError(f"{file} line {number} is not valid JSON ({exc.msg})") from None
            if not all(isinstance(r, dict) for r in records):
                raise DatasetError(f"{file}: every record must be a JSON object")
            return pd.DataFrame.from_records(records)
    except (OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{file}: cannot read: {' '.join(str(exc).split())[:200]}") from None
    raise DatasetError(f"{file}: unsupported file type (use .jsonl, .json, .csv, .tsv or .parquet)")


def load_ptp(
    path: str | Path | None = None,
    *,
    languages: Sequence[str] | None = None,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Load PolygloToxicityPrompts (PTP) prompts.

    Reads the dataset's own files (rows with ``text``, ``toxicity`` and ``meta_data.lang``; the WildChat configs
    have ``prompt`` and ``prompt_perspective``) as well as simpler exports with ``prompt``/``language`` columns.
    Where no language field exists it is read from a config folder such as ``ptp-zh/`` in the path.

    Args:
        path: a file or a folder of files; the Hugging Face cache when omitted.
        languages: keep only these language codes (e.g. ``["en", "zh"]``); all when omitted.
        split: ``full``, ``small`` or ``wildchat``; needed when the files hold more than one.
        cache_dir: a Hugging Face cache folder to search instead of the default ones (only when ``path`` is
            omitted).

    Returns:
        One row per prompt with ``prompt_id`` (the source's ``prompt_id``/``id``, else ``ptp-<lang>-<hash of the
        text>``), ``language`` (lower-case code), ``prompt`` (the text to continue) and ``toxicity`` (the
        prompt's Perspective toxicity in [0, 1], NaN where the source has none), then the source's other
        columns.

    Raises:
        DatasetError: a file is missing or unreadable, a field is missing or malformed, or no row is left for
            ``languages``.
    """
    wanted = [lang.lower() for lang in languages] if languages is not None else None

    def keep(file: Path) -> bool:
        inferred = _ptp_language_from_path(file)
        return wanted is None or inferred is None or inferred in wanted

    files = _resolve(PTP, path, cache_dir, split, keep=keep)
    frame = _concat([_normalise_ptp(_read(PTP, file), file) for file in files], PTP_COLUMNS)
    if wanted is not None:
        found = sorted(frame["language"].dropna().unique())
        frame = frame[frame["language"].isin(wanted)].reset_index(drop=True)
        if frame.empty:
            raise DatasetError(
                f"{PTP.name}: no prompts in {', '.join(wanted)} in {_describe(files)}; "
                f"the files hold {', '.join(found) or 'no languages'}"
            )
    return frame


def load_dices(
    path: str | Path | None = None,
    *,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Load DICES ratings (one row per rater × conversation), e.g. DICES-350 or DICES-990.

    Column names follow the released CSVs (``rater_id``, ``rater_gender``, ``rater_race``, ``rater_raw_race`` in
    DICES-350 or ``rater_race_raw`` in DICES-990, ``rater_age``, ``rater_education``, ``rater_locale``,
    ``item_id``, ``context``, ``response``, ``degree_of_harm``, ``safety_gold``, ``Q_overall``), matched
    without regard to case.

    Args:
        path: a CSV (or JSONL/Parquet) file or a folder of them; the Hugging Face cache when omitted.
        split: ``350`` or ``990`` to keep one set when a folder holds both.
        cache_dir: a Hugging Face cache folder to search instead of the default ones (only when ``path`` is
            omitted).

    Returns:
        One row per rating with, as strings: ``item_id``, ``rater_id``, ``rater_gender``, ``rater_race``,
        ``rater_race_raw``, ``rater_age``, ``rater_education``, ``rater_locale`` (DICES-990 only, else NA),
        ``context`` (the conversation so far), ``response`` (the rated model turn), ``degree_of_harm`` (one of
        :data:`DICES_DEGREES_OF_HARM` in the released data), ``safety_gold`` (the expert label, NA where
        the file has none), ``q_overall`` (the rater's overall unsafe verdict, ``Yes``/``No``/``Unsure``) and
        ``dices_set`` (``350``/``990`` when the file name says which, else NA); then the source's other columns
        (such as the ``Q2_…`` sub-questions).

    Raises:
        DatasetError: a file is missing or unreadable, or a required field is missing.
    """
    files = _resolve(DICES, path, cache_dir, split, allow_many_splits=True)
    return _concat([_normalise_dices(_read(DICES, file), file) for file in files], DICES_COLUMNS)


def load_beavertails(
    path: str | Path | None = None,
    *,
    split: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Load BeaverTails question–answer pairs with their harm flags.

    Args:
        path: a JSONL (optionally ``.xz``/``.gz``) or Parquet file, or a folder of them; the Hugging Face cache
            when omitted.
        split: ``30k_train``, ``30k_test``, ``330k_train`` or ``330k_test``; needed when the files hold more
            than one.
        cache_dir: a Hugging Face cache folder to search instead of the default ones (only when ``path`` is
            omitted).

    Returns:
        One row per pair with ``prompt``, ``response``, ``is_safe`` (bool), ``harm_categories`` (a tuple of the
        flagged domain keys, in :data:`BEAVERTAILS_CATEGORIES` order) and one boolean column per domain, named
        by its exact key; then the source's other columns. The flags come from the ``category`` dict, or from
        flat ``category.<key>`` or ``<key>`` columns.

    Raises:
        DatasetError: a file is missing or unreadable, or a field is missing or malformed.
    """
    files = _resolve(BEAVERTAILS, path, cache_dir, split)
    return _concat([_normalise_beavertails(_read(BEAVERTAILS, file), file) for file in files], BEAVERTAILS_COLUMNS)


def find_cached(source: DatasetSource, cache_dir: str | Path | None = None) -> list[Path]:
    """Data files of ``source`` already in a Hugging Face cache on disk (newest copy of each), sorted.

    Args:
        source: :data:`PTP`, :data:`DICES` or :data:`BEAVERTAILS`.
        cache_dir: the cache folder to search; the default ones (see the module docstring) when omitted.
    """
    found: list[Path] = []
    for root in _cache_roots(cache_dir):
        for folder in _dataset_folders(root, source.cache_key):
            found.extend(_newest_copies(folder, _scan(folder)))
    return sorted(dict.fromkeys(found))


# ----------------------------------------------------------------------------------------- normalisers
def _normalise_ptp(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    used: list[str] = []
    text_col = _column(frame, ("prompt", "text", "prompt_text"))
    if text_col is None:
        raise _field_error(PTP, file, "prompt", "looked for prompt, text and prompt_text")
    used.append(text_col)
    raw_text = frame[text_col]
    nested = raw_text.map(lambda v: isinstance(v, dict))
    # RealToxicityPrompts style nests the scores with the text: prompt = {text: ..., toxicity: ...}
    prompts = raw_text.map(lambda v: v.get("text") if isinstance(v, dict) else v) if nested.any() else raw_text
    prompts = _text_column(PTP, file, text_col, prompts)

    toxicity_col = _column(frame, ("toxicity", "prompt_toxicity", "toxicity_score"))
    if toxicity_col is not None:
        used.append(toxicity_col)
        toxicity_raw = frame[toxicity_col]
        toxicity_field = toxicity_col
    elif nested.any():
        toxicity_raw = raw_text.map(lambda v: v.get("toxicity") if isinstance(v, dict) else None)
        toxicity_field = f"{text_col}.toxicity"
    else:
        perspective_col = _column(frame, ("perspective", "prompt_perspective"))
        if perspective_col is None:
            raise _field_error(PTP, file, "toxicity", "looked for toxicity, prompt_toxicity and perspective")
        used.append(perspective_col)
        toxicity_raw = frame[perspective_col].map(_perspective_toxicity)
        toxicity_field = f"{perspective_col}.attributeScores.TOXICITY"
    toxicity = _float_column(PTP, file, toxicity_field, toxicity_raw, low=0.0, high=1.0)

    language_col = _column(frame, ("language", "lang"))
    meta_col = _column(frame, ("meta_data", "metadata", "meta"))
    if language_col is not None:
        used.append(language_col)
        language = frame[language_col]
    elif meta_col is not None and frame[meta_col].map(lambda v: isinstance(v, dict) and "lang" in v).all():
        language = frame[meta_col].map(lambda v: v["lang"])
    else:
        inferred = _ptp_language_from_path(file)
        if inferred is None:
            raise _field_error(
                PTP, file, "language", "looked for language, lang, meta_data.lang and a folder such as ptp-zh"
            )
        language = pd.Series([inferred] * len(frame), index=frame.index)
    language = _text_column(PTP, file, "language", language).str.strip().str.lower()

    id_col = _column(frame, ("prompt_id", "id"))
    if id_col is not None:
        used.append(id_col)
        prompt_id = frame[id_col].map(str).astype("string")
    else:
        prompt_id = pd.Series(
            [f"ptp-{lang}-{_digest(text)}" for lang, text in zip(language, prompts, strict=True)],
            index=frame.index,
            dtype="string",
        )
    columns = {"prompt_id": prompt_id, "language": language, "prompt": prompts, "toxicity": toxicity}
    return _assemble(frame, columns, used)


def _normalise_dices(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    required = {
        "item_id": ("item_id",),
        "rater_id": ("rater_id",),
        "rater_gender": ("rater_gender",),
        "rater_race": ("rater_race",),
        "rater_age": ("rater_age",),
        "rater_education": ("rater_education",),
        "context": ("context",),
        "response": ("response",),
        "degree_of_harm": ("degree_of_harm",),
        "q_overall": ("Q_overall",),
    }
    optional = {
        "rater_race_raw": ("rater_race_raw", "rater_raw_race"),
        "rater_locale": ("rater_locale",),
        "safety_gold": ("safety_gold",),
    }
    columns: dict[str, pd.Series] = {}
    used: list[str] = []
    for name, candidates in {**required, **optional}.items():
        col = _column(frame, candidates)
        if col is None:
            if name in required:
                raise _field_error(DICES, file, candidates[0])
            columns[name] = pd.Series(pd.NA, index=frame.index, dtype="string")
            continue
        used.append(col)
        columns[name] = frame[col].map(lambda v: pd.NA if _missing(v) else str(v).strip()).astype("string")
    for name in ("item_id", "rater_id"):
        if columns[name].isna().any():
            row = int(columns[name].isna().to_numpy().argmax())
            raise DatasetError(f"{DICES.name}: {file}: field '{name}' is empty in row {row + 1}")
    dices_set = _split_of(DICES, file.name)
    columns["dices_set"] = pd.Series(dices_set if dices_set else pd.NA, index=frame.index, dtype="string")
    return _assemble(frame, {name: columns[name] for name in DICES_COLUMNS}, used)


def _normalise_beavertails(frame: pd.DataFrame, file: Path) -> pd.DataFrame:
    used: list[str] = []
    columns: dict[str, pd.Series] = {}
    for name in ("prompt", "response"):
        col = _column(frame, (name,))
        if col is None:
            raise _field_error(BEAVERTAILS, file, name)
        used.append(col)
        columns[name] = _text_column(BEAVERTAILS, file, name, frame[col])
    safe_col = _column(frame, ("is_safe",))
    if safe_col is None:
        raise _field_error(BEAVERTAILS, file, "is_safe")
    used.append(safe_col)
    columns["is_safe"] = _bool_column(BEAVERTAILS, file, "is_safe", frame[safe_col])

    flags: dict[str, pd.Series] = {}
    category_col = _column(frame, ("category", "categories"))
    if category_col is not None:
        used.append(category_col)
        dicts = [_as_dict(BEAVERTAILS, file, category_col, i, v) for i, v in enumerate(frame[category_col])]
        for key in BEAVERTAILS_CATEGORIES:
            missing = next((i for i, d in enumerate(dicts) if key not in d), None)
            if missing is not None:
                raise DatasetError(
                    f"{BEAVERTAILS.name}: {file}: field '{category_col}' in row {missing + 1} lacks the key '{key}'"
                )
            values = pd.Series([d[key] for d in dicts], index=frame.index)
            flags[key] = _bool_column(BEAVERTAILS, file, f"{category_col}.{key}", values)
    else:
        for key in BEAVERTAILS_CATEGORIES:
            col = _column(frame, (f"category.{key}", key))
            if col is None:
                raise _field_error(BEAVERTAILS, file, "category", f"no category dict and no column for '{key}'")
            used.append(col)
            flags[key] = _bool_column(BEAVERTAILS, file, col, frame[col])
    flagged = [tuple(key for key in BEAVERTAILS_CATEGORIES if flags[key].iloc[i]) for i in range(len(frame))]
    columns["harm_categories"] = pd.Series(flagged, index=frame.index, dtype=object)
    columns.update(flags)
    return _assemble(frame, {name: columns[name] for name in BEAVERTAILS_COLUMNS}, used)


# ---------------------------------------------------------------------------------- finding the files
def _resolve(
    source: DatasetSource,
    path: str | Path | None,
    cache_dir: str | Path | None,
    split: str | None,
    *,
    keep: Callable[[Path], bool] = lambda _: True,
    allow_many_splits: bool = False,
) -> list[Path]:
    if split is not None and split not in source.splits:
        raise DatasetError(f"{source.name}: unknown split {split!r}; choose one of {', '.join(source.splits)}")
    if path is not None:
        target = Path(path).expanduser()
        if not target.exists():
            raise DatasetError(f"{source.name}: file not found: {target}; {source.where()}")
        if target.is_file():
            if _format(target, _EXPLICIT_SUFFIXES) is None:
                kinds = ", ".join(sorted(_EXPLICIT_SUFFIXES))
                raise DatasetError(f"{source.name}: cannot read {target}: expected one of {kinds}")
            return [target]
        root, files = target, _scan(target)
        where = str(target)
    else:
        roots = _cache_roots(cache_dir)
        files = find_cached(source, cache_dir)
        root = None
        where = "the Hugging Face cache (" + ", ".join(str(r) for r in roots) + ")"
        if not files:
            raise DatasetError(
                f"{source.name}: no path given and no copy found in {where}; {source.where()} and pass its path"
            )
    files = [f for f in files if keep(f)]
    by_split = {f: _split_of(source, _relative(f, root, source)) for f in files}
    if split is not None:
        files = [f for f in files if by_split[f] == split]
    elif not allow_many_splits:
        seen = sorted({s for s in by_split.values() if s is not None})
        if len(seen) > 1:
            raise DatasetError(
                f"{source.name}: {where} holds several splits ({', '.join(seen)}); pass split= to choose one"
            )
    if not files:
        detail = f" for split {split!r}" if split is not None else ""
        raise DatasetError(f"{source.name}: no data files{detail} in {where}; {source.where()}")
    return files


def _cache_roots(cache_dir: str | Path | None) -> list[Path]:
    if cache_dir is not None:
        return [Path(cache_dir).expanduser()]
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    candidates = [env.get("HF_DATASETS_CACHE"), env.get("HF_HUB_CACHE"), f"{home}/datasets", f"{home}/hub"]
    return list(dict.fromkeys(Path(c).expanduser() for c in candidates if c))


def _dataset_folders(root: Path, key: str) -> list[Path]:
    if not root.is_dir():
        return []
    # cache_dir may already be the dataset's folder, or a snapshot or version folder inside it
    if any(key in _squash(part) for part in root.parts[-3:]):
        return [root]
    return sorted(child for child in root.iterdir() if child.is_dir() and key in _squash(child.name))


def _scan(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("cache-") and _format(p, _SCAN_SUFFIXES)
    )


def _newest_copies(folder: Path, files: Iterable[Path]) -> list[Path]:
    newest: dict[tuple[str, ...], Path] = {}
    for file in files:
        key = tuple(part for part in file.relative_to(folder).parts if not _VOLATILE_PART.match(part))
        if key not in newest or file.stat().st_mtime > newest[key].stat().st_mtime:
            newest[key] = file
    return list(newest.values())


def _relative(file: Path, root: Path | None, source: DatasetSource) -> str:
    """The part of ``file``'s path that may name its split: below ``root``, or below the dataset's folder."""
    if root is not None:
        return file.relative_to(root).as_posix()
    parents = file.parts[:-1]
    below = max((i for i, part in enumerate(parents) if source.cache_key in _squash(part)), default=-1)
    return "/".join(file.parts[below + 1 :])


def _split_of(source: DatasetSource, relative_path: str) -> str | None:
    flat = re.sub(r"[/\\.\-]", "_", relative_path.lower())
    for name in sorted(source.splits, key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", flat):
            return name
    return None


def _ptp_language_from_path(file: Path) -> str | None:
    for part in reversed(file.parts[:-1]):
        match = _PTP_CONFIG_DIR.match(part.lower())
        if match:
            return match.group(1)
    return None


# ------------------------------------------------------------------------------------------- reading
def _format(path: Path, table: dict[str, str]) -> str | None:
    name = path.name.lower()
    for suffix in sorted(table, key=len, reverse=True):
        if name.endswith(suffix):
            return table[suffix]
    return None


def _read(source: DatasetSource, file: Path) -> pd.DataFrame:
    kind = _format(file, _EXPLICIT_SUFFIXES)
    try:
        if kind in ("jsonl", "json"):
            return pd.DataFrame.from_records(_read_json_records(source, file))
        if kind in ("csv", "tsv"):
            return pd.read_csv(
                file, sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False, na_values=[""]
            )
        if kind == "parquet":
            return _pyarrow(source, "parquet").read_table(file).to_pandas()
        if kind == "arrow":
            return _read_arrow(source, file)
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, lzma.LZMAError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DatasetError(f"{source.name}: cannot read {file}: {reason}") from error
    raise DatasetError(f"{source.name}: cannot read {file}: unsupported file type")


def _read_json_records(source: DatasetSource, file: Path) -> list[dict[str, Any]]:
    opener = _OPENERS.get(file.suffix.lower(), open)
    with opener(file, "rt", encoding="utf-8") as handle:
        content = handle.read()
    if content.lstrip().startswith("["):
        records = json.loads(content)
    else:
        records = []
        for number, line in enumerate(io.StringIO(content), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                message = f"{source.name}: {file} line {number} is not valid JSON ({error.msg})"
                raise DatasetError(message) from error
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DatasetError(f"{source.name}: {file} record {number} is not a JSON object")
    return records


def _read_arrow(source: DatasetSource, file: Path) -> pd.DataFrame:
    pa = _pyarrow(source, None)
    try:  # `datasets` writes the streaming format; save_to_disk and others may write the file format
        with pa.memory_map(str(file)) as stream:
            table = pa.ipc.open_stream(stream).read_all()
    except pa.ArrowInvalid:
        with pa.memory_map(str(file)) as stream:
            table = pa.ipc.open_file(stream).read_all()
    return table.to_pandas()


def _pyarrow(source: DatasetSource, module: str | None) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet
    except ImportError as error:
        raise DatasetError(
            f"{source.name}: reading Parquet or Arrow files needs pyarrow (pip install pyarrow)"
        ) from error
    return pyarrow.parquet if module == "parquet" else pyarrow


# ------------------------------------------------------------------------------------------- helpers
def _column(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    by_lower = {str(c).lower(): str(c) for c in frame.columns}
    for candidate in candidates:
        if candidate in frame.columns:
            return candidate
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return None


def _field_error(source: DatasetSource, file: Path, field: str, detail: str = "") -> DatasetError:
    suffix = f" ({detail})" if detail else ""
    return DatasetError(f"{source.name}: {file} has no field '{field}'{suffix}")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text_column(source: DatasetSource, file: Path, field: str, values: pd.Series) -> pd.Series:
    for row, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(
                f"{source.name}: {file}: field '{field}' in row {row + 1} is not a non-empty string: {value!r:.60}"
            )
    return values.astype("string")


def _float_column(
    source: DatasetSource, file: Path, field: str, values: pd.Series, *, low: float, high: float
) -> pd.Series:
    out = []
    for row, value in enumerate(values):
        if _missing(value):
            out.append(math.nan)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
            valid = False
        else:
            valid = not math.isnan(number) and low <= number <= high
        if not valid or isinstance(value, bool):
            raise DatasetError(
                f"{source.name}: {file}: field '{field}' in row {row + 1} is not a number "
                f"in [{low:g}, {high:g}]: {value!r:.60}"
            )
        out.append(number)
    return pd.Series(out, index=values.index, dtype="float64")


def _bool_column(source: DatasetSource, file: Path, field: str, values: pd.Series) -> pd.Series:
    out = []
    for row, value in enumerate(values):
        if isinstance(value, bool | np.bool_) or (isinstance(value, numbers.Real) and value in (0, 1)):
            out.append(bool(value))
        elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            out.append(value.strip().lower() in _TRUE)
        else:
            raise DatasetError(
                f"{source.name}: {file}: field '{field}' in row {row + 1} is not a boolean: {value!r:.60}"
            )
    return pd.Series(out, index=values.index, dtype=bool)


def _as_dict(source: DatasetSource, file: Path, field: str, row: int, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if not isinstance(value, dict):
        raise DatasetError(f"{source.name}: {file}: field '{field}' in row {row + 1} is not a dict: {value!r:.60}")
    return value


def _perspective_toxicity(value: Any) -> Any:
    try:
        return value["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
    except (KeyError, TypeError):
        return None


def _assemble(frame: pd.DataFrame, columns: dict[str, pd.Series], used: Iterable[str]) -> pd.DataFrame:
    consumed = set(used) | set(columns)
    rest = frame[[c for c in frame.columns if c not in consumed]]
    out = pd.DataFrame(columns, index=frame.index)
    return pd.concat([out, rest], axis=1).reset_index(drop=True)


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)


def _describe(files: Sequence[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{len(files)} files under {os.path.commonpath(files)}"


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


__all__ = [
    "BEAVERTAILS",
    "BEAVERTAILS_CATEGORIES",
    "BEAVERTAILS_COLUMNS",
    "DICES",
    "DICES_COLUMNS",
    "DICES_DEGREES_OF_HARM",
    "PTP",
    "PTP_COLUMNS",
    "DatasetError",
    "DatasetSource",
    "find_cached",
    "load_beavertails",
    "load_dices",
    "load_ptp",
    "read_prompt_table",
]
