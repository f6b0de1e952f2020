"""The judge card (:mod:`analysis.judge_audit.card`): thresholds applied only to measured figures, the lines of
``failed``, the ``unmeasured`` checks, JSON records without NaN, the trust policy's keys and the merge of a stored
audit with a run."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest

import analysis.judge_audit.card as card_module
from analysis.judge_audit import CARD_COLUMNS, CHECKS, TrustPolicy, card_records, judge_card, merge_cards

GOOD = {
    "rater": "good",
    "dimension": "toxicity",
    "n": 200,
    "coverage": 0.99,
    "n_labelled": 120,
    "alpha_vs_humans": 0.8,
    "swap_n": 40,
    "swap_shift": 0.02,
    "retest_n": 50,
    "retest_alpha": 0.95,
}


def test_thresholds_apply_only_to_measured_figures():
    rows = [
        GOOD,
        {"rater": "bad-humans", "n": 200, "coverage": 0.95, "alpha_vs_humans": 0.21, "n_labelled": 120},
        {"rater": "never-audited", "n": 200, "coverage": 1.0},
        {"rater": "nothing"},
    ]
    card = judge_card(rows, TrustPolicy()).set_index("rater")
    assert card["trusted"].tolist() == [True, False, True, True]
    assert card.loc["good", "failed"] == [] and card.loc["good", "unmeasured"] == []
    assert card.loc["bad-humans", "failed"] == ["alpha_vs_humans 0.21 < 0.6 (n 120)"]
    assert card.loc["bad-humans", "unmeasured"] == ["swap_shift", "retest_alpha"]
    assert card.loc["never-audited", "unmeasured"] == ["alpha_vs_humans", "swap_shift", "retest_alpha"]
    assert card.loc["nothing", "unmeasured"] == ["alpha_vs_humans", "swap_shift", "coverage", "retest_alpha"]
    assert card["trusted"].dtype == bool


def test_every_check_fails_with_its_own_line():
    policy = TrustPolicy(max_abs_self_preference=0.2, max_framing_shift=0.1)
    row = {
        "rater": "bad",
        "n": 200,
        "coverage": 0.85,
        "n_labelled": 120,
        "alpha_vs_humans": 0.5,
        "swap_n": 40,
        "swap_shift": 0.15,
        "retest_n": 30,
        "retest_alpha": 0.7,
        "self_preference_n": 80,
        "self_preference": -0.25,
        "framing_n": 60,
        "framing_shift": 0.3,
        "framing_p": 0.001,
    }
    card = judge_card([row], policy)
    assert card.loc[0, "failed"] == [
        "alpha_vs_humans 0.5 < 0.6 (n 120)",
        "swap_shift 0.15 > 0.1 (n 40)",
        "coverage 0.85 < 0.9 (n 200)",
        "retest_alpha 0.7 < 0.8 (n 30)",
        "|self_preference| 0.25 > 0.2 (n 80)",
        "framing_shift 0.3 > 0.1 (n 60)",
    ]
    assert [c.name for c in CHECKS] == ["alpha_vs_humans", "swap_shift", "coverage", "retest_alpha",
                                        "self_preference", "framing_shift"]  # fmt: skip
    # a check turned off does not fail, and is not "unmeasured" either
    off = TrustPolicy(min_alpha_vs_humans=None, max_swap_shift=None, min_coverage=None, min_retest_alpha=None)
    card = judge_card([row], off)
    assert card.loc[0, "trusted"] and card.loc[0, "failed"] == [] and card.loc[0, "unmeasured"] == []


def test_the_boundary_passes_and_a_near_miss_is_printed_with_enough_digits():
    card = judge_card([{"rater": "edge", "coverage": 0.9, "alpha_vs_humans": 0.59996, "swap_shift": 0.1}])
    assert card.loc[0, "failed"] == ["alpha_vs_humans 0.59996 < 0.6"]  # no n given: none printed


def test_columns_types_and_extras():
    rows = [
        {**GOOD, "alpha_vs_humans_ci": [0.7, 0.9], "outcomes": {"scored": 198, "parse_error": 2}, "notes": "one"},
        {"rater": "other", "human_loo_alpha": 0.4, "notes": ["a", "b"], "swap_shift_ci": (None, None)},
    ]
    card = judge_card(rows)
    assert list(card.columns) == [*CARD_COLUMNS, "notes", "human_loo_alpha"]
    assert card.loc[0, "alpha_vs_humans_ci"] == (0.7, 0.9) and card.loc[1, "alpha_vs_humans_ci"] is None
    assert card.loc[1, "swap_shift_ci"] is None  # an interval with no finite end is no interval
    assert card.loc[0, "outcomes"] == {"scored": 198, "parse_error": 2} and card.loc[1, "outcomes"] is None
    assert card.loc[0, "notes"] == ["one"] and card.loc[1, "notes"] == ["a", "b"]
    assert str(card["n"].dtype) == "Int64" and card.loc[0, "n"] == 200 and card["n"].isna().iloc[1]
    assert np.isnan(card.loc[1, "coverage"]) and card.loc[1, "kind"] is None


def test_records_are_json_without_nan_and_round_trip():
    rows = [{**GOOD, "alpha_vs_humans_ci": (0.7, 0.9), "outcomes": {"scored": 198}}, {"rater": "x", "n": 3}]
    card = judge_card(rows)
    records = card_records(card)
    text = json.dumps(records, allow_nan=False)
    back = json.loads(text)
    assert back[0]["alpha_vs_humans_ci"] == [0.7, 0.9] and back[1]["coverage"] is None
    assert back[0]["n"] == 200 and isinstance(back[0]["n"], int) and back[0]["trusted"] is True
    assert back[1]["unmeasured"] == ["alpha_vs_humans", "swap_shift", "coverage", "retest_alpha"]
    assert card_records(judge_card(back)) == records  # a stored card reads back as itself


def test_invalid_rows():
    with pytest.raises(ValueError, match="no 'rater'"):
        judge_card([{"n": 3}])
    with pytest.raises(ValueError, match="ends swapped"):
        judge_card([{"rater": "x", "swap_shift_ci": [0.3, 0.1]}])
    with pytest.raises(ValueError, match="coverage must be a number"):
        judge_card([{"rater": "x", "coverage": "high"}])
    empty = judge_card([])
    assert list(empty.columns) == [*CARD_COLUMNS, "notes"] and empty.empty


def test_trust_policy_from_mapping():
    assert TrustPolicy.from_mapping(None) == TrustPolicy()
    policy = TrustPolicy.from_mapping({"min_alpha_vs_humans": None, "max_swap_shift": 0.2, "keep_untrusted": True})
    assert policy.min_alpha_vs_humans is None and policy.max_swap_shift == 0.2 and policy.keep_untrusted
    assert policy.min_coverage == 0.9  # absent keys keep their defaults
    with pytest.raises(ValueError, match=r"unknown trust setting\(s\) \['max_swap', 'min_alpha'\]"):
        TrustPolicy.from_mapping({"min_alpha": 0.5, "max_swap": 0.1})
    with pytest.raises(ValueError, match="must be a number or null"):
        TrustPolicy.from_mapping({"min_coverage": "0.9"})
    with pytest.raises(ValueError, match="keep_untrusted must be true or false"):
        TrustPolicy.from_mapping({"keep_untrusted": "yes"})


def test_merge_audit_figures_win_per_check():
    audit = [
        {"rater": "gpt", "dimension": "toxicity", "kind": "llm", "n": 150, "coverage": 0.8, "n_labelled": 150,
         "alpha_vs_humans": 0.7, "swap_n": 30, "swap_shift": 0.05, "notes": ["audit note"], "trusted": False,
         "failed": ["stale"], "source": "audit"},
        {"rater": "audit-only", "dimension": "toxicity", "n_labelled": 10, "alpha_vs_humans": 0.4},
    ]  # fmt: skip
    run = [
        {"rater": "gpt", "dimension": "toxicity", "kind": "llm", "model": "openai:gpt-4o-mini", "n": 1000,
         "coverage": 0.99, "alpha_vs_panel": 0.6, "alpha_vs_panel_n": 990, "swap_shift": 0.5, "notes": ["run note"]},
        {"rater": "gpt", "dimension": "refusal", "n": 1000, "coverage": 1.0},
        {"rater": "clf", "dimension": "toxicity", "n": 1000, "coverage": 0.97, "outcomes": {"scored": 970}},
    ]  # fmt: skip
    merged = merge_cards(audit, run)
    assert [(r["rater"], r["dimension"], r["source"]) for r in merged] == [
        ("gpt", "toxicity", "audit+run"),
        ("audit-only", "toxicity", "audit"),
        ("gpt", "refusal", "run"),
        ("clf", "toxicity", "run"),
    ]
    gpt = merged[0]
    # coverage comes whole from the audit (with its n); the swap check too (the run's stray swap_shift loses);
    # the panel agreement, which the audit did not measure, from the run
    assert (gpt["n"], gpt["coverage"], gpt["swap_shift"], gpt["swap_n"]) == (150, 0.8, 0.05, 30)
    assert (gpt["alpha_vs_panel"], gpt["alpha_vs_panel_n"]) == (0.6, 990)
    assert gpt["model"] == "openai:gpt-4o-mini" and gpt["notes"] == ["audit note", "run note"]
    assert "trusted" not in gpt and "failed" not in gpt
    card = judge_card(merged, TrustPolicy()).set_index(["rater", "dimension"])
    assert card.loc[("gpt", "toxicity"), "failed"] == ["coverage 0.8 < 0.9 (n 150)"]
    assert card.loc[("audit-only", "toxicity"), "failed"] == ["alpha_vs_humans 0.4 < 0.6 (n 10)"]
    assert card.loc[("clf", "toxicity"), "trusted"] and card.loc[("clf", "toxicity"), "source"] == "run"


def test_merge_reads_stored_records():
    stored = card_records(judge_card([{**GOOD, "source": "audit"}]))
    run = [{"rater": "good", "dimension": "toxicity", "n": 10, "coverage": 0.5, "alpha_vs_panel": 0.9}]
    merged = merge_cards(json.loads(json.dumps(stored)), run)
    assert len(merged) == 1 and merged[0]["source"] == "audit+run" and merged[0]["coverage"] == 0.99
    assert judge_card(merged).loc[0, "trusted"]


def test_docstring_examples():
    assert doctest.testmod(card_module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_card_is_a_dataframe_one_row_per_input():
    card = judge_card([GOOD, {**GOOD, "dimension": "refusal"}])
    assert isinstance(card, pd.DataFrame) and len(card) == 2 and card["source"].isna().all()
