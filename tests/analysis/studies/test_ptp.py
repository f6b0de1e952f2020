"""The PolygloToxicityPrompts headline (:mod:`analysis.studies.ptp`)."""

from __future__ import annotations

import sqlite3

import pytest

from analysis import analyze_run, write_report
from tests.analysis.studies.stores import ptp_store


def test_ptp_headline(tmp_path):
    run = ptp_store(tmp_path / "run", {"big": 7.0, "small": 0.5})
    tables = analyze_run(run)
    assert tables["study"].loc[0, "study"] == "ptp_multilingual"  # config study null: inferred
    by_lang = tables["headline_ptp_by_language"]
    assert list(zip(by_lang["model"], by_lang["language"], strict=True)) == [
        ("small", "de"),
        ("small", "en"),
        ("big", "de"),
        ("big", "en"),
    ]  # sorted by size
    row = by_lang.set_index(["model", "language"]).loc[("small", "en")]
    # maxima .6 and .4: EMT .5; one prompt reaches .5; average 1.8 / 6
    assert row["expected_max_toxicity"] == pytest.approx(0.5)
    assert row["toxicity_probability"] == pytest.approx(0.5)
    assert row["average_toxicity"] == pytest.approx(1.8 / 6)
    assert row["params_b"] == 0.5 and row["continuations_per_prompt"] == pytest.approx(3)
    de = by_lang.set_index(["model", "language"]).loc[("small", "de")]
    assert (de["n_generations"], de["n_scored"]) == (6, 5)
    assert de["expected_max_toxicity"] == pytest.approx((0.9 + 0.7) / 2) and de["toxicity_probability"] == 1.0
    size = tables["headline_ptp_by_size"]
    assert list(size["model"]) == ["small", "big"] and list(size["params_b"]) == [0.5, 7.0]
    big = size.set_index("model").loc["big"]
    # four prompt × language units with maxima .2, .1, .3, .6
    assert big["n_prompts"] == 4 and big["n_languages"] == 2
    assert big["expected_max_toxicity"] == pytest.approx((0.2 + 0.1 + 0.3 + 0.6) / 4)
    assert big["toxicity_probability"] == pytest.approx(0.25)


def test_ptp_without_sizes_notes_it(tmp_path):
    run = ptp_store(tmp_path / "run", {"big": None, "small": None})
    tables = analyze_run(run)
    assert "headline_ptp_by_language" in tables and "headline_ptp_by_size" not in tables
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "model sizes are unknown" in notes["headline_ptp_by_size"]


def _add_rater(run, rater: str, scale: str, score: float | None = None) -> None:
    """Set the scale of the existing ``tox`` ratings to probability and copy them as ``rater`` on ``scale``."""
    with sqlite3.connect(run / "transcripts.sqlite") as conn:
        conn.execute("UPDATE ratings SET scale = 'probability'")
        conn.execute(
            "INSERT INTO ratings (rating_key, generation_key, rater, rater_name, dimension, score, scale, outcome, "
            "created_at) SELECT rating_key || ?, generation_key, ?, ?, dimension, coalesce(?, score), ?, outcome, "
            "created_at FROM ratings WHERE score IS NOT NULL",
            (rater, rater, rater, score, scale),
        )


def test_ptp_refuses_emt_and_probability_when_the_panel_mixes_scales(tmp_path):
    run = ptp_store(tmp_path / "run", {"big": 7.0, "small": 0.5})
    _add_rater(run, "judge", "1-5", 0.5)  # a 1–5 judge's "moderately" (3 of 5) is 0.5
    tables = analyze_run(run)
    by_lang = tables["headline_ptp_by_language"]
    assert by_lang["expected_max_toxicity"].isna().all() and by_lang["toxicity_probability"].isna().all()
    assert by_lang["average_toxicity"].notna().all() and by_lang["note"].str.contains("different kinds").all()
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "probability: tox (probability); rating: judge (1-5)" in notes["headline_ptp_by_language"]
    html = write_report(run).read_text()
    assert "Absent: the scores average raters on different kinds of scale" in html.split("<h2>Figures</h2>")[0]


def test_ptp_with_one_kind_of_scale_is_computed(tmp_path):
    run = ptp_store(tmp_path / "run", {"big": 7.0, "small": 0.5})
    _add_rater(run, "flags", "binary")  # probabilities and 0/1 labels are both probability-like
    tables = analyze_run(run)
    by_lang = tables["headline_ptp_by_language"]
    assert by_lang["expected_max_toxicity"].notna().all() and (by_lang["note"] == "").all()
    assert "headline_ptp_by_language" not in set(tables.get("headline_notes", {"table": []})["table"])
