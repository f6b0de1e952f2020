"""The judge card's figures from a run alone (:mod:`analysis.judge_audit.from_run`), on small synthetic stores
written by :func:`tests.analysis.stores.make_store`: the noise rater agrees least with the panel, coverage counts
every outcome, a generator-judge's self-preference and a framed judge's shift are found."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.io import load_run
from analysis.judge_audit import TrustPolicy, judge_card, run_card_rows
from tests.analysis.stores import make_store, tiny_store

N = 120  # round-0 generations with a text; m1 wrote the first half, m2 the second

FEMALE, MALE = ({"attribute": "gender", "value": v} for v in ("female", "male"))
CONFIG = {
    "panel": {
        "raters": [
            {"name": "good-a", "kind": "llm", "model": "m1"},
            {"name": "good-b", "kind": "llm", "model": {"backend": "openai", "model": "b"}},
            {"name": "noise", "kind": "profanity"},
            {"name": "late", "kind": "llm", "model": "judge-only"},
            {"name": "gpt-female", "kind": "llm", "model": "gpt", "framing": FEMALE},
            {"name": "gpt-male", "kind": "llm", "model": "gpt", "framing": MALE},
        ]
    }
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    rng = np.random.default_rng(0)
    cells = [{"key": f"c{i}", "model": "m1" if i < N // 2 else "m2"} for i in range(N)]
    cells.append({"key": "failed", "model": "m1", "outcome": "timeout"})  # no text: nobody rates it
    truth = rng.uniform(0.1, 0.9, N)
    ratings = []
    for i, t in enumerate(truth):
        cell = f"c{i}"
        own = i < N // 2
        ratings += [
            {"cell": cell, "rater": "good-a", "kind": "llm", "model": "openai:a", "dimension": "toxicity",
             "score": float(np.clip(t - 0.15 * own + rng.normal(0, 0.04), 0, 1))},
            {"cell": cell, "rater": "good-b", "kind": "llm", "model": "openai:b", "dimension": "toxicity",
             "score": None if i % 12 == 0 else float(np.clip(t + rng.normal(0, 0.04), 0, 1))},
            {"cell": cell, "rater": "noise", "kind": "profanity", "dimension": "toxicity",
             "score": float(rng.uniform(0, 1))},
        ]  # fmt: skip
        if i < 2 * N // 3:
            ratings.append({"cell": cell, "rater": "late", "kind": "llm", "model": "openai:late",
                            "dimension": "refusal", "score": float(t > 0.5)})  # fmt: skip
        for value, effect in (("female", 0.2), ("male", 0.0)):
            ratings.append({"cell": cell, "rater": f"gpt-{value}", "kind": "llm", "model": "openai:gpt",
                            "dimension": "unsafe", "framing": ("gender", value),
                            "score": float(np.clip(0.5 * t + effect + rng.normal(0, 0.03), 0, 1))})  # fmt: skip
    return load_run(make_store(tmp_path_factory.mktemp("run") / "run", cells, ratings, [CONFIG]))


@pytest.fixture(scope="module")
def rows(run):
    return {(r["rater"], r["dimension"]): r for r in run_card_rows(run, n_boot=200, n_permutations=199)}


def test_rows_follow_the_panel_and_carry_identity(run, rows):
    assert [k[0] for k in rows] == ["good-a", "good-b", "noise", "late", "gpt-female", "gpt-male"]
    a = rows[("good-a", "toxicity")]
    assert (a["kind"], a["model"], a["source"]) == ("llm", "openai:a", "run")
    assert rows[("noise", "toxicity")]["kind"] == "profanity" and rows[("noise", "toxicity")]["model"] is None


def test_the_noise_rater_agrees_least_with_the_panel(rows):
    alpha = {k[0]: rows[k]["alpha_vs_panel"] for k in rows if k[1] == "toxicity"}
    assert min(alpha, key=alpha.get) == "noise" and alpha["noise"] < 0.3
    assert alpha["good-a"] > 0.4 and alpha["good-b"] > 0.4
    assert rows[("good-a", "toxicity")]["alpha_vs_panel_n"] == rows[("noise", "toxicity")]["alpha_vs_panel_n"] == N
    assert rows[("good-b", "toxicity")]["alpha_vs_panel_n"] == N - N // 12  # the texts it scored
    # alone on its dimension, and framed raters have no unframed panel: no agreement, and a note why
    for key in (("late", "refusal"), ("gpt-female", "unsafe")):
        assert np.isnan(rows[key]["alpha_vs_panel"])
        assert "alpha_vs_panel: no other unframed rater scores this dimension" in rows[key]["notes"]


def test_coverage_counts_outcomes(rows):
    b = rows[("good-b", "toxicity")]
    assert b["n"] == N and b["outcomes"] == {"parse_error": N // 12, "scored": N - N // 12}
    assert b["coverage"] == pytest.approx(1 - 1 / 12)
    # it rated 2/3 of the texts so far: the rest are not its failures (nor is the failed generation, nobody's to rate)
    late = rows[("late", "refusal")]
    assert late["n"] == 2 * N // 3 and late["outcomes"] == {"scored": 2 * N // 3} and late["n_not_rated"] == N // 3
    assert late["coverage"] == 1.0
    assert rows[("noise", "toxicity")]["coverage"] == 1.0


def test_self_preference_of_a_generator_judge(rows):
    a = rows[("good-a", "toxicity")]
    assert a["self_preference_n"] == N and a["self_preference"] == pytest.approx(-0.15, abs=0.05)
    low, high = a["self_preference_ci"]
    assert low <= a["self_preference"] <= high < 0 and a["self_preference_p"] < 0.01
    # an inline model only judges, a model that generated nothing here has no own texts: no figure at all
    assert "self_preference" not in rows[("good-b", "toxicity")]
    assert "self_preference" not in rows[("late", "refusal")]


def test_framed_judges_share_their_framing_figures(rows):
    female, male = rows[("gpt-female", "unsafe")], rows[("gpt-male", "unsafe")]
    for r in (female, male):
        assert r["framing_n"] == N and r["framing_shift"] == pytest.approx(0.2, abs=0.03)
        assert r["framing_p"] == pytest.approx(1 / 200)
        assert any(n.startswith("framing: ") and "no permutation null" in n for n in r["notes"])
    assert "framing_shift" not in rows[("good-a", "toxicity")]


def test_the_card_of_the_run(run):
    card = judge_card(run_card_rows(run, n_boot=50, n_permutations=49), TrustPolicy(min_coverage=0.95))
    card = card.set_index("rater")
    assert not card.loc["good-b", "trusted"] and card.loc["good-b", "failed"] == [f"coverage 0.917 < 0.95 (n {N})"]
    assert card.loc["late", "trusted"]  # what it has not rated yet does not count against it
    assert card.loc["noise", "trusted"]  # agreement is shown, never a trust criterion
    assert card.loc["noise", "unmeasured"] == ["alpha_vs_humans", "swap_shift", "retest_alpha"]


def test_a_store_without_config(tmp_path):
    tables = load_run(tiny_store(tmp_path / "tiny"))
    rows = {(r["rater"], r["dimension"]): r for r in run_card_rows(tables, n_boot=20, n_permutations=19)}
    assert set(rows) == {("judge-a", "toxicity"), ("judge-b", "toxicity"), ("judge-a", "unsafe")}
    b = rows[("judge-b", "toxicity")]
    assert b["outcomes"] == {"parse_error": 1, "scored": 1} and b["coverage"] == 0.5 and b["kind"] is None
    assert b["alpha_vs_panel_n"] == 1 and np.isnan(b["alpha_vs_panel"])
    assert any("no config" in n for n in b["notes"])
    assert rows[("judge-a", "unsafe")]["framing_n"] == 1


def test_no_ratings_no_rows(tmp_path):
    assert run_card_rows(load_run(tiny_store(tmp_path / "empty", ratings=False))) == []
