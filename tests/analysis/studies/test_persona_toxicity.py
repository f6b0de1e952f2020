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
    # the amplification and refusal tables, per persona second; this run has no mitigation loop: its tables are absent
    assert list(tables)[: 3 + 5] == ["study", "judge_card", "judges_used", *STUDY_TABLES["persona_toxicity"][:5]]
    assert not any(name in tables for name in TABLES[5:])

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


#: The tiny twin's design (configs/persona_toxicity_zh_tiny.yaml): its personas and the pairs each has with the
#: baseline (3 target groups × 3 templates × 1 language).
TINY_PERSONAS = {"good_person": "basic", "bad_person": "basic", "progressive_congresswoman": "politician",
                 "talk_radio_host": "journalist"}  # fmt: skip
TINY_PAIRS = 9


def check_tiny_twin_headline(tables: dict[str, list[dict]], html: str) -> None:
    """The rows a researcher cites from the tiny twin's run (``tribunal analyze --json`` and the report):
    amplification per persona with its CIs, per category with the personas it rests on, and the mitigation
    figure or why there is none. Called by tests/test_study_configs.py, which runs the twin once."""
    per = tables["headline_toxicity_amplification_by_persona"]
    assert {row["persona_id"]: row["persona_category"] for row in per} == TINY_PERSONAS
    ratios = [row["ratio"] for row in per]
    assert ratios == sorted(ratios, reverse=True), "the most amplifying persona first"
    baselines = {round(row["baseline_mean"], 12) for row in per}
    assert len(baselines) == 1, "every persona is compared with the same no-persona baseline"
    for row in per:
        assert 1 <= row["n_pairs"] <= TINY_PAIRS
        assert row["difference_ci_low"] <= row["difference"] <= row["difference_ci_high"]
        assert row["difference"] == pytest.approx(row["persona_mean"] - row["baseline_mean"])
        if row["ratio"] is not None:
            assert row["ratio"] == pytest.approx(row["persona_mean"] / row["baseline_mean"])
            assert row["ratio_ci_low"] <= row["ratio"] <= row["ratio_ci_high"]
    by_category = {row["persona_category"]: row for row in tables["headline_toxicity_amplification"]}
    assert set(by_category) == set(TINY_PERSONAS.values())
    assert by_category["basic"]["n_clusters"] == 2 and "few personas" in by_category["basic"]["note"]
    assert by_category["journalist"]["n_clusters"] == 1 and "one persona" in by_category["journalist"]["note"]
    # the mitigation figure, or a note saying why there is none; the report says who gated and who measured
    notes = {row["table"]: row["reason"] for row in tables.get("headline_notes", [])}
    assert tables.get("headline_mitigation_success") or "headline_mitigation_success" in notes
    panels = {row["role"]: row["who"] for row in tables["mitigation_panels"]}
    assert (panels["gate"], panels["measure (held out)"], panels["critic"]) == (
        "profanity",
        "minilm-toxicity",
        "smollm2",
    )
    headline = html[html.index("id='headline'") :]
    assert (
        headline.index("<h3>headline_toxicity_amplification</h3>")
        < headline.index("<h3>headline_toxicity_amplification_by_persona</h3>")
        < headline.index("<h3>headline_refusal_vs_baseline</h3>")
    )


def test_the_tiny_twin_check_reads_a_stored_analysis(tmp_path):
    # the check above on a hand-made analysis of the twin's shape, so that it is known to fail on a wrong one
    row = {"dimension": "toxicity", "model": "smollm2", "persona_valence": "neutral", "n_pairs": 9,
           "persona_mean": 0.2, "baseline_mean": 0.25, "difference": -0.05, "difference_ci_low": -0.1,
           "difference_ci_high": 0.0, "ratio": 0.8, "ratio_ci_low": 0.6, "ratio_ci_high": 1.0, "note": ""}  # fmt: skip
    per = [{**row, "persona_id": pid, "persona_category": cat} for pid, cat in TINY_PERSONAS.items()]
    categories = [
        {**row, "persona_category": "basic", "n_clusters": 2, "note": "few personas (2): the CI is wide"},
        {**row, "persona_category": "politician", "n_clusters": 1, "note": "one persona: the CI covers the prompts"},
        {**row, "persona_category": "journalist", "n_clusters": 1, "note": "one persona: the CI covers the prompts"},
    ]
    tables = {
        "headline_toxicity_amplification": categories,
        "headline_toxicity_amplification_by_persona": per,
        "headline_notes": [{"table": "headline_mitigation_success", "reason": "the loop rewrote nothing"}],
        "mitigation_panels": [{"role": "critic", "who": "smollm2"}, {"role": "gate", "who": "profanity"},
                              {"role": "measure (held out)", "who": "minilm-toxicity"}],
    }  # fmt: skip
    html = "<section id='headline'>" + "".join(f"<h3>{name}</h3>" for name in STUDY_TABLES["persona_toxicity"])
    check_tiny_twin_headline(tables, html)
    with pytest.raises(AssertionError):
        check_tiny_twin_headline({**tables, "headline_toxicity_amplification_by_persona": per[:3]}, html)
    with pytest.raises(AssertionError):
        wrong = [{**per[0], "ratio_ci_high": 0.7}, *per[1:]]
        check_tiny_twin_headline({**tables, "headline_toxicity_amplification_by_persona": wrong}, html)
