"""Loading stage I's prompts: a BeaverTails split or a file of prompts, as distinct prompts with their metadata;
DICES as one sample per (conversation, rater profile) (:mod:`graphs.stage1.dices`).

Empty prompts are skipped and exact repeats (same text up to case and spacing) keep their first row, so no prompt
is classified twice (BeaverTails repeats each prompt once per response). A file's other columns (demographic
metadata such as the author's gender or locale) travel with each prompt.
"""

from __future__ import annotations

from collections import Counter

from agents.types import content_key
from configs.stage1 import PromptSource
from graphs.datasets import DatasetError, load_beavertails, read_prompt_table
from graphs.stage1.dices import load_dices_samples
from graphs.stage1.simhash import simhash
from graphs.stage1.state import Stage1Prompt


def load_prompts(source: PromptSource) -> tuple[list[Stage1Prompt], dict[str, int]]:
    """The distinct prompts of a source, in order, with what was skipped.

    Raises:
        DatasetError: a file is missing or unreadable, or a named column is absent.
    """
    if source.kind == "dices":
        return load_dices_samples(source)
    if source.kind == "beavertails":
        frame = load_beavertails(source.path, split=source.split)
        default_metadata: list[str] = []
    else:
        assert source.path is not None
        frame = read_prompt_table(source.path)
        default_metadata = []
    where = str(source.path) if source.path else "BeaverTails"
    columns = [str(c) for c in frame.columns]
    named = [source.text_column, source.id_column, source.language_column, *(source.metadata_columns or [])]
    for column in named:
        if column is not None and column not in columns:
            raise DatasetError(f"{where}: no column {column!r} (columns: {', '.join(columns)})")
    if source.kind == "file":
        used = {source.text_column, source.id_column, source.language_column}
        default_metadata = [c for c in columns if c not in used]
    metadata_columns = source.metadata_columns if source.metadata_columns is not None else default_metadata
    # imported here: importing the analysis package costs every process that imports the graphs about a second
    # (each Ray actor among them), and only reading a prompt source needs it
    from analysis.frames import jsonable

    prompts: list[Stage1Prompt] = []
    seen: set[str] = set()
    ids: set[str] = set()
    stats = Counter(rows=len(frame))
    for row in frame.to_dict(orient="records"):
        text = row.get(source.text_column)
        if not isinstance(text, str) or not text.strip():
            stats["empty_skipped"] += 1
            continue
        text = text.strip()
        norm = " ".join(text.split()).casefold()
        if norm in seen:
            stats["exact_duplicates"] += 1
            continue
        seen.add(norm)
        language = source.language
        if source.language_column and isinstance(row.get(source.language_column), str):
            language = row[source.language_column].strip().lower() or language
        if source.id_column:
            prompt_id = str(row[source.id_column])
            if prompt_id in ids:
                raise DatasetError(f"{where}: id {prompt_id!r} in column {source.id_column!r} is not unique")
        else:
            prompt_id = "p-" + content_key(norm)[:16]
        ids.add(prompt_id)
        metadata = {c: jsonable(row.get(c)) for c in metadata_columns}
        prompts.append(Stage1Prompt(prompt_id, text, language, "original", metadata, fingerprint=simhash(text)))
        if source.limit is not None and len(prompts) >= source.limit:
            break
    stats["used"] = len(prompts)
    if not prompts:
        raise DatasetError(f"{where}: no prompts (column {source.text_column!r} is empty everywhere)")
    return prompts, dict(stats)


__all__ = ["load_prompts"]
