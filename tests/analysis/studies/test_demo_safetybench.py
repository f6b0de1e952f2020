"""The Demo-SafetyBench headline (:mod:`analysis.studies.demo_safetybench`)."""

from __future__ import annotations

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
    assert tables["study"].loc[0, "study"] == "demo_safetybench"
    assert tables["study"].loc[0, "coverage"] == "Coverage: 0 of 2 round-0 generations scored by a framed rater."
    notes = tables["headline_notes"].set_index("table")["reason"]
    assert notes["headline_agreement"] == "4 ratings were made under demographic framings, none scored (parse_error: 4)"
