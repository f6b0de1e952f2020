"""The Demo-SafetyBench headline (:mod:`analysis.studies.demo_safetybench`)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from analysis import analyze_run, icc, krippendorff_alpha, render_tables, tables_to_json, write_report
from tests.analysis.stores import make_store
from tests.analysis.studies.stores import SF, demo_store


def _long(y: np.ndarray) -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame({"unit": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n), "score": y.ravel()})


def notes_of(tables: dict[str, pd.DataFrame], table: str) -> list[str]:
    notes = tables["headline_notes"]
    return notes.loc[notes["table"] == table, "reason"].tolist()


def test_demo_safetybench_headline(tmp_path):
    run = demo_store(tmp_path / "run")
    tables = analyze_run(run)
    assert tables["study"].loc[0, "detected_from"] == "config"
    agr = tables["headline_agreement"]
    assert set(agr["dimension"]) == {"harmfulness"}  # toxicity had one framed rater: noted, not computed
    agr = agr.set_index("metric")
    ref = icc(_long(SF), "unit", "rater", "score").set_index("Type")
    for form in ("ICC2", "ICC2k", "ICC3"):
        assert agr.loc[form, "value"] == pytest.approx(ref.loc[form, "ICC"], abs=1e-12)
    assert round(agr.loc["ICC2", "value"], 2) == 0.29  # Shrout & Fleiss's published ICC(2,1)
    assert agr.loc["alpha_interval", "value"] == pytest.approx(krippendorff_alpha(_long(SF), "unit", "rater", "score"))
    assert agr.loc["ICC2", "n_units"] == 6 and agr.loc["ICC2", "n_raters"] == 4
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "toxicity: only one framed rater" in notes["headline_agreement"]

    ds = tables["headline_demographic_sensitivity"]
    ds = ds[ds["dimension"] == "harmfulness"].set_index("attribute")
    gender = np.abs(SF[:, 0] - SF[:, 1]).mean()
    age = np.abs(SF[:, 2] - SF[:, 3]).mean()
    assert ds.loc["gender", "ds"] == pytest.approx(gender) and ds.loc["age_group", "ds"] == pytest.approx(age)
    assert ds.loc["ALL", "ds"] == pytest.approx((gender + age) / 2)
    assert ds.loc["gender", "judge"] == "openai:judge" and ds.loc["gender", "values"] == "female, male"
    assert ds.loc["gender", "n_items"] == 6
    # One score per generation and framing: DS has no permutation null, and the notes say so. The shared effect
    # (shift) has one: for two framings, the paired sign-flip test of the mean difference, enumerated here.
    assert ds[["ds_null", "p_value", "noise_floor"]].isna().all().all()
    ds_notes = " ".join(notes_of(tables, "headline_demographic_sensitivity"))
    assert "harmfulness: one score per item and framing" in ds_notes
    diff = SF[:, 0] - SF[:, 1]
    assert ds.loc["gender", "shift"] == pytest.approx(abs(diff.mean()))
    flips = np.array(list(itertools.product((-1, 1), repeat=len(diff))))
    exact = np.mean(np.abs(flips @ diff) >= abs(diff.sum()) - 1e-12)
    assert ds.loc["gender", "shift_p"] == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 1000) + 1 / 1001)
    assert 0 < ds.loc["gender", "shift_p"] <= 1 and ds.loc["gender", "shift_null"] < ds.loc["gender", "shift"]

    dom = tables["headline_ds_by_domain"]
    dom = dom[(dom["dimension"] == "harmfulness") & (dom["attribute"] == "gender")].set_index("domain")
    assert dom.loc["violence", "ds"] == pytest.approx(np.abs(SF[:3, 0] - SF[:3, 1]).mean())
    by_domain = tables["headline_agreement_by_domain"].set_index(["domain", "metric"])
    assert by_domain.loc[("privacy", "ICC2"), "value"] == pytest.approx(
        icc(_long(SF[3:]), "unit", "rater", "score").set_index("Type").loc["ICC2", "ICC"]
    )


def test_demo_safetybench_report_leads_with_headline(tmp_path):
    run = demo_store(tmp_path / "run")
    html = write_report(run).read_text()
    head, rest = html.split("<h2>Figures</h2>")
    assert head.index("Demo-SafetyBench: headline figures") < head.index("<h3>headline_agreement</h3>")
    assert "data:image/png;base64," in head and "Demographic sensitivity of the framed raters" in head
    assert "Note: toxicity: only one framed rater scored it" in head
    assert "headline_agreement" not in rest  # shown once, in the headline section
    assert "<h3>summary</h3>" in rest

    from rich.console import Console

    console = Console(record=True, width=250)
    render_tables(analyze_run(run), console)
    text = console.export_text()
    assert text.index("Demo-SafetyBench: headline figures") < text.index("headline_agreement") < text.index("summary")
    payload = json.loads(tables_to_json(analyze_run(run)))
    assert payload["study"][0]["study"] == "demo_safetybench" and payload["headline_agreement"]


def test_demo_safetybench_pools_differently_named_raters_and_one_rater(tmp_path):
    # No judge model recorded and one name per framing: sensitivity is computed over the pooled raters, noted.
    run = demo_store(tmp_path / "run", model=None, single_rater_dimension=False)
    tables = analyze_run(run)
    ds = tables["headline_demographic_sensitivity"].set_index("attribute")
    assert ds.loc["gender", "judge"] == "all framed raters (pooled)"
    assert ds.loc["gender", "ds"] == pytest.approx(np.abs(SF[:, 0] - SF[:, 1]).mean())
    assert "pooled" in " ".join(tables["headline_notes"]["reason"])

    # A single framed rater: no ICC, no sensitivity, and notes saying why.
    cells = [{"key": "a"}, {"key": "b"}]
    ratings = [
        {
            "cell": c,
            "rater": "judge_f",
            "kind": "llm-judge",
            "framing": ("gender", "female"),
            "dimension": "harmfulness",
            "score": s,
        }
        for c, s in (("a", 0.2), ("b", 0.7))
    ]
    one = make_store(tmp_path / "one", cells, ratings)
    tables = analyze_run(one)
    assert tables["study"].loc[0, "study"] == "demo_safetybench"
    assert "headline_agreement" not in tables and "headline_demographic_sensitivity" not in tables
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert "only one framed rater" in notes["headline_agreement"]
    assert "no generation was scored under two values" in notes["headline_demographic_sensitivity"]
    assert "Absent: harmfulness: only one framed rater" in write_report(one).read_text().split("<h2>Figures")[0]


def test_demo_safetybench_with_only_unscored_framed_ratings(tmp_path):
    cells = [{"key": "a"}, {"key": "b"}]
    ratings = [
        {
            "cell": c,
            "rater": f"judge-{v}",
            "kind": "llm-judge",
            "framing": ("gender", v),
            "dimension": "harm",
            "score": None,
        }
        for c in ("a", "b")
        for v in ("female", "male")
    ]
    tables = analyze_run(make_store(tmp_path / "run", cells, ratings))
    assert tables["study"].loc[0, "study"] == "demo_safetybench"  # recognised from every judge's ratings
    # judges that scored nothing are untrusted (coverage 0) and left out of the findings, which say so
    used = tables["judges_used"].set_index("rater")
    assert not used["used"].any() and used.loc["judge-female", "why"] == "left out: coverage 0 < 0.9 (n 2)"
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert notes["headline_agreement"] == "every judge that rated was left out as untrusted"
    assert notes["headline"] == "untrusted judges left out: judge-female (harm), judge-male (harm) (see judge_card)"
    # the coverage tables, about the judges, keep every rating
    assert tables["rating_coverage"]["parse_error"].sum() == 4


def test_demo_safetybench_sensitivity_against_its_null_with_repeated_ratings(tmp_path):
    # Each framed judge scores every answer twice per framing. Judge "fair" ignores the framing (the scores of an
    # answer differ only by noise); judge "biased" adds .3 under the female framing.
    rng = np.random.default_rng(0)
    cells = [{"key": f"q{i}", "target_id": f"q{i}", "template_id": "stage1"} for i in range(12)]
    ratings = []
    for judge, effect in (("fair", 0.0), ("biased", 0.3)):
        for i in range(12):
            base = rng.uniform(0.2, 0.6)
            for value in ("female", "male"):
                for _ in range(2):
                    score = base + (effect if value == "female" else 0.0) + rng.normal(0, 0.05)
                    ratings.append(
                        {
                            "cell": f"q{i}",
                            "rater": f"{judge}_{value}",
                            "kind": "llm-judge",
                            "model": f"openai:{judge}",
                            "framing": ("gender", value),
                            "dimension": "harmfulness",
                            "score": float(np.clip(score, 0, 1)),
                        }
                    )
    tables = analyze_run(make_store(tmp_path / "run", cells, ratings, [{"study": "demo_safetybench"}]))
    ds = tables["headline_demographic_sensitivity"].set_index(["judge", "attribute"])
    fair, biased = ds.loc[("openai:fair", "gender")], ds.loc[("openai:biased", "gender")]
    assert fair["n_repeat_cells"] == 24 and fair["note"] == ""
    assert fair["ds"] > 0.02 and fair["ds"] == pytest.approx(fair["ds_null"], rel=0.5)  # noise, not framing
    assert fair["p_value"] > 0.01 and fair["noise_floor"] > 0
    assert biased["ds"] > 0.25 and biased["p_value"] < 0.01 and biased["shift_p"] < 0.01
    assert biased["p_value"] >= 1 / 1001  # never 0
