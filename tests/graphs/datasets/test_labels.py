"""Human-labelled audit sets (:mod:`graphs.datasets.labels`): the generic format in CSV, JSONL and Parquet, the
DICES, Civil Comments, ToxiGen and PyRIT importers, the PyRIT sets read in place, and one-line errors."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from graphs.datasets import DatasetError, load_dices
from graphs.datasets.labels import detect_format, list_pyrit_sets, load_labels
from tests.conftest import ROOT
from tests.graphs.datasets.data import CJK, DICES_CSV, one_line

LABELS = ROOT / "tests" / "fixtures" / "labels"
GENERIC_CSV = LABELS / "generic.csv"
CIVIL = LABELS / "civil_comments"
TOXIGEN_CSV = LABELS / "toxigen" / "annotated_test.csv"
PYRIT_SAMPLE = LABELS / "pyrit" / "harm" / "hate_speech_sample.csv"
HAS_PYRIT = importlib.util.find_spec("pyrit") is not None
needs_pyrit = pytest.mark.skipif(
    not HAS_PYRIT, reason="the pyrit wheel is not installed (pip install --no-deps pyrit==1.1.0)"
)


def by_annotator(labels) -> dict[tuple[str, str], float]:
    """(text, annotator) → label, whatever the item ids."""
    merged = labels.labels.merge(labels.texts[["item_id", "text"]], on="item_id")
    return {(row.text, row.annotator): row.label for row in merged.itertuples()}


# ------------------------------------------------------------------------------------- generic format
def test_generic_csv() -> None:
    labels = load_labels(GENERIC_CSV)
    assert labels.format == "generic" and labels.dimension is None and labels.source == str(GENERIC_CSV)
    assert labels.n_items == 4 and labels.n_labels == 11 and labels.n_dropped == 1  # g3's third label is empty
    assert list(labels.texts.columns[:4]) == ["item_id", "text", "prompt", "language"]
    assert list(labels.labels.columns[:3]) == ["item_id", "label", "annotator"]
    assert labels.demographic_columns == ("annotator_gender", "annotator_age")
    assert set(labels.labels["annotator_gender"]) == {"woman", "man"}
    assert "topic" in labels.texts.columns and "confidence" in labels.labels.columns  # per item / per label
    assert labels.labels["label"].between(0, 1).all() and set(labels.labels["label"]) == {0.0, 0.5, 1.0}
    assert set(labels.labels["annotator"]) == {"a1", "a2", "a3"}
    chinese = labels.texts[labels.texts["text"].map(lambda t: bool(CJK.search(t)))]
    assert list(chinese["language"]) == ["zh"] and set(labels.texts["language"]) == {"en", "zh"}
    assert labels.labels.groupby("item_id").size().to_dict() == {"g1": 3, "g2": 3, "g3": 2, "g4": 3}
    assert labels.texts["prompt"].notna().all()


def test_generic_jsonl_and_parquet_read_like_the_csv() -> None:
    csv = load_labels(GENERIC_CSV)
    for path in (LABELS / "generic.jsonl", LABELS / "generic.parquet"):
        other = load_labels(path)
        assert by_annotator(other) == by_annotator(csv), path
        assert other.n_dropped == 1 and other.n_items == 4
        assert dict(zip(other.texts["text"], other.texts["language"], strict=True)) == dict(
            zip(csv.texts["text"], csv.texts["language"], strict=True)
        )
    jsonl = load_labels(LABELS / "generic.jsonl")  # no item_id: items are told apart by prompt and text
    assert jsonl.texts["item_id"].str.startswith("sha256:").all() and jsonl.texts["item_id"].is_unique
    assert jsonl.demographic_columns == ("annotator_gender",)
    assert load_labels(LABELS / "generic.jsonl").texts["item_id"].tolist() == jsonl.texts["item_id"].tolist()


def test_generic_without_annotators_and_with_named_demographics(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("text,label,rater_country\nfine text,0,NZ\nfine text,1,IN\nbad text,1,NZ\n", encoding="utf-8")
    labels = load_labels(path)
    assert labels.n_items == 2 and labels.labels["annotator"].isna().all()
    assert labels.labels["annotator"].map(lambda a: a is None).all()
    assert labels.demographic_columns == () and "rater_country" in labels.labels.columns
    named = load_labels(path, demographic_columns=["rater_country"])
    assert named.demographic_columns == ("rater_country",)
    with pytest.raises(DatasetError, match="no field 'rater_age'") as error:
        load_labels(path, demographic_columns=["rater_age"])
    assert str(path) in one_line(error)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("prompt,label\nhi,1\n", "no field 'text'"),
        ("text,score\nhi,1\n", "no field 'label'"),
        ("text,label\nhi,1\nho,1.5\n", "field 'label' in row 2 is not a number in \\[0, 1\\]: '1.5'"),
        ("text,label\nhi,-1\n", "field 'label' in row 1"),
        ("text,label\nhi,yes please\n", "field 'label' in row 1 is not a number"),
        ("", "the file is empty"),
        ("text,label\n", "no labelled rows"),
        ("text,label\nhi,\n", "no labelled rows"),
        ("item_id,text,label\nx,one,1\nx,two,0\n", "field 'item_id': 'x' has two different texts \\(rows 1 and 2\\)"),
        ("item_id,text,label\n,one,1\n", "field 'item_id' is empty in row 1"),
    ],
)
def test_generic_errors_name_the_file_and_field(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=expected) as error:
        load_labels(path)
    assert str(path) in one_line(error)


def test_bad_json_suffix_format_and_missing_file(tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2 is not valid JSON") as error:
        load_labels(jsonl)
    assert str(jsonl) in one_line(error)
    xlsx = tmp_path / "labels.xlsx"
    xlsx.write_bytes(b"PK")
    with pytest.raises(DatasetError, match="expected a .csv"):
        load_labels(xlsx)
    with pytest.raises(DatasetError, match="file not found") as error:
        load_labels(tmp_path / "missing.csv")
    assert "missing.csv" in one_line(error)
    with pytest.raises(DatasetError, match="unknown format 'excel'"):
        load_labels(GENERIC_CSV, format="excel")
    with pytest.raises(DatasetError, match="is a folder"):
        load_labels(tmp_path)


def test_reads_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="regular file"):
        load_labels(fifo)  # a FIFO would block a plain read forever
    monkeypatch.setenv("TRIBUNAL_MAX_INPUT_BYTES", "100")
    with pytest.raises(DatasetError, match="TRIBUNAL_MAX_INPUT_BYTES") as error:
        load_labels(GENERIC_CSV)
    assert str(GENERIC_CSV) in one_line(error)


def test_detect_format_from_the_real_column_names() -> None:
    assert detect_format(["text", "label"]) == "generic"
    assert detect_format(pd.read_csv(DICES_CSV, nrows=0).columns) == "dices"
    assert detect_format(["id", "worker", "toxic", "severe_toxic"]) == "civil_comments"
    assert detect_format(["id", "comment_text", "toxicity"]) == "civil_comments"
    assert detect_format(["id", "target", "comment_text"]) == "civil_comments"
    assert detect_format(["text", "target_group", "toxicity_ai", "toxicity_human"]) == "toxigen"
    assert detect_format(["objective", "assistant_response", "human_score", "data_type"]) == "pyrit"
    assert detect_format(["prompt", "response"]) is None


# ---------------------------------------------------------------------------------------------- DICES
def test_dices_ratings_become_per_rater_labels() -> None:
    labels = load_labels(DICES_CSV)
    ratings = load_dices(DICES_CSV)
    assert labels.format == "dices" and labels.dimension == "harmfulness"
    assert labels.n_items == 4 and labels.n_labels == 12 and labels.n_dropped == 0
    assert labels.texts["item_id"].str.startswith("dices-350:").all()
    verdict = {"Yes": 1.0, "Unsure": 0.5, "No": 0.0}
    expected = {(r.response, r.rater_id): verdict[r.q_overall] for r in ratings.itertuples()}
    assert by_annotator(labels) == expected
    assert set(labels.texts["prompt"]) == set(ratings["context"]) and set(labels.texts["language"]) == {"en"}
    assert labels.demographic_columns == ("annotator_gender", "annotator_race", "annotator_age", "annotator_education")
    assert set(labels.labels["annotator_gender"]) == {"Woman", "Man"}  # DICES-350 has no locale: not listed
    assert {"degree_of_harm", "safety_gold"} <= set(labels.texts.columns)
    assert {"Q2_harmful_content_overall", "Q3_bias_overall"} <= set(labels.labels.columns)


def test_dices_unknown_verdict_and_missing_field(tmp_path: Path) -> None:
    frame = pd.read_csv(DICES_CSV, dtype=str, keep_default_na=False)
    frame.loc[2, "Q_overall"] = "Maybe"
    bad = tmp_path / "diverse_safety_adversarial_dialog_350.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(DatasetError, match="field 'Q_overall' in row 3 is not Yes, No or Unsure: 'Maybe'") as error:
        load_labels(bad)
    assert str(bad) in one_line(error)
    frame.drop(columns=["response"]).to_csv(bad, index=False)
    with pytest.raises(DatasetError, match="no field 'response'"):
        load_labels(bad, format="dices")


# -------------------------------------------------------------------------------------- Civil Comments
def test_civil_comments_per_worker_from_a_folder_or_the_annotations_file() -> None:
    comments = pd.read_csv(CIVIL / "all_data.csv", dtype=str)
    for spec in (CIVIL, CIVIL / "toxicity_individual_annotations.csv"):
        labels = load_labels(spec)
        assert labels.format == "civil_comments" and labels.dimension == "toxicity"
        assert labels.n_items == 4 and labels.n_labels == 11
        assert labels.n_dropped == 1 and any("missing from all_data.csv" in n for n in labels.notes)  # id 5999
        assert set(labels.labels["annotator"]) == {"101", "102", "103", "104"}
        assert set(labels.labels["label"]) == {0.0, 1.0}
        means = labels.labels.groupby("item_id")["label"].mean()
        aggregate = dict(zip("civil:" + comments["id"], comments["toxicity"].astype(float), strict=True))
        assert means.to_dict() == pytest.approx(aggregate, abs=1e-6)
        assert "toxicity" in labels.texts.columns and "annotation_insult" in labels.labels.columns


def test_civil_comments_with_comments_named_or_missing(tmp_path: Path) -> None:
    annotations = tmp_path / "toxicity_individual_annotations.csv"
    shutil.copy(CIVIL / "toxicity_individual_annotations.csv", annotations)
    with pytest.raises(DatasetError, match="the annotations hold no text") as error:
        load_labels(annotations)
    assert str(annotations) in one_line(error)
    named = load_labels(annotations, comments=CIVIL / "all_data.csv")
    assert named.n_labels == 11
    kaggle = load_labels(annotations, comments=LABELS / "jigsaw_train.csv")  # text under comment_text too
    assert by_annotator(kaggle) == by_annotator(named)


@pytest.mark.parametrize("name", ["civil_comments/all_data.csv", "jigsaw_train.csv"])
def test_civil_comments_aggregate_alone(name: str) -> None:
    labels = load_labels(LABELS / name)
    assert labels.format == "civil_comments" and labels.dimension == "toxicity"
    assert labels.n_items == labels.n_labels == 4
    assert labels.labels["annotator"].map(lambda a: a is None).all()
    assert labels.notes and "aggregated" in labels.notes[0]
    assert labels.labels["label"].tolist() == pytest.approx([0.0, 2 / 3, 2 / 3, 0.0], abs=1e-6)


# --------------------------------------------------------------------------------------------- ToxiGen
def test_toxigen_aggregated_human_scores(tmp_path: Path) -> None:
    labels = load_labels(TOXIGEN_CSV)
    assert labels.format == "toxigen" and labels.dimension == "toxicity"
    assert labels.n_items == 3 and labels.n_dropped == 1  # the last row has no toxicity_human
    assert labels.labels["label"].tolist() == pytest.approx([(4 / 3 - 1) / 4, (13 / 3 - 1) / 4, 0.5])
    assert labels.labels["annotator"].map(lambda a: a is None).all()
    assert "aggregated" in labels.notes[0] and "not per annotator" in labels.notes[0]
    assert labels.texts["target_group"].tolist() == ["asian", "mexican", "jewish"]
    assert "toxicity_ai" in labels.texts.columns
    frame = pd.read_csv(TOXIGEN_CSV, dtype=str)
    frame.loc[1, "toxicity_human"] = "6"
    bad = tmp_path / "annotated_train.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(DatasetError, match="field 'toxicity_human' in row 2 is not a number in \\[1, 5\\]"):
        load_labels(bad)


# ---------------------------------------------------------------------------------- PyRIT-format files
def test_a_pyrit_format_file_outside_the_wheel() -> None:
    labels = load_labels(PYRIT_SAMPLE)
    assert labels.format == "pyrit" and labels.dimension == "harmfulness"
    assert "dataset_version=1.0" in labels.source
    assert labels.n_items == 4 and labels.n_labels == 11 and labels.n_dropped == 1  # image row skipped, one blank
    assert any("data_type is not text" in note for note in labels.notes)
    assert any("not persons" in note for note in labels.notes)
    assert set(labels.labels["annotator"]) == {"human_1", "human_2", "human_3"}
    assert "Newcomers are parasites who ruin everything # sad" in set(labels.texts["text"])  # '#' inside a cell
    assert labels.texts["prompt"].notna().all() and "harm_category" in labels.texts.columns


def test_pyrit_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyrit" else real(name, *a))
    with pytest.raises(DatasetError) as error:
        load_labels("pyrit:harm/hate_speech")
    assert one_line(error) == (
        "pyrit:harm/hate_speech: the pyrit wheel is not installed; install it with: pip install --no-deps pyrit==1.1.0"
    )
    with pytest.raises(DatasetError, match="pip install --no-deps pyrit==1.1.0"):
        list_pyrit_sets()


@needs_pyrit
def test_pyrit_sets_read_in_place() -> None:
    names = list_pyrit_sets()
    assert {"pyrit:harm/hate_speech_multi_score", "pyrit:refusal_scorer/refusal"} <= set(names)
    assert all(name.startswith("pyrit:") and not name.endswith(".csv") for name in names)
    multi = load_labels("pyrit:harm/hate_speech_multi_score")
    assert multi.format == "pyrit" and multi.dimension == "harmfulness"
    assert multi.source.startswith("pyrit:harm/hate_speech_multi_score (pyrit ") and "dataset_version=" in multi.source
    assert 190 <= multi.n_items <= 210
    assert set(multi.labels.groupby("item_id").size()) == {3}
    assert set(multi.labels["label"]) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(multi.labels["annotator"]) == {"human_1", "human_2", "human_3"}
    assert multi.texts["text"].str.len().gt(0).all() and multi.texts["prompt"].notna().all()
    refusal = load_labels("pyrit:refusal_scorer/refusal")
    assert refusal.dimension == "refusal" and set(refusal.labels["label"]) == {0.0, 1.0}
    assert set(refusal.labels["annotator"]) == {"human_1"} and refusal.n_items >= 100
    assert load_labels("pyrit:objective/hate_speech").dimension == "objective_achieved"
    for name in names:  # every set reads, each item with as many labels as the file has score columns
        assert load_labels(name).n_labels > 0, name


@needs_pyrit
@pytest.mark.parametrize("spec", ["pyrit:harm/no_such_set", "pyrit:../../__init__", "pyrit:"])
def test_unknown_pyrit_set(spec: str) -> None:
    with pytest.raises(DatasetError, match="no such set in pyrit") as error:
        load_labels(spec)
    assert "harm/hate_speech_multi_score" in one_line(error)


@needs_pyrit
def test_reading_pyrit_sets_never_imports_pyrit() -> None:
    code = (
        "import sys; from graphs.datasets.labels import load_labels, list_pyrit_sets; "
        "[load_labels(n) for n in list_pyrit_sets()]; print('pyrit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
