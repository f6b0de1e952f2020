"""What a human-labelled audit set is (:class:`Labels`), the bounded reading of its files, the helpers every
labels format shares, and the DICES and Civil Comments importers (the generic format, ToxiGen and PyRIT's
scorer-evaluation sets are read in :mod:`graphs.datasets.labels`).

Every importer returns the same two tables: ``texts`` (one row per rated item) and ``labels`` (one row per
label a person, or an aggregate of people, gave an item), with the label on ``[0, 1]``. Columns of the source
that the importer does not consume are kept: on ``texts`` when they hold one value per item, else on ``labels``.

* DICES (:func:`read_dices_labels`): one label per rater and conversation from ``Q_overall``;
* Civil Comments (:func:`read_civil_comments_labels`): the Jigsaw per-worker ``toxic`` votes joined with the
  comments, or one aggregate ``toxicity`` per comment.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from graphs.datasets.columns import field_error, find_column, float_column, is_missing
from graphs.datasets.dices import DICES
from graphs.datasets.files import split_of
from graphs.datasets.source import DatasetError, DatasetSource

LABELS = DatasetSource(name="labels", url="the generic labels format in graphs/datasets/labels.py")
CIVIL_COMMENTS = DatasetSource(
    name="Civil Comments",
    url="https://www.kaggle.com/c/jigsaw-unintended-bias-in-toxicity-classification/data "
    "(toxicity_individual_annotations.csv with all_data.csv or train.csv)",
)

#: The formats :func:`~graphs.datasets.labels.load_labels` reads, as its ``format=`` spells them.
LABEL_FORMATS: tuple[str, ...] = ("generic", "dices", "civil_comments", "toxigen", "pyrit")
#: DICES rater columns → the demographic columns of :attr:`Labels.labels`.
DICES_DEMOGRAPHICS = {
    "rater_gender": "annotator_gender",
    "rater_race": "annotator_race",
    "rater_age": "annotator_age",
    "rater_education": "annotator_education",
    "rater_locale": "annotator_locale",
}
_DICES_VERDICTS = {"yes": 1.0, "unsure": 0.5, "no": 0.0}
#: DICES columns that describe the conversation, not the rater's answers (kept on ``texts``).
_DICES_ITEM_COLUMNS = {"degree_of_harm", "harm_type", "safety_gold", "safety_gold_reason", "phase"}
#: Files of the Jigsaw release that hold the comments' text, the most complete first.
CIVIL_COMMENT_FILES = ("all_data.csv", "train.csv", "test_public_expanded.csv", "test_private_expanded.csv")
CIVIL_ANNOTATIONS_FILE = "toxicity_individual_annotations.csv"
_ITEM_COLUMNS = ("item_id", "text", "prompt", "language")


@dataclass(frozen=True)
class Labels:
    """A human-labelled audit set: the texts to rate and the labels people gave them.

    Attributes:
        texts: one row per item: ``item_id``, ``text`` (what a judge rates), ``prompt`` (the request the text
            answers; NA when the source has none), ``language`` (default ``en``), then the source's item-level
            columns (such as ToxiGen's ``target_group``).
        labels: one row per label: ``item_id``, ``label`` (a float on ``[0, 1]``, higher is more of
            :attr:`dimension`), ``annotator`` (a string, or ``None`` where the label is an aggregate or the
            source names nobody), the demographic columns, then the source's other per-label columns.
        source: the file read, or the built-in set's name with its version (``pyrit:harm/hate_speech (pyrit
            1.1.0, dataset_version=1.0)``).
        format: one of :data:`LABEL_FORMATS`.
        demographic_columns: columns of ``labels`` that describe the annotator (``annotator_gender``, ...).
        dimension: what the label measures when the format says so (``harmfulness``, ``toxicity``,
            ``refusal``, ``objective_achieved``); ``None`` for a generic file.
        n_dropped: label rows dropped because their label or text was missing.
        notes: what a reader of an audit must know about these labels (aggregates, annotator slots, ...).
    """

    texts: pd.DataFrame = field(repr=False)
    labels: pd.DataFrame = field(repr=False)
    source: str
    format: str
    demographic_columns: tuple[str, ...] = ()
    dimension: str | None = None
    n_dropped: int = 0
    notes: tuple[str, ...] = ()

    @property
    def n_items(self) -> int:
        return len(self.texts)

    @property
    def n_labels(self) -> int:
        return len(self.labels)


# ------------------------------------------------------------------------------------------- reading
def read_label_table(source: DatasetSource, file: Path) -> tuple[pd.DataFrame, list[str]]:
    """One CSV, TSV, JSON Lines, JSON or Parquet file, read within ``TRIBUNAL_MAX_INPUT_BYTES`` (CSV cells as
    strings), and the ``#`` comment lines that open a CSV file (PyRIT writes its dataset version there).

    Raises:
        DatasetError: missing, not a regular file, over the limit, empty, unreadable or of an unknown type.
    """
    name = file.name.lower()
    if not name.endswith((".csv", ".tsv", ".jsonl", ".json", ".parquet")):
        raise DatasetError(f"{source.name}: {file}: cannot read: expected a .csv, .tsv, .jsonl, .json or .parquet file")
    data = _bounded(source, file)
    if not data.strip():
        raise DatasetError(f"{source.name}: {file}: the file is empty")
    try:
        if name.endswith(".parquet"):
            return _read_parquet(source, data), []
        text = data.decode("utf-8-sig")
        if name.endswith((".jsonl", ".json")):
            return pd.DataFrame.from_records(_json_records(source, file, text)), []
        lines = text.splitlines(keepends=True)
        comments = []
        while lines and lines[0].lstrip().startswith("#"):
            comments.append(lines.pop(0).strip())
        sep = "\t" if name.endswith(".tsv") else ","
        body = "".join(lines)
        if not body.strip():
            raise DatasetError(f"{source.name}: {file}: the file has no header and no rows")
        frame = pd.read_csv(io.StringIO(body), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
        return frame, comments
    except DatasetError:
        raise
    except (UnicodeDecodeError, ValueError, OSError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise DatasetError(f"{source.name}: {file}: cannot read: {reason}") from None


def _bounded(source: DatasetSource, file: Path) -> bytes:
    # configs is imported here, not at the top, so that importing graphs.datasets stays free of it
    from configs.base import ConfigError
    from configs.inputs import read_input_bytes

    try:
        return read_input_bytes(file, kind="data")
    except ConfigError as error:
        raise DatasetError(f"{source.name}: {error}") from None


def _read_parquet(source: DatasetSource, data: bytes) -> pd.DataFrame:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise DatasetError(f"{source.name}: reading Parquet files needs pyarrow (pip install pyarrow)") from error
    return pq.read_table(pa.BufferReader(data)).to_pandas()


def _json_records(source: DatasetSource, file: Path, text: str) -> list[dict]:
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{source.name}: {file}: not valid JSON ({error.msg}, line {error.lineno})") from None
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DatasetError(f"{source.name}: {file}: line {number} is not valid JSON ({error.msg})") from None
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DatasetError(f"{source.name}: {file}: record {number} is not a JSON object")
    return records


# ------------------------------------------------------------------------------------- shared helpers
def require(source: DatasetSource, file: Path, frame: pd.DataFrame, *candidates: str, detail: str = "") -> str:
    """The column of ``frame`` named by one of ``candidates`` (ignoring case), or the one-line error."""
    column = find_column(frame, candidates)
    if column is None:
        spellings = detail or (f"looked for {', '.join(candidates)}" if len(candidates) > 1 else "")
        raise field_error(source, file, candidates[0], spellings)
    return column


def label_values(
    source: DatasetSource, file: Path, field: str, values: pd.Series, *, low: float = 0.0, high: float = 1.0
) -> pd.Series:
    """``values`` as floats on ``[low, high]`` (``True``/``False`` as 1/0); a missing cell becomes NaN.

    Raises:
        DatasetError: a value that is not a number in range, naming the file, field and row.
    """
    values = values.map(lambda v: float(v) if isinstance(v, bool) else v)
    return float_column(source, file, field, values, low=low, high=high)


def strings(values: pd.Series) -> pd.Series:
    """``values`` as stripped strings, NA where a cell is missing."""
    return values.map(lambda v: pd.NA if is_missing(v) else str(v).strip()).astype("string")


def content_id(text: str, prompt: object) -> str:
    """A stable id for an item that its source gives none: a hash of its prompt and text."""
    key = ("" if is_missing(prompt) else str(prompt)) + "\x1f" + text
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def item_level(rows: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """``columns`` split into those with one value per item (they go to ``texts``) and the rest."""
    if not columns or rows.empty:
        return list(columns), []
    counts = rows.groupby("item_id", sort=False)[columns].nunique(dropna=False).max()
    per_item = [c for c in columns if counts[c] <= 1]
    return per_item, [c for c in columns if c not in per_item]


def assemble_labels(
    rows: pd.DataFrame,
    dataset: DatasetSource,
    file: Path,
    *,
    source: str,
    format: str,
    item_columns: Sequence[str] = (),
    label_columns: Sequence[str] = (),
    demographic_columns: tuple[str, ...] = (),
    dimension: str | None = None,
    notes: tuple[str, ...] = (),
    n_dropped: int = 0,
    check_items: bool = True,
) -> Labels:
    """:class:`Labels` from one row per label holding ``item_id``, ``text``, ``prompt``, ``language``,
    ``label``, ``annotator`` and the named further columns; rows without a label or text are dropped and counted.

    Raises:
        DatasetError: an item id given to two different texts or prompts, or no label left at all.
    """
    missing = rows["label"].isna() | rows["text"].isna()
    kept = rows[~missing]
    if kept.empty:
        raise DatasetError(f"{dataset.name}: {file}: no labelled rows (every row lacks a label or a text)")
    if check_items:
        for column in ("text", "prompt"):
            varies = kept.groupby("item_id", sort=False)[column].nunique(dropna=False)
            if (varies > 1).any():
                item = varies[varies > 1].index[0]
                where = [str(r) for r in kept.index[kept["item_id"] == item][:2] + 1]
                raise DatasetError(
                    f"{dataset.name}: {file}: field 'item_id': {item!r} has two different {column}s "
                    f"(rows {' and '.join(where)}); give each item one {column}, or distinct ids"
                )
    first = kept.drop_duplicates("item_id")
    texts = pd.DataFrame({c: first[c].astype("string") for c in _ITEM_COLUMNS})
    texts = pd.concat([texts, first[list(item_columns)]], axis=1).reset_index(drop=True)
    annotator = kept["annotator"].map(lambda v: None if is_missing(v) else str(v)).astype(object)
    labels = pd.DataFrame(
        {"item_id": kept["item_id"].astype("string"), "label": kept["label"].astype("float64"), "annotator": annotator}
    )
    extra = [*demographic_columns, *[c for c in label_columns if c not in demographic_columns]]
    labels = pd.concat([labels, kept[extra]], axis=1).reset_index(drop=True)
    return Labels(
        texts=texts,
        labels=labels,
        source=source,
        format=format,
        demographic_columns=tuple(demographic_columns),
        dimension=dimension,
        n_dropped=n_dropped + int(missing.sum()),
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------- DICES
def read_dices_labels(file: Path, frame: pd.DataFrame) -> Labels:
    """DICES-350 or DICES-990 ratings as labels: the rated turn is ``response``, the conversation before it
    the prompt (``context``), the label the rater's ``Q_overall`` "is it unsafe?" verdict (Yes 1, Unsure 0.5,
    No 0) on the ``harmfulness`` dimension, the annotator ``rater_id`` with ``rater_gender``, ``rater_race``,
    ``rater_age``, ``rater_education`` and (DICES-990) ``rater_locale`` as ``annotator_<attribute>``."""
    item = require(DICES, file, frame, "item_id")
    rater = require(DICES, file, frame, "rater_id")
    context = require(DICES, file, frame, "context")
    response = require(DICES, file, frame, "response")
    verdict = require(DICES, file, frame, "Q_overall")
    dices_set = split_of(DICES, file.name)
    verdicts = strings(frame[verdict]).str.lower()
    unknown = verdicts.notna() & ~verdicts.isin(list(_DICES_VERDICTS))
    if unknown.any():
        row = int(unknown.to_numpy().argmax())
        value = frame[verdict].iloc[row]
        raise DatasetError(
            f"{DICES.name}: {file}: field 'Q_overall' in row {row + 1} is not Yes, No or Unsure: {value!r:.60}"
        )
    ids = strings(frame[item])
    if ids.isna().any():
        row = int(ids.isna().to_numpy().argmax())
        raise DatasetError(f"{DICES.name}: {file}: field 'item_id' is empty in row {row + 1}")
    rows = pd.DataFrame(
        {
            "item_id": f"dices-{dices_set}:" + ids if dices_set else "dices:" + ids,
            "text": strings(frame[response]),
            "prompt": strings(frame[context]),
            "language": "en",
            "label": verdicts.map(_DICES_VERDICTS).astype("float64"),
            "annotator": strings(frame[rater]),
        }
    )
    demographics = []
    used = {item, rater, context, response, verdict}
    for raw, name in DICES_DEMOGRAPHICS.items():
        column = find_column(frame, (raw,))
        if column is not None:
            used.add(column)
            if frame[column].notna().any():  # DICES-350 has no locale: an all-empty column describes no one
                rows[name] = strings(frame[column])
                demographics.append(name)
    rest = [c for c in frame.columns if c not in used]
    rows = pd.concat([rows, frame[rest]], axis=1)
    # the rater's answers (Q2_..., Q_...) vary by rater even where a small file shows one value per item
    per_item, _ = item_level(rows, [c for c in rest if str(c).lower() in _DICES_ITEM_COLUMNS])
    per_label = [c for c in rest if c not in per_item]
    notes = ("DICES labels are each rater's Q_overall verdict on the whole conversation (Yes 1, Unsure 0.5, No 0)",)
    return assemble_labels(
        rows,
        DICES,
        file,
        source=str(file),
        format="dices",
        item_columns=per_item,
        label_columns=per_label,
        demographic_columns=tuple(demographics),
        dimension="harmfulness",
        notes=notes,
    )


# -------------------------------------------------------------------------------------- Civil Comments
def read_civil_comments_labels(path: Path, frame: pd.DataFrame | None, comments: Path | None) -> Labels:
    """Civil Comments (Jigsaw Unintended Bias) labels on the ``toxicity`` dimension.

    ``path`` is a folder holding ``toxicity_individual_annotations.csv`` and a comments file
    (:data:`CIVIL_COMMENT_FILES`), the annotations file itself (its comments are ``comments`` or found next to
    it): then each worker's ``toxic`` vote is one label (annotator ``worker``). Or ``path`` is a comments file
    alone (``comment_text`` or ``text``, with ``toxicity`` or Kaggle's ``target``): then each comment has one
    label, the aggregate fraction of raters who found it toxic, with no annotator.
    """
    if path.is_dir():
        annotations_file = path / CIVIL_ANNOTATIONS_FILE
        if not annotations_file.is_file():
            raise DatasetError(
                f"{CIVIL_COMMENTS.name}: {path}: no {CIVIL_ANNOTATIONS_FILE} in this folder; {CIVIL_COMMENTS.where()}"
            )
        return _civil_per_worker(annotations_file, read_label_table(CIVIL_COMMENTS, annotations_file)[0], comments)
    assert frame is not None
    if find_column(frame, ("worker",)) is not None and find_column(frame, ("comment_text", "text")) is None:
        return _civil_per_worker(path, frame, comments)
    return _civil_aggregate(path, frame)


def _civil_per_worker(file: Path, frame: pd.DataFrame, comments: Path | None) -> Labels:
    ident = require(CIVIL_COMMENTS, file, frame, "id")
    worker = require(CIVIL_COMMENTS, file, frame, "worker")
    toxic = require(CIVIL_COMMENTS, file, frame, "toxic")
    files = [comments] if comments is not None else [file.parent / n for n in CIVIL_COMMENT_FILES]
    files = [f for f in files if f.is_file()] if comments is None else files
    if not files:
        raise DatasetError(
            f"{CIVIL_COMMENTS.name}: {file}: the annotations hold no text; put all_data.csv or train.csv next to "
            f"it, or pass comments=; {CIVIL_COMMENTS.where()}"
        )
    texts = []
    for comment_file in files[:1] if files[0].name == "all_data.csv" else files:
        table = read_label_table(CIVIL_COMMENTS, comment_file)[0]
        comment_id = require(CIVIL_COMMENTS, comment_file, table, "id")
        comment_text = require(CIVIL_COMMENTS, comment_file, table, "comment_text", "text")
        table = table.rename(columns={comment_id: "id", comment_text: "comment_text"})
        texts.append(table.assign(id=strings(table["id"])))
    comment_table = pd.concat(texts, ignore_index=True).drop_duplicates("id").set_index("id")
    ids = strings(frame[ident])
    known = ids.isin(comment_table.index)
    rows = pd.DataFrame(
        {
            "item_id": "civil:" + ids,
            "label": label_values(CIVIL_COMMENTS, file, "toxic", frame[toxic]),
            "annotator": strings(frame[worker]),
            "language": "en",
            "prompt": pd.NA,
        }
    )[known.to_numpy()]
    matched = comment_table.loc[ids[known]]
    rows["text"] = strings(matched["comment_text"]).to_numpy()
    item_columns = [c for c in matched.columns if c != "comment_text"]
    for column in item_columns:
        rows[column] = matched[column].to_numpy()
    other = [c for c in frame.columns if c not in (ident, worker, toxic)]
    rows = pd.concat([rows, frame.loc[known.to_numpy(), other].add_prefix("annotation_")], axis=1)
    unmatched = int((~known).sum())
    notes = ["labels are each worker's toxic vote (the worker id names a crowd worker; no demographics)"]
    if unmatched:
        notes.append(f"{unmatched} annotation rows name comments missing from {', '.join(f.name for f in files)}")
    return assemble_labels(
        rows,
        CIVIL_COMMENTS,
        file,
        source=str(file),
        format="civil_comments",
        item_columns=item_columns,
        label_columns=[f"annotation_{c}" for c in other],
        dimension="toxicity",
        notes=tuple(notes),
        n_dropped=unmatched,
        check_items=False,
    )


def _civil_aggregate(file: Path, frame: pd.DataFrame) -> Labels:
    text = require(CIVIL_COMMENTS, file, frame, "comment_text", "text")
    score = require(CIVIL_COMMENTS, file, frame, "toxicity", "target")
    ident = find_column(frame, ("id",))
    texts = strings(frame[text])
    prompt = pd.Series(pd.NA, index=frame.index, dtype="string")
    if ident is not None:
        item_ids = "civil:" + strings(frame[ident])
    else:
        item_ids = pd.Series([content_id(t, None) if isinstance(t, str) else pd.NA for t in texts], index=frame.index)
    rows = pd.DataFrame(
        {
            "item_id": item_ids,
            "text": texts,
            "prompt": prompt,
            "language": "en",
            "label": label_values(CIVIL_COMMENTS, file, score, frame[score]),
            "annotator": None,
        }
    )
    rest = [c for c in frame.columns if c not in (text, score, ident)]
    rows = pd.concat([rows, frame[rest]], axis=1)
    note = (
        f"aggregated: one label per comment, its {score} (the fraction of raters who found it toxic), no annotator; "
        "per-annotator labels need toxicity_individual_annotations.csv"
    )
    return assemble_labels(
        rows,
        CIVIL_COMMENTS,
        file,
        source=str(file),
        format="civil_comments",
        item_columns=rest,
        dimension="toxicity",
        notes=(note,),
    )


__all__ = [
    "CIVIL_ANNOTATIONS_FILE",
    "CIVIL_COMMENTS",
    "CIVIL_COMMENT_FILES",
    "DICES_DEMOGRAPHICS",
    "LABELS",
    "LABEL_FORMATS",
    "Labels",
    "assemble_labels",
    "content_id",
    "item_level",
    "label_values",
    "read_civil_comments_labels",
    "read_dices_labels",
    "read_label_table",
    "require",
    "strings",
]
