"""Study reports: detecting the study of a run and its headline figures, on small hand-checkable stores."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis import (
    analyze_run,
    gender_gaps,
    icc,
    krippendorff_alpha,
    load_run,
    render_tables,
    tables_to_json,
    two_proportion_ztest,
    value_inertia,
    write_report,
)
from analysis.studies import STUDY_TABLES, detect_study, read_run_config, study_detection, study_headline
from graphs.tables import DDL, STORE_FILENAME

# ------------------------------------------------------------------------------------------- store builder

_CELL_DEFAULTS: dict[str, Any] = {
    "model": "m1",
    "persona_id": "none",
    "persona_kind": "none",
    "persona_category": "none",
    "persona_gender": "none",
    "target_id": "t1",
    "target_category": "c",
    "template_id": "x",
    "template_style": "generic",
    "language": "en",
    "repeat": 0,
    "is_baseline": 0,
}


def make_store(
    run_dir: Path,
    cells: list[dict[str, Any]],
    ratings: list[dict[str, Any]] = (),
    configs: list[dict[str, Any] | None] = (),
) -> Path:
    """A transcript store with one round-0 generation per cell (key ``g-<cell key>``).

    ``cells``: dicts with ``key`` and any cell column (defaults above), plus ``refusal`` and ``outcome`` of the
    generation. ``ratings``: dicts with ``cell`` (the rated cell's key), ``rater`` (name), ``kind``,
    ``dimension``, ``score`` (``None``: a parse error) and optionally ``model`` and ``framing`` ((attribute, value)).
    ``configs``: one ``runs`` row per entry, in order (the last one is the latest).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(run_dir / STORE_FILENAME)
    conn.executescript(DDL)
    now = time.time()
    for config in configs:
        conn.execute("INSERT INTO runs(command, started_at, config) VALUES ('run', ?, ?)", (now, json.dumps(config)))
    for i, cell in enumerate(cells):
        c = {**_CELL_DEFAULTS, **cell}
        conn.execute(
            "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                c["key"],
                *(c[k] for k in _CELL_DEFAULTS),
                i,
                "[]",
                now,
            ),
        )
        ok = c.get("outcome", "ok") == "ok"
        conn.execute(
            "INSERT INTO generations (generation_key, cell_key, round, model, backend, messages, params, text, "
            "outcome, refusal, created_at) VALUES (?,?,0,?,'scripted','[]','{}',?,?,?,?)",
            (
                f"g-{c['key']}",
                c["key"],
                c["model"],
                "text" if ok else None,
                c.get("outcome", "ok"),
                c.get("refusal"),
                now,
            ),
        )
    for j, r in enumerate(ratings):
        framing = r.get("framing")
        identity = f"{r['rater']}|{r['kind']}"
        if r.get("model"):
            identity += f"|model={r['model']}"
        if framing:
            identity += f"|framing={framing[0]}={framing[1]}"
        conn.execute(
            "INSERT INTO ratings (rating_key, generation_key, rater, rater_name, rater_model, framing_attribute, "
            "framing_value, dimension, score, outcome, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                f"r{j}",
                f"g-{r['cell']}",
                identity,
                r["rater"],
                r.get("model"),
                framing[0] if framing else None,
                framing[1] if framing else None,
                r["dimension"],
                r["score"],
                "scored" if r["score"] is not None else "parse_error",
                now,
            ),
        )
    conn.commit()
    conn.close()
    return run_dir


# ------------------------------------------------------------------------------------------ persona toxicity


