"""Dispatching to the study (:mod:`analysis.studies.headline`): forced, switched off, unknown, none."""

from __future__ import annotations

import pytest

from analysis import analyze_run, load_run, write_report
from analysis.studies import HEADLINE_DESCRIPTIONS, STUDIES, STUDY_TABLES, STUDY_TITLES, headline_figure, study_headline
from tests.analysis.stores import make_store
from tests.analysis.studies.stores import persona_toxicity_store


def test_no_study_keeps_the_generic_report(tmp_path):
    run = make_store(tmp_path / "run", [{"key": "a", "persona_id": "p"}])
    tables = analyze_run(run)
    assert tables["study"].loc[0, "study"] is None and list(tables)[1:4] == ["judge_card", "judges_used", "generations"]
    assert not any(name.startswith("headline_") for name in tables)
    html = write_report(run).read_text()
    assert "headline figures" not in html and "Study: none recognised" in html
    # A study can be forced or switched off; an unknown one is an error.
    forced = analyze_run(persona_toxicity_store(tmp_path / "p"), study=None)
    assert forced["study"].loc[0, "study"] is None and "headline_toxicity_amplification" not in forced
    with pytest.raises(ValueError, match="unknown study"):
        study_headline(load_run(run), "bogus")


def test_every_study_has_its_tables_title_descriptions_and_figure(tmp_path):
    assert set(STUDY_TABLES) == set(STUDY_TITLES) == set(STUDIES)
    assert set(HEADLINE_DESCRIPTIONS) == {name for names in STUDY_TABLES.values() for name in names}
    tables = study_headline(load_run(make_store(tmp_path / "run", [{"key": "a"}])), None)
    assert list(tables) == ["study"] and headline_figure(tables) is None
    for study in STUDIES:  # no data: every study still gives its figure, absent with a reason
        head = study_headline(load_run(make_store(tmp_path / study, [{"key": "a"}])), study)
        title, png, caption = headline_figure(head)
        assert png is None and caption.startswith("Absent: ")
