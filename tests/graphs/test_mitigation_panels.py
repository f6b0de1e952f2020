"""The loop's three roles kept apart: the gate panel decides, the critic reads only the gate's scores, and a
held-out measure panel scores every round for the report without steering anything (scripted backends, the
offline profanity classifier as the gate, a scripted LLM judge as the held-out panel)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from agents.base import create_backend
from analysis import analyze_run
from configs.loader import load_experiment
from graphs.mitigation import Mitigation
from tests.conftest import run_config
from tests.graphs.test_mitigation import FIXED, INSULT, STILL_TOXIC, _query, _stops, mitigation_config


def _judge_reply(toxicity: int, insult: int) -> str:
    return f'{{"rationale": "scripted", "toxicity": {toxicity}, "insult": {insult}}}'


def held_out_config() -> dict:
    """``mitigation_config`` with a strict held-out judge that finds the rewrite FIXED still toxic (4 of 5)."""
    config = mitigation_config()
    config["models"].append(
        {
            "name": "strict-model",
            "backend": "scripted",
            "options": {
                "rules": [
                    {"match": re.escape(FIXED), "reply": _judge_reply(4, 4)},
                    {"match": re.escape(INSULT), "reply": _judge_reply(5, 5)},
                    {"match": re.escape(STILL_TOXIC), "reply": _judge_reply(5, 5)},
                ],
                "default": _judge_reply(1, 1),
            },
        }
    )
    config["panel"]["raters"].append(
        {"name": "strict", "kind": "llm", "model": "strict-model", "rubric": "toxicity",
         "dimensions": ["toxicity", "insult"]}
    )  # fmt: skip
    mitigation = config["mitigation"]
    del mitigation["raters"]
    mitigation.update(gate=["profanity"], measure=["strict"])
    return config


@pytest.fixture
def held_out_run(tmp_path, write_config):
    path, run = write_config(held_out_config()), tmp_path / "run"
    experiment = load_experiment(path)
    backends = {spec.name: create_backend(spec) for spec in experiment.config.models}
    loop = Mitigation(experiment.config.mitigation, backends["critic"], "critic", rewriter=backends["gen"])
    run_config(path, run, backends=backends, mitigation=loop)
    return run, backends


def test_the_held_out_panel_scores_every_round_but_never_gates_nor_reaches_the_critic(held_out_run):
    run, backends = held_out_run
    # The same stops as with the gate alone (tests/graphs/test_mitigation.py): the held-out judge scores FIXED
    # 0.75, above the threshold, yet women/toxic stops at round 1, as the gate (profanity) decides.
    assert _stops(run)[("women", "toxic")] == (1, "below_threshold")
    assert _stops(run)[("immigrants", "toxic")] == (2, "max_rounds")
    assert _stops(run)[("muslims", "toxic")] == (0, "rewrite_failed")
    # it rated every version of every reply, rewrites included
    unrated = _query(
        run,
        "SELECT COUNT(*) FROM generations g WHERE g.outcome = 'ok' AND NOT EXISTS (SELECT 1 FROM ratings r "
        "WHERE r.generation_key = g.generation_key AND r.rater_name = 'strict' AND r.dimension = 'toxicity')",
    )
    assert unrated == [(0,)]
    # the critic was shown the gate's toxicity score only: the held-out judge's insult score never reached it
    prompts = ["\n".join(m.content for m in request.messages) for request in backends["critic"].calls]
    assert len(prompts) == 4  # women, immigrants and muslims (which fails) in round 1, immigrants in round 2
    assert all(re.search(r"toxicity \d\.\d\d", p) for p in prompts)
    assert not any(re.search(r"insult \d\.\d\d", p) for p in prompts)


def test_the_report_shows_both_curves_and_leads_with_the_held_out_one(held_out_run):
    run, _ = held_out_run
    tables = analyze_run(run, study="persona_toxicity", n_boot=0)
    panels = tables["mitigation_panels"].set_index("role")["who"]
    assert (panels["critic"], panels["gate"], panels["measure (held out)"]) == ("critic", "profanity", "strict")

    # The cells the gate sent to the critic: women (0.75 after one rewrite), immigrants (still 1.0), muslims
    # (critique failed, stays at 1.0). The held-out judge: 1.0 → (0.75 + 1 + 1)/3, every cell still ≥ 0.5.
    success = tables["headline_mitigation_success"]
    assert list(success["panel"]) == ["measure (held out)", "gate"] and list(success["headline"]) == [True, False]
    held = success.iloc[0]
    assert (held["n_cells"], held["n_scored_round0"], held["n_scored_last"], held["last_round"]) == (3, 3, 3, 2)
    assert held["mean_round0"] == pytest.approx(1.0) and held["mean_last"] == pytest.approx(2.75 / 3)
    differences = np.array([0.25, 0.0, 0.0])
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    assert held["reduction"] == pytest.approx(0.25 / 3)
    assert (held["reduction_ci_low"], held["reduction_ci_high"]) == pytest.approx((0.25 / 3 - half, 0.25 / 3 + half))
    assert held["share_above_round0"] == 1.0 and held["share_above_last"] == 1.0
    # the gate, which the loop optimises, reports what the held-out judge does not: women/toxic got below it
    gate = success.iloc[1]
    assert gate["share_above_round0"] == 1.0 and gate["share_above_last"] == pytest.approx(2 / 3)

    curve = tables["headline_mitigation_curve"]
    assert list(curve.columns[:2]) == ["panel", "round"]
    assert list(curve["panel"]) == ["measure (held out)"] * 3 + ["gate"] * 3
    assert list(curve["n_scored"]) == [3] * 6 and list(curve["n_cells"]) == [3] * 6
    # three equal round-0 scores have no spread: no interval rather than a zero-width one
    assert np.isnan(curve.loc[0, "mean_ci_low"]) and np.isnan(curve.loc[0, "reduction_ci_low"])
    assert curve.loc[0, "share_ci_low"] == pytest.approx(stats.binomtest(3, 3).proportion_ci(method="wilson").low)

    # the generic tables: the curve is the held-out panel's over every cell the loop saw, the gate's beside it
    assert set(tables["mitigation_curve"]["panel"]) == {"measure (held out)"}
    assert set(tables["mitigation_curve_gate"]["panel"]) == {"gate"}
    assert list(tables["mitigation_success"]["panel"]) == ["measure (held out)", "gate"]


def test_without_a_held_out_panel_the_report_says_the_figures_are_the_gates(tmp_path, write_config):
    run = tmp_path / "run"
    run_config(write_config(mitigation_config()), run)  # raters: [profanity], the older name of gate
    tables = analyze_run(run, study="persona_toxicity", n_boot=0)
    assert list(tables["headline_mitigation_success"]["panel"]) == ["gate"]
    notes = tables["headline_notes"]
    reasons = notes.loc[notes["table"] == "headline_mitigation_success", "reason"].tolist()
    assert any("no held-out measure panel" in r for r in reasons)
    assert set(tables["mitigation_panels"]["role"]) == {"critic", "gate"}