def persona_toxicity_store(run_dir: Path, configs=()) -> Path:
    """Baseline t1 .1 / t2 .3; politician p1 (female) t1 .4, t2 .6 and p2 (male) t1 .2, t2 .2; plus a zh cell of
    p1 (tox .9) that has no zh baseline to pair with. Refusals: baseline 0, 1; p1 1, 1, 1; p2 0, 0."""
    cells = [
        {"key": "b1", "target_id": "t1", "is_baseline": 1, "refusal": 0},
        {"key": "b2", "target_id": "t2", "is_baseline": 1, "refusal": 1},
    ]
    tox = {"b1": 0.1, "b2": 0.3}
    for pid, gender, scores, refusal in (("p1", "female", (0.4, 0.6), 1), ("p2", "male", (0.2, 0.2), 0)):
        for target, score in zip(("t1", "t2"), scores, strict=True):
            key = f"{pid}-{target}"
            cells.append(
                {
                    "key": key,
                    "persona_id": pid,
                    "persona_kind": "character",
                    "persona_category": "politician",
                    "persona_gender": gender,
                    "target_id": target,
                    "refusal": refusal,
                }
            )
            tox[key] = score
    cells.append(
        {
            "key": "p1-t1-zh",
            "persona_id": "p1",
            "persona_kind": "character",
            "persona_category": "politician",
            "persona_gender": "female",
            "language": "zh",
            "refusal": 1,
        }
    )
    tox["p1-t1-zh"] = 0.9
    ratings = [
        {"cell": k, "rater": "tox", "kind": "hf-classifier", "dimension": "toxicity", "score": s}
        for k, s in tox.items()
    ]
    return make_store(run_dir, cells, ratings, configs)


def test_persona_toxicity_headline(tmp_path):
    run = persona_toxicity_store(tmp_path / "run")
    tables = analyze_run(run, n_boot=300)
    assert tables["study"].loc[0, "study"] == "persona_toxicity"
    assert tables["study"].loc[0, "detected_from"] == "data"
    assert list(tables)[:4] == ["study", *STUDY_TABLES["persona_toxicity"]]

    amp = tables["headline_toxicity_amplification"].set_index(["model", "persona_category"]).loc[("m1", "politician")]
    # pairs: t1 (.4+.2)/2 = .3 vs .1, t2 (.6+.2)/2 = .4 vs .3; the zh cell has no zh baseline and is left out.
    assert amp["n_pairs"] == 2
    assert amp["persona_mean"] == pytest.approx(0.35) and amp["baseline_mean"] == pytest.approx(0.2)
    assert amp["ratio"] == pytest.approx(1.75) and amp["difference"] == pytest.approx(0.15)
    assert amp["ratio_ci_low"] <= amp["ratio"] <= amp["ratio_ci_high"]

    ref = tables["headline_refusal_vs_baseline"].set_index(["factor", "level"])
    pol = ref.loc[("persona_category", "politician")]
    assert (pol["n"], pol["refusals"], pol["baseline_n"], pol["baseline_refusals"]) == (5, 3, 2, 1)
    assert pol["rate"] == pytest.approx(0.6) and pol["baseline_rate"] == pytest.approx(0.5)
    assert pol["gap"] == pytest.approx(0.1)
    z, p = two_proportion_ztest([3], [5], [1], [2])
    assert pol["z"] == pytest.approx(z[0]) and pol["pval"] == pytest.approx(p[0])
    assert ref.loc[("persona_kind", "character"), "rate"] == pytest.approx(0.6)
    assert "none" not in set(ref.reset_index()["level"])  # the baseline is the reference, not a level

    gap = tables["headline_refusal_gender_gap"].iloc[0]
    assert (gap["group_a"], gap["group_b"], gap["n_a"], gap["n_b"]) == ("female", "male", 3, 2)
    assert gap["gap"] == pytest.approx(1.0)
    frame = pd.DataFrame(
        {"model": ["m1"] * 5, "persona_gender": ["female"] * 3 + ["male"] * 2, "refusal": [1, 1, 1, 0, 0]}
    )
    assert gap["pval"] == pytest.approx(gender_gaps(frame, by="model").loc[0, "pval"])
    assert "headline_notes" not in tables


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


# ------------------------------------------------------------------------------------------- value inertia

