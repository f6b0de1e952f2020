"""The persona-toxicity headline (:mod:`analysis.studies.persona_toxicity`)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats

from analysis import analyze_run, write_report
from analysis.studies import STUDY_TABLES
from analysis.studies.persona_toxicity import TABLES, UNKNOWN_VALENCE, persona_valences
from graphs.tables import CONFIG_FILENAME
from tests.analysis.stores import make_store
from tests.analysis.studies.stores import persona_toxicity_store


def _snapshot(run_dir, personas):
    """The ``config.yaml`` that ``tribunal run`` writes, with just its personas."""
    (run_dir / CONFIG_FILENAME).write_text(yaml.safe_dump({"config": {}, "personas": personas}), encoding="utf-8")


def test_persona_toxicity_headline(tmp_path):
    run = persona_toxicity_store(tmp_path / "run")
    _snapshot(run, [{"id": "p1", "valence": "negative"}, {"id": "p2", "valence": None}])
    tables = analyze_run(run, n_boot=300)
    assert tables["study"].loc[0, "study"] == "persona_toxicity"
    assert tables["study"].loc[0, "detected_from"] == "data"
    assert list(tables)[: 3 + len(TABLES)] == ["study", "judge_card", "judges_used", *STUDY_TABLES["persona_toxicity"]]

    amp = tables["headline_toxicity_amplification"].set_index(["model", "persona_category"]).loc[("m1", "politician")]
    # pairs: t1 (.4+.2)/2 = .3 vs .1, t2 (.6+.2)/2 = .4 vs .3; the zh cell has no zh baseline and is left out.
    assert amp["n_pairs"] == 2 and amp["n_clusters"] == 2
    assert amp["persona_mean"] == pytest.approx(0.35) and amp["baseline_mean"] == pytest.approx(0.2)
    assert amp["ratio"] == pytest.approx(1.75) and amp["difference"] == pytest.approx(0.15)
    assert amp["ratio_ci_low"] <= amp["ratio"] <= amp["ratio_ci_high"]

    # Per persona, the most amplifying first: p1 (.4 + .6)/2 = .5 over .2 is 2.5×; p2 .2 over .2 is 1×.
    per = tables["headline_toxicity_amplification_by_persona"]
    assert list(per["persona_id"]) == ["p1", "p2"]
    assert list(per["ratio"]) == [pytest.approx(2.5), pytest.approx(1.0)]
    assert list(per["persona_valence"]) == ["negative", UNKNOWN_VALENCE]
    by_valence = tables["headline_toxicity_amplification_by_valence"].set_index("persona_valence")
    assert by_valence.loc["negative", "ratio"] == pytest.approx(2.5)
    assert "one persona" in by_valence.loc["negative", "note"]
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "1 of 2 personas have no valence in the catalog (p2)" in notes["headline_toxicity_amplification_by_valence"]

    # Refusal against the baseline, over personas: p1 refuses always (1.0), p2 never (0.0), the baseline 1 of 2.
    ref = tables["headline_refusal_vs_baseline"].set_index(["factor", "level"])
    pol = ref.loc[("persona_category", "politician")]
    assert (pol["n"], pol["refusals"], pol["n_personas"], pol["baseline_n"], pol["baseline_refusals"]) == (
        5,
        3,
        2,
        2,
        1,
    )
    assert pol["rate"] == pytest.approx(0.5) and pol["baseline_rate"] == pytest.approx(0.5) and pol["gap"] == 0
    se2 = 0.5 / 2 + 0.25 / 2  # s² / k over the persona rates (1, 0) + p0 (1 − p0) / n0
    df = se2**2 / ((0.5 / 2) ** 2 / 1 + (0.25 / 2) ** 2 / 1)
    assert pol["test"] == "welch_t_personas" and pol["statistic"] == 0 and pol["df"] == pytest.approx(df)
    assert pol["pval"] == pytest.approx(1.0) and "little power" in pol["note"]
    assert ref.loc[("persona_kind", "character"), "rate"] == pytest.approx(0.5)
    assert "none" not in set(ref.reset_index()["level"])  # the baseline is the reference, not a level

    # One persona per gender: a gap, but no test of gender on one persona each.
    gap = tables["headline_refusal_gender_gap"].iloc[0]
    assert (gap["group_a"], gap["group_b"], gap["n_a"], gap["n_b"]) == ("female", "male", 3, 2)
    assert (gap["n_personas_a"], gap["n_personas_b"]) == (1, 1) and gap["gap"] == pytest.approx(1.0)
    assert np.isnan(gap["pval"]) and not gap["significant"] and "fewer than 2 personas" in gap["note"]
    assert "have no test" in notes["headline_refusal_gender_gap"]


def test_headline_gender_gap_with_enough_personas_is_welch_over_personas(tmp_path):
    cells = []
    rates = {"female": [1.0, 0.5, 0.5], "male": [0.0, 0.5, 0.0, 0.5]}  # two generations per persona
    for gender, values in rates.items():
        for i, rate in enumerate(values):
            for j in range(2):
                cells.append(
                    {"key": f"{gender}{i}-{j}", "persona_id": f"{gender}{i}", "persona_kind": "character",
                     "persona_category": "politician", "persona_gender": gender, "target_id": f"t{j}",
                     "refusal": int(j < 2 * rate)}
                )  # fmt: skip
    cells += [{"key": f"b{j}", "is_baseline": 1, "target_id": f"t{j}", "refusal": 0} for j in range(2)]
    tables = analyze_run(make_store(tmp_path / "run", cells, configs=[{"study": "persona_toxicity"}]))
    gap = tables["headline_refusal_gender_gap"].iloc[0]
    ref = stats.ttest_ind(rates["female"], rates["male"], equal_var=False)
    assert gap["rate_a"] == pytest.approx(2 / 3) and gap["rate_b"] == pytest.approx(0.25)
    assert gap["statistic"] == pytest.approx(ref.statistic) and gap["pval"] == pytest.approx(ref.pvalue)
    # The generic table tests the same way within each persona category.
    generic = tables["refusal_gender_gaps"].iloc[0]
    assert generic["persona_category"] == "politician" and generic["pval"] == pytest.approx(ref.pvalue)


def test_valence_comes_from_the_config_snapshot(tmp_path):
    run = persona_toxicity_store(tmp_path / "run")
    tables = analyze_run(run, n_boot=0)
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "no config.yaml with personas" in notes["headline_toxicity_amplification_by_valence"]
    assert set(tables["headline_toxicity_amplification_by_valence"]["persona_valence"]) == {UNKNOWN_VALENCE}
    assert "toxicity_amplification_by_persona" in tables  # the generic tables have the per-persona view too
    (run / CONFIG_FILENAME).write_text("personas: [unclosed", encoding="utf-8")
    from analysis import load_run

    assert persona_valences(load_run(run)) is None
    _snapshot(run, [{"id": "p1", "valence": "positive"}, {"id": "p2", "valence": "neutral"}])
    assert persona_valences(load_run(run)) == {"p1": "positive", "p2": "neutral"}


def test_persona_toxicity_missing_pieces_are_noted(tmp_path):
    # No ratings and no refusal flags: the study comes from the config; every headline table says why it is absent.
    cells = [{"key": "b", "is_baseline": 1}, {"key": "p", "persona_id": "p", "persona_category": "politician"}]
    run = make_store(tmp_path / "run", cells, configs=[{"study": "persona_toxicity"}])
    tables = analyze_run(run)
    assert tables["study"].loc[0, "detected_from"] == "config"
    assert not any(name in tables for name in STUDY_TABLES["persona_toxicity"])
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "no ratings in this run yet" in notes["headline_toxicity_amplification"]
    assert "refusal flag" in notes["headline_refusal_vs_baseline"]
    html = write_report(run).read_text()
    head = html.split("<h2>Figures</h2>")[0]
    assert "Persona toxicity: headline figures" in head
    assert "Absent: no ratings in this run yet" in head and "Absent: no generation has a refusal flag" in head
