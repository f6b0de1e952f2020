"""Reading the files a config points at, within bounds: regular files only, up to a size limit, aliases bounded.

A config, its catalogs, rubrics, pattern and example files and the prompt tables a grid reads are user input, so
each is read the same careful way:

* it is opened without blocking and must be a regular file: ``/dev/zero``, a FIFO, a socket or a folder is
  refused with one line (a FIFO never hangs the read);
* it is read up to a limit: ``TRIBUNAL_MAX_YAML_BYTES`` (default 32 MiB, room for a catalog of 100,000 personas)
  for YAML files, ``TRIBUNAL_MAX_INPUT_BYTES`` (default 64 MiB) for data files (JSON Lines, CSV, Parquet);
* YAML anchors and aliases may repeat parts of a file, but the document they expand to may be at most ten times
  the file's size (at least 1 MiB) and within the YAML limit, and an alias may not contain itself: a 2.3 KB
  "billion laughs" file would otherwise become gigabytes once validated and written back out.

Every problem is a one-line :class:`~configs.base.ConfigError`; when the file was named by a config field, the
error names that config and field (``config.yaml: grid.personas: /dev/zero is not a regular file ...``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Literal

import yaml

from configs.base import ConfigError

MAX_YAML_BYTES_ENV = "TRIBUNAL_MAX_YAML_BYTES"
MAX_INPUT_BYTES_ENV = "TRIBUNAL_MAX_INPUT_BYTES"
DEFAULT_MAX_YAML_BYTES = 32 * 2**20
DEFAULT_MAX_INPUT_BYTES = 64 * 2**20
#: How far YAML aliases may expand a document: this many times the file's size, and at least the floor.
ALIAS_EXPANSION = 10
ALIAS_FLOOR_BYTES = 2**20

#: PyYAML's safe loader, libyaml's C implementation when installed (3-4 times faster on large catalogs).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

InputKind = Literal["yaml", "data"]
#: ``(config file, field)`` that named the file being read, for errors that point at the config.
Reference = tuple[str | Path, str]


def input_limit(kind: InputKind = "yaml") -> tuple[int, str]:
    """The size limit in bytes for a kind of input file, and the environment variable that sets it.

    Raises:
        ConfigError: the variable is set to something other than a positive whole number.
    """
    env, default = (
        (MAX_YAML_BYTES_ENV, DEFAULT_MAX_YAML_BYTES)
        if kind == "yaml"
        else (MAX_INPUT_BYTES_ENV, DEFAULT_MAX_INPUT_BYTES)
    )
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default, env
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"${env}", "", f"must be a positive whole number of bytes, got {raw!r}")
    return int(raw), env


def read_input_bytes(path: str | Path, *, kind: InputKind = "yaml", referenced_as: Reference | None = None) -> bytes:
    """The bytes of one input file, read only from a regular file and only up to the kind's limit.

    Args:
        path: the file.
        kind: ``yaml`` or ``data``, which limit applies (:func:`input_limit`).
        referenced_as: the config file and field that named ``path``; errors then name those, with the path.

    Raises:
        ConfigError: missing, a folder, not a regular file, unreadable, or over the limit.
    """
    path = Path(path)
    limit, env = input_limit(kind)
    expected = "a YAML file" if kind == "yaml" else "a data file"

    def fail(problem: str) -> ConfigError:
        if referenced_as is None:
            return ConfigError(path, "", problem)
        return ConfigError(referenced_as[0], referenced_as[1], f"{path} {problem}")

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)  # non-blocking: opening a FIFO must not wait for a writer
    except FileNotFoundError:
        raise fail("file not found" if referenced_as is None else "does not exist") from None
    except IsADirectoryError:
        raise fail(f"is a directory, expected {expected}") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror}") from None
    too_big = f"is over the limit of {limit} bytes; set {env} to a larger number of bytes to read it"
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise fail(f"is a directory, expected {expected}")
        if not stat.S_ISREG(info.st_mode):
            raise fail("is not a regular file (a device, FIFO or socket); tribunal reads only regular files")
        if info.st_size > limit:
            raise fail(f"{too_big} (it has {info.st_size})")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(descriptor, min(2**20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > limit:  # it grew while being read, or reports no size (/proc)
        raise fail(too_big)
    return data


def read_yaml_file(path: str | Path, *, referenced_as: Reference | None = None, kind: InputKind = "yaml") -> Any:
    """Read and parse one YAML file within bounds (:func:`read_input_bytes`, aliases bounded).

    I/O problems name ``referenced_as`` when given; problems of the YAML itself always name the file. ``kind``
    ``data`` reads it under the data-file limit (a run directory's ``config.yaml`` snapshot, which holds every
    persona of a large grid).

    Raises:
        ConfigError: on the first problem, in one line.
    """
    path = Path(path)
    data = read_input_bytes(path, kind=kind, referenced_as=referenced_as)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        document = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (libyaml's when installed)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(top level)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, where, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(path, "", "invalid YAML: nested too deeply") from None
    if "*" in text:  # an alias is written *name: only then can the document be larger than the file
        limit, _ = input_limit("yaml")
        check_alias_expansion(document, path, min(limit, max(ALIAS_FLOOR_BYTES, ALIAS_EXPANSION * len(data))))
    return document


class _AliasCycle(Exception):
    pass


def check_alias_expansion(document: Any, path: str | Path, budget: int) -> None:
    """Refuse a YAML document whose aliases expand it past ``budget`` bytes, or that contains itself.

    The size is that of the document written out with every alias expanded (about a character per character of
    text, plus a little per entry), computed once per shared node, so it costs what the file holds.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any) -> int:
        if isinstance(node, str | bytes):
            return len(node) + 2
        if not isinstance(node, dict | list | tuple | set):
            return 8
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _AliasCycle
        open_nodes.add(key)
        entries = [*node.keys(), *node.values()] if isinstance(node, dict) else list(node)
        total = 2 + sum(size(entry) + 2 for entry in entries)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    try:
        expanded = size(document)
    except _AliasCycle:
        raise ConfigError(path, "", "a YAML alias refers to a node that contains it (an endless document)") from None
    except RecursionError:
        raise ConfigError(path, "", "invalid YAML: nested too deeply") from None
    if expanded > budget:
        raise ConfigError(
            path,
            "",
            f"YAML aliases expand this file to more than {budget} bytes (at most {ALIAS_EXPANSION} times the file, "
            f"or {ALIAS_FLOOR_BYTES} bytes); write the repeated parts out, or use fewer aliases",
        )


__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_MAX_YAML_BYTES",
    "MAX_INPUT_BYTES_ENV",
    "MAX_YAML_BYTES_ENV",
    "check_alias_expansion",
    "input_limit",
    "read_input_bytes",
    "read_yaml_file",
]