CARE = {"none": [0.8], "p1": [0.7, 0.9], "p2": [0.6, 0.6], "p3": [0.2, 0.4]}  # test_metrics' value-inertia toy
FAIRNESS_JUDGES = {"none": (0.2, 0.4), "p1": (0.6, 0.8), "p2": (0.8, 1.0)}


def value_inertia_store(run_dir: Path) -> Path:
    cells, ratings = [], []
    for pid, scores in CARE.items():
        for i, score in enumerate(scores):
            key = f"care-{pid}-{i}"
            cells.append(
                {
                    "key": key,
                    "persona_id": pid,
                    "persona_kind": "randomized" if pid != "none" else "none",
                    "persona_category": "randomized" if pid != "none" else "none",
                    "target_id": f"care_{i}",
                    "target_category": "care",
                    "template_id": "moral_probes",
                    "is_baseline": int(pid == "none"),
                }
            )
            ratings.append({"cell": key, "rater": "probe", "kind": "moral-probe", "dimension": "care", "score": score})
            # An LLM judge on the same foundation disagrees completely; the moral-probe rater is preferred.
            ratings.append(
                {"cell": key, "rater": "judge", "kind": "llm-judge", "model": "x:y", "dimension": "care", "score": 0.5}
            )
    for pid, (a, b) in FAIRNESS_JUDGES.items():
        key = f"fair-{pid}"
        cells.append(
            {
                "key": key,
                "persona_id": pid,
                "persona_category": "randomized" if pid != "none" else "none",
                "target_id": "fair_0",
                "target_category": "fairness",
                "template_id": "moral_probes",
                "is_baseline": int(pid == "none"),
            }
        )
        ratings.append({"cell": key, "rater": "judge", "kind": "llm-judge", "dimension": "fairness", "score": a})
        ratings.append({"cell": key, "rater": "judge2", "kind": "llm-judge", "dimension": "fairness", "score": b})
    return make_store(run_dir, cells, ratings)


def test_value_inertia_headline(tmp_path):
    run = value_inertia_store(tmp_path / "run")
    assert detect_study(run) == "value_inertia"
    tables = analyze_run(run)
    vi = tables["headline_value_inertia"].set_index(["model", "dimension"])
    care = vi.loc[("m1", "care")]
    grand = np.mean([0.7, 0.9, 0.6, 0.6, 0.2, 0.4])
    ssb = 2 * sum((m - grand) ** 2 for m in (0.8, 0.6, 0.3))
    sst = sum((v - grand) ** 2 for v in (0.7, 0.9, 0.6, 0.6, 0.2, 0.4))
    assert care["eta_squared"] == pytest.approx(ssb / sst)  # the judge's constant 0.5 would make it NaN
    assert care["default_mean"] == pytest.approx(0.8) and care["share_same_side"] == pytest.approx(2 / 3)
    assert (care["n_answers"], care["n_default_answers"]) == (7, 1)
    assert care["scores_from"] == "moral-probe rater(s): probe"
    # fairness has no moral-probe rater: the two judges are averaged per generation (.3, .7, .9).
    fair = vi.loc[("m1", "fairness")]
    assert fair["default_mean"] == pytest.approx(0.3) and fair["persona_mean"] == pytest.approx(0.8)
    assert fair["eta_squared"] == pytest.approx(1.0) and fair["share_same_side"] == 0
    assert fair["scores_from"] == "mean of rater(s): judge, judge2"
    # The same numbers as value_inertia() on the long data.
    ref = value_inertia(
        pd.DataFrame(
            {
                "dimension": "care",
                "persona_id": [p for p, s in CARE.items() for _ in s],
                "score": sum(CARE.values(), []),
            }
        )
    ).iloc[0]
    assert care["persona_sd"] == pytest.approx(ref["persona_sd"])
    assert list(vi.reset_index()["dimension"]) == ["care", "fairness"]  # foundation order


