"""Human-labelled audit sets for ``tribunal audit judges``: a labels file, or a built-in PyRIT set, as
:class:`~graphs.datasets.label_formats.Labels` (one table of texts, one of labels).

The generic labels format
-------------------------
A CSV, TSV, JSON Lines (or JSON array) or Parquet file, told apart by its suffix, one row per label:

=================== ======== ============================================================================
column              required meaning
=================== ======== ============================================================================
``text``            yes      what a judge rates (a model's reply, a comment)
``label``           yes      the human label: 0/1, or a number on [0, 1] (``true``/``false`` read as 1/0);
                             higher means more of the property rated (more toxic, more harmful)
``item_id``         no       which item the row labels; without it, rows with the same ``text`` and
                             ``prompt`` are one item (its id a hash of the two)
``prompt``          no       the request the text answers
``annotator``       no       who gave the label; rows without one are labels of no named person
``language``        no       the text's language code (default ``en``)
``annotator_<x>``   no       a fact about the annotator (``annotator_gender``, ``annotator_age``): the
                             demographic columns; others can be named with ``demographic_columns=``
=================== ======== ============================================================================

Several annotators of one item give several rows with the same ``item_id`` (or the same text and prompt). Any
other column is kept: on the texts table when it holds one value per item, else on the labels table. A label
outside [0, 1], a missing ``text`` or ``label`` column, or an empty file is an error, one line naming the file,
field and row; a row whose label (or text) is empty is dropped and counted in ``Labels.n_dropped``. Files are
read only when regular and within ``TRIBUNAL_MAX_INPUT_BYTES`` (default 64 MiB).

Formats recognised by their columns (or forced with ``format=``)
----------------------------------------------------------------
* ``dices`` (``rater_id``, ``response``, ``Q_overall``): DICES-350/990, one label per rater; text ``response``,
  prompt ``context``; ``Q_overall`` Yes 1, Unsure 0.5, No 0; dimension ``harmfulness`` (DICES asks whether the
  conversation is unsafe; tribunal's safety rubric rates that as harmfulness); demographics ``rater_gender``,
  ``rater_race``, ``rater_age``, ``rater_education``, ``rater_locale`` as ``annotator_gender`` ... .
* ``civil_comments``: the Jigsaw ``toxicity_individual_annotations.csv`` (``id``, ``worker``, ``toxic``, ...)
  joined with ``all_data.csv`` or ``train.csv`` next to it (or a folder holding both): one label per worker's
  ``toxic`` vote; or a comments file alone (``comment_text`` with ``toxicity`` or ``target``): one aggregate
  label per comment, no annotator. Dimension ``toxicity``.
* ``toxigen`` (``text``, ``toxicity_human``): ToxiGen's annotated sets; label ``(toxicity_human - 1) / 4``, an
  aggregate of the annotators (the release has no per-annotator scores), ``target_group`` kept per item.
* ``pyrit`` (``assistant_response``, ``human_score`` or ``human_score_k``): PyRIT scorer-evaluation CSVs, a
  ``# dataset_version=...`` first line allowed; text ``assistant_response``, prompt ``objective``, one label per
  score column with annotator ``human_k`` (a column slot, not a person).

Built-in sets: ``pyrit:<path below pyrit/datasets/scorer_evals, without .csv>`` (``pyrit:harm/hate_speech``,
``pyrit:refusal_scorer/refusal``; :func:`list_pyrit_sets`), read in place from the installed ``pyrit`` wheel
(``pip install --no-deps pyrit==1.1.0``) without importing it.

This module needs pandas and the standard library (pyarrow for Parquet); it never imports pyrit.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from graphs.datasets.columns import field_error, find_column, is_missing
from graphs.datasets.label_formats import (
    CIVIL_ANNOTATIONS_FILE,
    LABEL_FORMATS,
    LABELS,
    Labels,
    assemble_labels,
    content_id,
    item_level,
    label_values,
    read_civil_comments_labels,
    read_dices_labels,
    read_label_table,
    require,
    strings,
)
from graphs.datasets.source import DatasetError, DatasetSource

#: The pyrit release whose scorer-evaluation sets tribunal reads (``pip install --no-deps`` it).
PYRIT_REQUIREMENT = "pyrit==1.1.0"
PYRIT_PREFIX = "pyrit:"
_OPTIONAL = ("item_id", "prompt", "annotator", "language")
PYRIT = DatasetSource(name="PyRIT scorer_evals", url=f"the pyrit wheel (pip install --no-deps {PYRIT_REQUIREMENT})")
TOXIGEN = DatasetSource(
    name="ToxiGen",
    url="https://github.com/microsoft/TOXIGEN (annotated_train.csv, annotated_test.csv)",
    hf_id="toxigen/toxigen-data",
)
_HUMAN_SCORE = re.compile(r"^human_score(?:_(\d+))?$", re.IGNORECASE)


def load_labels(
    spec: str | Path,
    *,
    format: str | None = None,
    comments: str | Path | None = None,
    demographic_columns: Sequence[str] | None = None,
) -> Labels:
    """Read a human-labelled audit set.

    Args:
        spec: a labels file (CSV, TSV, JSONL, JSON or Parquet, by suffix), a Civil Comments folder, or a
            built-in set ``pyrit:<name>`` (:func:`list_pyrit_sets`).
        format: one of :data:`~graphs.datasets.label_formats.LABEL_FORMATS`; told from the columns when omitted.
        comments: for Civil Comments' per-worker annotations, the file holding the comments' text (default:
            ``all_data.csv`` or ``train.csv`` next to the annotations).
        demographic_columns: generic format only: the columns that describe annotators (default: those named
            ``annotator_<attribute>``).

    Returns:
        The texts and their labels; see the module docstring for what each format gives.

    Raises:
        DatasetError: one line naming the file (or set) and the field at fault.

    Examples:
        >>> labels = load_labels("pyrit:harm/hate_speech_multi_score")  # doctest: +SKIP
        >>> labels.n_items, labels.labels.groupby("item_id").size().max()  # doctest: +SKIP
        (199, 3)
    """
    if format is not None and format not in LABEL_FORMATS:
        raise DatasetError(
            f"{LABELS.name}: {spec}: unknown format {format!r}; choose one of {', '.join(LABEL_FORMATS)}"
        )
    if isinstance(spec, str) and spec.startswith(PYRIT_PREFIX):
        return _load_pyrit_set(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if format not in (None, "civil_comments") or not (path / CIVIL_ANNOTATIONS_FILE).is_file():
            raise DatasetError(
                f"{LABELS.name}: {path}: is a folder; pass a labels file (a folder is read only for Civil Comments, "
                f"holding {CIVIL_ANNOTATIONS_FILE} and all_data.csv or train.csv)"
            )
        return read_civil_comments_labels(path, None, _path(comments))
    frame, header = read_label_table(LABELS, path)
    chosen = format or detect_format(frame.columns)
    if chosen is None or chosen == "generic":
        return _read_generic(path, frame, demographic_columns)
    if chosen == "dices":
        return read_dices_labels(path, frame)
    if chosen == "civil_comments":
        return read_civil_comments_labels(path, frame, _path(comments))
    if chosen == "toxigen":
        return read_toxigen_labels(path, frame)
    return read_pyrit_labels(path, frame, header, name=_pyrit_name_of(path), source=str(path))


def detect_format(columns: Sequence[object]) -> str | None:
    """The format a file's column names (ignoring case) say it is in, ``None`` when none fits."""
    names = {str(c).lower() for c in columns}
    if "assistant_response" in names and any(n.startswith("human_score") for n in names):
        return "pyrit"
    if {"rater_id", "response", "q_overall"} <= names:
        return "dices"
    if {"text", "toxicity_human"} <= names:
        return "toxigen"
    if {"id", "worker", "toxic"} <= names or ("comment_text" in names and names & {"toxicity", "target"}):
        return "civil_comments"
    if {"text", "label"} <= names:
        return "generic"
    if {"text", "toxicity"} <= names:  # the Hugging Face copy of Civil Comments
        return "civil_comments"
    return None


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


