"""Reading a table of prompts (JSONL, JSON, CSV, TSV or Parquet) as it is, for prompt-file grids and stage I."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from graphs.datasets.source import DatasetError


def read_prompt_table(file: Path) -> pd.DataFrame:
    """A JSONL, JSON, CSV, TSV or Parquet file of prompts as a DataFrame (CSV cells as strings).

    Raises:
        DatasetError: the file is missing, unreadable, of an unknown type, or holds a line that is not a JSON
            object.
    """
    if not file.exists():
        raise DatasetError(f"prompt file {file} not found")
    name = file.name.lower()
    if not name.endswith((".csv", ".tsv", ".parquet", ".jsonl", ".json")):
        raise DatasetError(f"{file}: unsupported file type (use .jsonl, .json, .csv, .tsv or .parquet)")
    data = _bounded(file)
    try:
        if name.endswith((".csv", ".tsv")):
            sep = "\t" if name.endswith(".tsv") else ","
            return pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False)
        if name.endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        if name.endswith((".jsonl", ".json")):
            text = data.decode("utf-8")
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


def _bounded(file: Path) -> bytes:
    """The file's bytes, read only from a regular file and up to ``TRIBUNAL_MAX_INPUT_BYTES`` (configs.inputs; imported
    here, not at the top, so that ``import graphs.datasets`` stays free of the config package)."""
    from configs.base import ConfigError
    from configs.inputs import read_input_bytes

    try:
        return read_input_bytes(file, kind="data")
    except ConfigError as exc:
        raise DatasetError(str(exc)) from None


__all__ = ["read_prompt_table"]