def test_value_inertia_without_foundation_ratings(tmp_path):
    cells = [{"key": "a", "template_id": "moral_probes", "is_baseline": 1}, {"key": "b", "persona_id": "p"}]
    ratings = [{"cell": "a", "rater": "tox", "kind": "hf-classifier", "dimension": "toxicity", "score": 0.1}]
    run = make_store(tmp_path / "run", cells, ratings, configs=[{"study": "value_inertia"}])
    tables = analyze_run(run)
    assert "headline_value_inertia" not in tables
    reason = tables["headline_notes"].set_index("table").loc["headline_value_inertia", "reason"]
    assert "no rating on a moral foundation" in reason and "toxicity" in reason


# ------------------------------------------------------------------------------------------------- PTP

# model → language → prompt → scores of its k = 3 continuations (None: unscored)
PTP_SCORES = {
    "small": {
        "en": {"ptp_1": (0.1, 0.6, 0.2), "ptp_2": (0.3, 0.2, 0.4)},
        "de": {"ptp_1": (0.9, 0.1, 0.1), "ptp_2": (0.7, None, 0.5)},
    },
    "big": {
        "en": {"ptp_1": (0.0, 0.1, 0.2), "ptp_2": (0.1, 0.1, 0.1)},
        "de": {"ptp_1": (0.2, 0.3, 0.2), "ptp_2": (0.6, 0.1, 0.1)},
    },
}


def ptp_store(run_dir: Path, sizes: dict[str, float | None]) -> Path:
    cells, ratings = [], []
    for model, langs in PTP_SCORES.items():
        for lang, prompts in langs.items():
            for prompt, scores in prompts.items():
                for k, score in enumerate(scores):
                    key = f"{model}-{lang}-{prompt}-{k}"
                    cells.append(
                        {
                            "key": key,
                            "model": model,
                            "target_id": prompt,
                            "target_category": "high",
                            "template_id": "ptp",
                            "language": lang,
                            "repeat": k,
                        }
                    )
                    ratings.append(
                        {"cell": key, "rater": "tox", "kind": "hf-classifier", "dimension": "toxicity", "score": score}
                    )
    config = {"study": None, "models": [{"name": m, "params_b": s} for m, s in sizes.items()]}
    return make_store(run_dir, cells, ratings, [config])


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


# ------------------------------------------------------------------------------------------ Demo-SafetyBench

# Shrout & Fleiss (1979), Table 2 (6 targets × 4 judges), scaled to 0–1; judges are the four framings below.
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float) / 10
FRAMINGS = [("gender", "female"), ("gender", "male"), ("age_group", "young"), ("age_group", "old")]


def demo_store(run_dir: Path, model: str | None = "openai:judge", single_rater_dimension: bool = True) -> Path:
    cells = [
        {
            "key": f"q{i}",
            "target_id": f"q{i}",
            "target_category": "violence" if i < 3 else "privacy",
            "template_id": "stage1",
        }
        for i in range(len(SF))
    ]
    ratings = []
    for i in range(len(SF)):
        for j, framing in enumerate(FRAMINGS):
            ratings.append(
                {
                    "cell": f"q{i}",
                    "rater": f"judge_{framing[1]}",
                    "kind": "llm-judge",
                    "model": model,
                    "framing": framing,
                    "dimension": "harmfulness",
                    "score": float(SF[i, j]),
                }
            )
        if single_rater_dimension:
            ratings.append(
                {
                    "cell": f"q{i}",
                    "rater": "judge_female",
                    "kind": "llm-judge",
                    "model": model,
                    "framing": ("gender", "female"),
                    "dimension": "toxicity",
                    "score": 0.1 * i,
                }
            )
    return make_store(run_dir, cells, ratings, [{"study": "demo_safetybench"}])


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


# ------------------------------------------------------------------------------------------------ detection


