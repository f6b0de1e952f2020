"""DICES: the DICES-350 and DICES-990 spellings, a folder with both sets, and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from graphs.datasets import DICES_COLUMNS, DICES_DEGREES_OF_HARM, DatasetError, load_dices
from tests.graphs.datasets.data import CJK, DICES_CSV, one_line


def test_dices_csv_in_the_release_format() -> None:
    frame = load_dices(DICES_CSV)
    assert tuple(frame.columns[: len(DICES_COLUMNS)]) == DICES_COLUMNS
    assert len(frame) == 12 and frame["item_id"].nunique() == 4 and frame["rater_id"].nunique() == 3
    assert set(frame["q_overall"]) == {"Yes", "No", "Unsure"}
    assert set(frame["degree_of_harm"]) == set(DICES_DEGREES_OF_HARM)
    assert set(frame["safety_gold"]) == {"Yes", "No"}
    assert frame["rater_race_raw"].notna().all()  # from rater_raw_race, DICES-350's spelling
    assert frame["rater_locale"].isna().all() and set(frame["dices_set"]) == {"350"}
    assert frame["context"].map(lambda text: bool(CJK.search(text))).any()
    assert "Q2_harmful_content_overall" in frame.columns


def test_dices_990_spelling_and_a_folder_with_both_sets(tmp_path: Path) -> None:
    source = pd.read_csv(DICES_CSV, dtype=str, keep_default_na=False)
    nine_ninety = source.drop(columns=["safety_gold"]).rename(columns={"rater_raw_race": "rater_race_raw"})
    nine_ninety["rater_locale"] = "IN"
    (tmp_path / "350").mkdir()
    (tmp_path / "990").mkdir()
    shutil.copy(DICES_CSV, tmp_path / "350" / "diverse_safety_adversarial_dialog_350.csv")
    nine_ninety.to_csv(tmp_path / "990" / "diverse_safety_adversarial_dialog_990.csv", index=False)

    frame = load_dices(tmp_path / "990" / "diverse_safety_adversarial_dialog_990.csv")
    assert frame["safety_gold"].isna().all() and set(frame["rater_locale"]) == {"IN"}
    assert set(frame["dices_set"]) == {"990"} and frame["rater_race_raw"].notna().all()

    both = load_dices(tmp_path)
    assert len(both) == 24 and set(both["dices_set"]) == {"350", "990"}
    assert set(load_dices(tmp_path, split="990")["dices_set"]) == {"990"}


def test_dices_missing_file_and_bad_field(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        load_dices(tmp_path / "dices.csv")
    message = one_line(error)
    assert "dices.csv" in message and "github.com/google-research-datasets/dices-dataset" in message

    broken = tmp_path / "broken.csv"
    pd.read_csv(DICES_CSV, dtype=str).drop(columns=["Q_overall"]).to_csv(broken, index=False)
    with pytest.raises(DatasetError, match="no field 'Q_overall'") as error:
        load_dices(broken)
    assert str(broken) in one_line(error)