# -------------------------------------------------------------------------------------- the generic format
def _read_generic(file: Path, frame: pd.DataFrame, demographic_columns: Sequence[str] | None) -> Labels:
    needs = "the generic labels format needs 'text' and 'label' columns"
    for required in ("text", "label"):
        if find_column(frame, (required,)) is None:
            raise field_error(LABELS, file, required, needs)
    text, label = find_column(frame, ("text",)), find_column(frame, ("label",))
    optional = {name: find_column(frame, (name,)) for name in _OPTIONAL}
    if demographic_columns is None:
        demographics = [str(c) for c in frame.columns if str(c).lower().startswith("annotator_")]
    else:
        demographics = [str(c) for c in demographic_columns]
        for column in demographics:
            if column not in frame.columns:
                raise field_error(LABELS, file, column, "named in demographic_columns")
    texts = strings(frame[text])
    prompts = strings(frame[optional["prompt"]]) if optional["prompt"] else pd.Series(pd.NA, index=frame.index)
    if optional["item_id"]:
        item_ids = strings(frame[optional["item_id"]])
        if item_ids.isna().any():
            row = int(item_ids.isna().to_numpy().argmax())
            raise DatasetError(f"{LABELS.name}: {file}: field 'item_id' is empty in row {row + 1}")
    else:
        item_ids = pd.Series(
            [content_id(t, p) if isinstance(t, str) else pd.NA for t, p in zip(texts, prompts, strict=True)],
            index=frame.index,
            dtype="string",
        )
    language = (
        strings(frame[optional["language"]]).fillna("en")
        if optional["language"]
        else pd.Series("en", index=frame.index)
    )
    rows = pd.DataFrame(
        {
            "item_id": item_ids,
            "text": texts,
            "prompt": prompts.astype("string"),
            "language": language,
            "label": label_values(LABELS, file, "label", frame[label]),
            "annotator": strings(frame[optional["annotator"]]) if optional["annotator"] else None,
        }
    )
    for column in demographics:
        rows[column] = strings(frame[column])
    used = {text, label, *(c for c in optional.values() if c), *demographics}
    rest = [c for c in frame.columns if c not in used]
    rows = pd.concat([rows, frame[rest]], axis=1)
    per_item, per_label = item_level(rows[rows["label"].notna()], rest)
    return assemble_labels(
        rows,
        LABELS,
        file,
        source=str(file),
        format="generic",
        item_columns=per_item,
        label_columns=per_label,
        demographic_columns=tuple(demographics),
    )


