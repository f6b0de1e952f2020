"""Finding a dataset's files (a path, a folder, or a Hugging Face cache) and reading any of their formats.

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
double-count prompts, so it is an error unless the loader allows it (the two DICES sets are disjoint).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from graphs.datasets.source import DatasetError, DatasetSource

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


# ---------------------------------------------------------------------------------- finding the files
def resolve_files(
    source: DatasetSource,
    path: str | Path | None,
    cache_dir: str | Path | None,
    split: str | None,
    *,
    keep: Callable[[Path], bool] = lambda _: True,
    allow_many_splits: bool = False,
) -> list[Path]:
    """The data files a loader reads: ``path`` itself, the data files in a folder, or the cached copies.

    Args:
        source: the dataset (named in errors, with where to get it).
        path: a file or a folder; the Hugging Face cache when ``None``.
        cache_dir: the cache folder to search instead of the default ones (only when ``path`` is ``None``).
        split: keep only the files of this split.
        keep: a further filter on the files found.
        allow_many_splits: read files of several splits together (else that is an error, unless ``split``).

    Raises:
        DatasetError: nothing to read, an unknown split, or several splits where one is needed.
    """
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
    by_split = {f: split_of(source, _relative(f, root, source)) for f in files}
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


def find_cached(source: DatasetSource, cache_dir: str | Path | None = None) -> list[Path]:
    """Data files of ``source`` already in a Hugging Face cache on disk (newest copy of each), sorted.

    Args:
        source: :data:`graphs.datasets.PTP`, :data:`~graphs.datasets.DICES` or :data:`~graphs.datasets.BEAVERTAILS`.
        cache_dir: the cache folder to search; the default ones (see the module docstring) when omitted.
    """
    found: list[Path] = []
    for root in _cache_roots(cache_dir):
        for folder in _dataset_folders(root, source.cache_key):
            found.extend(_newest_copies(folder, _scan(folder)))
    return sorted(dict.fromkeys(found))


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


def split_of(source: DatasetSource, relative_path: str) -> str | None:
    """The split of ``source`` that a file's path (or name) names, if any; the longest name wins."""
    flat = re.sub(r"[/\\.\-]", "_", relative_path.lower())
    for name in sorted(source.splits, key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", flat):
            return name
    return None


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# ------------------------------------------------------------------------------------------- reading
def _format(path: Path, table: dict[str, str]) -> str | None:
    name = path.name.lower()
    for suffix in sorted(table, key=len, reverse=True):
        if name.endswith(suffix):
            return table[suffix]
    return None


def read_table(source: DatasetSource, file: Path) -> pd.DataFrame:
    """One data file of any format read here (CSV and TSV cells as strings), as it is.

    Raises:
        DatasetError: the file is unreadable, of an unknown type, or holds a line that is not a JSON object.
    """
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


__all__ = ["find_cached", "read_table", "resolve_files", "split_of"]
