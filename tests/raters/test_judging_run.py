"""End to end: a run judges every reply with a panel; re-judging a run adds raters without regenerating."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import rate_stored, run_config, scripted_config


def _rows(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "transcripts.sqlite") as db:
        return db.execute(sql).fetchall()


def scripted_judge(rules: list[dict[str, str]]) -> dict[str, Any]:
    return {"name": "judge", "backend": "scripted", "options": {"rules": rules}}


JUDGE_RULES = [
    {"match": "<data>\\s*I will not write that", "reply": "I'm sorry, but I can't help with rating this."},
    {"match": "misunderstood", "reply": "Hmm, hard to say. Probably fine overall."},
    {"match": "<data>", "reply": '{"rationale": "Harmless.", "toxicity": 2}'},
]


def panel_config() -> dict[str, Any]:
    judge = {"kind": "llm", "model": scripted_judge(JUDGE_RULES), "rubric": "toxicity", "dimensions": ["toxicity"]}
    return scripted_config(
        panel={
            "aggregation": "mean",
            "refusal_detector": "refusal",
            "raters": [
                {"name": "judge", **judge},
                {"name": "judge", **judge, "framing": {"attribute": "gender", "value": "female"}},
                {"name": "refusal", "kind": "refusal-patterns"},
            ],
        }
    )


def test_run_stores_a_panel_of_ratings_and_rate_adds_a_rater(tmp_path, write_config):
    out = tmp_path / "run"
    config = panel_config()
    config["panel"]["raters"][1]["name"] = "judge-female"
    run_config(write_config(config), out)

    assert _rows(out, "SELECT COUNT(*) FROM generations WHERE outcome = 'ok'") == [(108,)]
    per_generation = _rows(out, "SELECT generation_key, COUNT(DISTINCT rater) FROM ratings GROUP BY 1")
    assert len(per_generation) == 108 and all(n == 3 for _, n in per_generation)
    outcomes = dict(_rows(out, "SELECT outcome, COUNT(*) FROM ratings WHERE rater_name = 'judge' GROUP BY 1"))
    # English toxic template → the generator refuses → the judge refuses to rate; negative → prose twice; else JSON
    assert outcomes == {"refusal": 18, "parse_error": 18, "scored": 72}
    # HTTP attempts: a question and its re-ask, or 0 for a verdict the response cache already held
    attempts = {n for (n,) in _rows(out, "SELECT DISTINCT attempts FROM ratings WHERE outcome = 'parse_error'")}
    assert 2 in attempts and attempts <= {0, 2}
    assert _rows(out, "SELECT DISTINCT score FROM ratings WHERE rater_name = 'judge' AND outcome = 'scored'") == [
        (0.25,)
    ]
    assert _rows(out, "SELECT COUNT(*) FROM ratings WHERE outcome != 'scored' AND score IS NOT NULL") == [(0,)]
    framed = _rows(out, "SELECT DISTINCT framing_attribute, framing_value, rubric, rubric_version FROM ratings "
                        "WHERE rater_name = 'judge-female'")  # fmt: skip
    assert framed == [("gender", "female", "toxicity", "1")]
    assert len(_rows(out, "SELECT DISTINCT rater FROM ratings")) == 3
    # the configured refusal detector fills the generation's flag
    flags = dict(
        _rows(
            out,
            "SELECT c.template_id || '/' || c.language, MIN(g.refusal) || MAX(g.refusal) FROM generations g "
            "JOIN cells c USING (cell_key) GROUP BY 1",
        )  # fmt: skip
    )
    assert flags.pop("toxic/en") == "11"
    assert set(flags.values()) == {"00"}

    generations_before = _rows(out, "SELECT * FROM generations ORDER BY generation_key")
    ratings_before = _rows(out, "SELECT rating_key, created_at FROM ratings ORDER BY 1")

    # a new config adds an LLM refusal judge; `rate` judges with it only
    extended = panel_config()
    extended["panel"]["raters"][1]["name"] = "judge-female"
    extended["panel"]["raters"].append(
        {
            "name": "llm-refusal",
            "kind": "llm",
            "rubric": "refusal",
            "model": scripted_judge(
                [
                    {"match": "<data>\\s*I will not", "reply": '{"rationale": "Declines.", "refusal": 1}'},
                    {"match": "<data>", "reply": '{"rationale": "Answers.", "refusal": 0}'},
                ]
            ),
        }
    )
    extended_path = write_config(extended, name="extended.yaml")
    summary = rate_stored(out, extended_path, only=["llm-refusal"])
    assert (summary.generations, summary.ratings_written, summary.ratings_skipped) == (108, 108, 0)
    assert _rows(out, "SELECT outcome, SUM(score), COUNT(*) FROM ratings WHERE rater_name = 'llm-refusal'") == [
        ("scored", 18.0, 108)
    ]
    assert _rows(out, "SELECT * FROM generations ORDER BY generation_key") == generations_before
    after = dict(_rows(out, "SELECT rating_key, created_at FROM ratings"))
    assert all(after[key] == created for key, created in ratings_before)

    # the whole extended panel again: every rating is already stored, nothing is asked or written
    summary = rate_stored(out, extended_path)
    assert (summary.ratings_written, summary.ratings_skipped) == (0, 108 * 4)
    assert _rows(out, "SELECT COUNT(*) FROM ratings") == [(108 * 4,)]
    assert _rows(out, "SELECT * FROM generations ORDER BY generation_key") == generations_before
    assert dict(_rows(out, "SELECT rating_key, created_at FROM ratings")) == after
    assert _rows(out, "SELECT command, status FROM runs ORDER BY run_id") == [
        ("run", "completed"),
        ("rate", "completed"),
        ("rate", "completed"),
    ]


def test_rate_with_the_runs_own_config_and_a_model_free_kind(tmp_path, write_config):
    config = scripted_config(panel={"raters": [{"name": "refusal", "kind": "refusal-patterns"}]})
    out = tmp_path / "run"
    run_config(write_config(config), out, limit=12)
    assert _rows(out, "SELECT COUNT(*) FROM ratings") == [(12,)]
    before = _rows(out, "SELECT * FROM generations ORDER BY 1")
    rate_stored(out, only=["refusal", "profanity-check"])
    assert dict(_rows(out, "SELECT rater_name, COUNT(*) FROM ratings GROUP BY 1")) == {
        "refusal": 12,
        "profanity-check": 12,
    }
    assert _rows(out, "SELECT * FROM generations ORDER BY 1") == before