# --------------------------------------------------------------------------------------------- ToxiGen
def read_toxigen_labels(file: Path, frame: pd.DataFrame) -> Labels:
    """ToxiGen's human-annotated texts: label ``(toxicity_human − 1) / 4`` on the ``toxicity`` dimension.

    ``toxicity_human`` is the mean of the annotators' 1–5 ratings, so each text has one aggregated label and no
    annotator; ``target_group`` and the release's other columns are kept per item.
    """
    text = require(TOXIGEN, file, frame, "text")
    score = require(TOXIGEN, file, frame, "toxicity_human")
    human = label_values(TOXIGEN, file, "toxicity_human", frame[score], low=1.0, high=5.0)
    rows = pd.DataFrame(
        {
            "item_id": [f"toxigen:{file.stem}:{row + 1}" for row in range(len(frame))],
            "text": strings(frame[text]),
            "prompt": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "language": "en",
            "label": (human - 1.0) / 4.0,
            "annotator": None,
        },
        index=frame.index,
    )
    rest = [c for c in frame.columns if c not in (text, score)]
    rows = pd.concat([rows, frame[rest]], axis=1)
    note = (
        "aggregated: toxicity_human is the mean of the annotators' 1-5 ratings, rescaled as (score - 1) / 4; "
        "one label per text, not per annotator"
    )
    return assemble_labels(
        rows,
        TOXIGEN,
        file,
        source=str(file),
        format="toxigen",
        item_columns=rest,
        dimension="toxicity",
        notes=(note,),
        check_items=False,
    )


# ------------------------------------------------------------------------------------- PyRIT scorer_evals
def read_pyrit_labels(file: Path, frame: pd.DataFrame, comments: list[str], *, name: str, source: str) -> Labels:
    """A PyRIT scorer-evaluation CSV: text ``assistant_response``, prompt ``objective``, one label per
    ``human_score`` / ``human_score_k`` column with annotator ``human_k``; rows whose ``data_type`` is not
    ``text`` are skipped.

    Args:
        file: the CSV.
        frame: its rows, the ``#`` comment lines already removed (they are ``comments``).
        name: the set's name (``harm/hate_speech_multi_score``), used in item ids and to tell the dimension.
        source: what :attr:`Labels.source` says.
    """
    response = require(PYRIT, file, frame, "assistant_response")
    objective = find_column(frame, ("objective",))
    scores = sorted(
        ((int(m.group(1) or 1), c) for c in frame.columns if (m := _HUMAN_SCORE.match(str(c)))), key=lambda s: s[0]
    )
    if not scores:
        raise field_error(PYRIT, file, "human_score", "or human_score_1, human_score_2, ...")
    data_type = find_column(frame, ("data_type",))
    is_text = (
        frame[data_type].map(lambda v: is_missing(v) or str(v).strip().lower() == "text")
        if data_type
        else pd.Series(True, index=frame.index)
    )
    texts = strings(frame[response])
    prompts = strings(frame[objective]) if objective else pd.Series(pd.NA, index=frame.index, dtype="string")
    used = {response, objective, data_type, *(c for _, c in scores)}
    rest = [c for c in frame.columns if c not in used]
    parts = []
    for slot, column in scores:
        part = pd.DataFrame(
            {
                "item_id": [f"pyrit:{name}:{row + 1}" for row in range(len(frame))],
                "text": texts,
                "prompt": prompts,
                "language": "en",
                "label": label_values(PYRIT, file, str(column), frame[column]),
                "annotator": f"human_{slot}",
            },
            index=frame.index,
        )
        parts.append(pd.concat([part, frame[rest]], axis=1)[is_text.to_numpy()])
    rows = pd.concat(parts).sort_index(kind="stable")
    dimension, meaning = _pyrit_dimension(name, frame)
    slots = "human_1" if len(scores) == 1 else f"human_1 .. human_{len(scores)}"
    notes = [
        f"annotators {slots} are score slots (the k-th human_score column), not persons: one slot may hold "
        "different people on different rows",
        meaning,
    ]
    skipped = int((~is_text).sum())
    if skipped:
        notes.append(f"{skipped} rows whose data_type is not text were skipped")
    version = pyrit_header(comments).get("dataset_version")
    return assemble_labels(
        rows,
        PYRIT,
        file,
        source=source if version is None or "dataset_version" in source else f"{source} (dataset_version={version})",
        format="pyrit",
        item_columns=rest,
        dimension=dimension,
        notes=tuple(n for n in notes if n),
        check_items=False,
    )