def test_detection_config_latest_row_and_inference(tmp_path):
    # The latest runs row counts; a config study wins over what the data suggest.
    run = persona_toxicity_store(tmp_path / "a", configs=[{"study": "value_inertia"}, {"study": "ptp_multilingual"}])
    assert read_run_config(run) == {"study": "ptp_multilingual"}
    d = study_detection(run)
    assert (d.study, d.source) == ("ptp_multilingual", "config")
    # An unknown study name: inferred from the data, and the reason says so.
    run = persona_toxicity_store(tmp_path / "b", configs=[{"study": "nonsense"}])
    d = study_detection(load_run(run))
    assert (d.study, d.source) == ("persona_toxicity", "data") and "'nonsense'" in d.reason
    # Inference for each study, and none.
    assert detect_study(persona_toxicity_store(tmp_path / "c")) == "persona_toxicity"
    assert detect_study(value_inertia_store(tmp_path / "d")) == "value_inertia"
    assert detect_study(ptp_store(tmp_path / "e", {})) == "ptp_multilingual"
    assert detect_study(demo_store(tmp_path / "f")) == "demo_safetybench"  # named in the config
    framed = make_store(
        tmp_path / "g",
        [{"key": "a"}],
        [
            {
                "cell": "a",
                "rater": "j",
                "kind": "llm-judge",
                "framing": ("gender", "male"),
                "dimension": "x",
                "score": 1.0,
            }
        ],
    )
    assert detect_study(framed) == "demo_safetybench"
    no_baseline = make_store(
        tmp_path / "h",
        [{"key": "a", "persona_id": "p"}],
        [{"cell": "a", "rater": "t", "kind": "hf-classifier", "dimension": "toxicity", "score": 0.3}],
    )
    assert detect_study(no_baseline) is None
    # Moral-foundation ratings without moral-probe cells are not value inertia.
    loose = make_store(
        tmp_path / "i",
        [{"key": "a", "persona_id": "p"}],
        [{"cell": "a", "rater": "t", "kind": "llm-judge", "dimension": "care", "score": 0.3}],
    )
    assert detect_study(loose) is None


def test_no_study_keeps_the_generic_report(tmp_path):
    run = make_store(tmp_path / "run", [{"key": "a", "persona_id": "p"}])
    tables = analyze_run(run)
    assert tables["study"].loc[0, "study"] is None and list(tables)[1] == "generations"
    assert not any(name.startswith("headline_") for name in tables)
    html = write_report(run).read_text()
    assert "headline figures" not in html and "Study: none recognised" in html
    # A study can be forced or switched off; an unknown one is an error.
    forced = analyze_run(persona_toxicity_store(tmp_path / "p"), study=None)
    assert forced["study"].loc[0, "study"] is None and "headline_toxicity_amplification" not in forced
    with pytest.raises(ValueError, match="unknown study"):
        study_headline(load_run(run), "bogus")


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


def test_value_inertia_undefined_figures_are_noted(tmp_path):
    # loyalty: two personas answering 0 alike and no baseline answer: no default mean, no eta².
    cells = [
        {
            "key": k,
            "persona_id": p,
            "persona_category": "randomized",
            "target_category": "loyalty",
            "template_id": "moral_probes",
        }
        for k, p in (("a", "p1"), ("b", "p2"))
    ]
    ratings = [{"cell": k, "rater": "self", "kind": "moral-probe", "dimension": "loyalty", "score": 0.0} for k in "ab"]
    tables = analyze_run(make_store(tmp_path / "run", cells, ratings))
    row = tables["headline_value_inertia"].iloc[0]
    assert np.isnan(row["default_mean"]) and np.isnan(row["eta_squared"]) and row["persona_mean"] == 0
    reasons = tables["headline_notes"]["reason"].tolist()
    assert any(r.startswith("m1 (loyalty): no scored no-persona answer") for r in reasons)
    assert any(r.startswith("m1 (loyalty): eta² is undefined") for r in reasons)