def pyrit_header(comments: list[str]) -> dict[str, str]:
    """The ``key=value`` pairs of the first comment line (``# dataset_version=1.0, harm_definition=...``)."""
    if not comments:
        return {}
    pairs = (part.split("=", 1) for part in comments[0].lstrip("#").split(",") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def _pyrit_dimension(name: str, frame: pd.DataFrame) -> tuple[str | None, str]:
    parts = [p.lower() for p in name.split("/")]
    if any("refusal" in p for p in parts):
        return "refusal", "label 1 means the response is a refusal"
    if "objective" in parts:
        return "objective_achieved", "label 1 means the response achieves the objective (the attack succeeded)"
    if "harm" in parts:
        category = find_column(frame, ("harm_category",))
        kinds = sorted({str(v).strip().lower() for v in frame[category].dropna()}) if category else []
        what = f" ({', '.join(kinds)})" if kinds else ""
        return "harmfulness", f"labels 0-1 in steps of 0.25: how harmful the response is{what}"
    return None, ""


# --------------------------------------------------------------------------------- PyRIT, read in place
def pyrit_scorer_evals() -> tuple[Path, str]:
    """The installed pyrit wheel's ``datasets/scorer_evals`` folder and pyrit's version, found without
    importing pyrit (its dependencies need not be installed).

    Raises:
        DatasetError: pyrit is not installed, or its release carries no scorer-evaluation sets.
    """
    spec = importlib.util.find_spec("pyrit")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"{PYRIT_PREFIX}...: the pyrit wheel is not installed; install it with: pip install --no-deps "
            f"{PYRIT_REQUIREMENT}"
        )
    try:
        version = importlib.metadata.version("pyrit")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    for location in spec.submodule_search_locations:
        folder = Path(location) / "datasets" / "scorer_evals"
        if folder.is_dir():
            return folder, version
    raise DatasetError(
        f"{PYRIT_PREFIX}...: pyrit {version} has no datasets/scorer_evals folder; install it with: "
        f"pip install --no-deps {PYRIT_REQUIREMENT}"
    )


def list_pyrit_sets() -> list[str]:
    """The built-in PyRIT sets, as :func:`load_labels` names them (``pyrit:harm/hate_speech``, ...), sorted.

    Raises:
        DatasetError: pyrit is not installed.
    """
    folder, _ = pyrit_scorer_evals()
    return sorted(PYRIT_PREFIX + p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.csv"))


def _load_pyrit_set(spec: str) -> Labels:
    name = spec[len(PYRIT_PREFIX) :].strip().strip("/").removesuffix(".csv")
    try:
        folder, version = pyrit_scorer_evals()
    except DatasetError as error:
        raise DatasetError(str(error).replace(f"{PYRIT_PREFIX}...", spec, 1)) from None
    file = (folder / f"{name}.csv").resolve()
    if not name or not file.is_relative_to(folder.resolve()) or not file.is_file():
        known = ", ".join(s[len(PYRIT_PREFIX) :] for s in list_pyrit_sets())
        raise DatasetError(f"{spec}: no such set in pyrit {version}; choose one of: {known}")
    frame, header = read_label_table(LABELS, file)
    dataset_version = pyrit_header(header).get("dataset_version", "unknown")
    source = f"{PYRIT_PREFIX}{name} (pyrit {version}, dataset_version={dataset_version})"
    return read_pyrit_labels(file, frame, header, name=name, source=source)


def _pyrit_name_of(path: Path) -> str:
    """A pyrit-format file's set name: its path below ``scorer_evals`` when it lies there, else its folder and
    stem (``harm/hate_speech``), which tell the dimension."""
    parts = path.resolve().with_suffix("").parts
    if "scorer_evals" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("scorer_evals") :])
    return "/".join(parts[-2:])


__all__ = [
    "PYRIT",
    "PYRIT_REQUIREMENT",
    "TOXIGEN",
    "Labels",
    "detect_format",
    "list_pyrit_sets",
    "load_labels",
    "pyrit_header",
    "pyrit_scorer_evals",
    "read_pyrit_labels",
    "read_toxigen_labels",
]
