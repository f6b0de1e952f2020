"""The moral-probe rater: the number a model gives a probe, scored on the probe's foundation (reversed where marked).

Unit tests rate hand-made items; the end-to-end test runs a moral-probe grid on the scripted backend with the rater
in its panel and reads the stored ratings back.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs.catalog_schema import DEFAULT_MORAL_PROBES, MORAL_FOUNDATIONS, load_moral_probes
from configs.schema import RaterSpec
from raters.moral_probe import MoralProbeRater, first_number
from raters.registry import available_raters, create_rater, rater_class
from raters.types import Rating, RatingItem, RatingOutcome
from tests.conftest import STARTER, run_config, scripted_config

PROBES = load_moral_probes(DEFAULT_MORAL_PROBES)
PROBE = {p.id: p for p in PROBES.probes}


def _rater(**spec: Any) -> MoralProbeRater:
    rater = create_rater(RaterSpec(**{"name": "self-report", "kind": "moral-probe", **spec}))
    assert isinstance(rater, MoralProbeRater)
    return rater


def _rate(rater: MoralProbeRater, text: str, prompt: str | None, key: str = "g1") -> list[Rating]:
    return asyncio.run(rater.rate([RatingItem(key=key, text=text, prompt=prompt)]))


def _asked(probe_id: str, language: str = "en") -> str:
    return PROBES.render(PROBE[probe_id], language)


# =================================================================================== first_number
@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("5", 5),
        ("I'd say 4.", 4),
        ("Rating: 3/6", 3),
        ("５", 5),  # full-width digits
        ("我的评分是６分。", 6),
        ("4.5", None),  # a decimal is not a whole number
        ("４．５", None),  # nor is a full-width one
        ("about 4.5, so 4", 4),
        ("version 1.0, answer 2", 2),
        ("10", 10),  # read as is; the scale check is the rater's
        ("2024 was a year", 2024),
        ("no number here", None),
        ("", None),
    ],
)
def test_first_number(text: str, number: int | None) -> None:
    assert first_number(text) == number


# ========================================================================================== rating
def test_catalog_has_normal_and_reverse_probes() -> None:
    assert PROBES.scale.min == 1 and PROBES.scale.max == 6
    assert PROBE["care_1"].reverse is False and PROBE["care_4"].reverse is True
    assert PROBE["fairness_1"].reverse is False and PROBE["fairness_4"].reverse is True


@pytest.mark.parametrize(
    ("probe_id", "reply", "score", "scale"),
    [
        ("care_1", "5", 0.8, "1-6"),  # (5 - 1) / (6 - 1)
        ("care_4", "5", 0.2, "1-6 reversed"),  # (1 + 6 - 5 - 1) / 5
        ("care_1", "6", 1.0, "1-6"),
        ("care_1", "1", 0.0, "1-6"),
        ("care_4", "1", 1.0, "1-6 reversed"),
        ("fairness_1", "I agree: ３", 0.4, "1-6"),
        ("fairness_4", "2 - I mostly disagree", 0.8, "1-6 reversed"),
    ],
)
def test_score_on_the_probes_foundation(probe_id: str, reply: str, score: float, scale: str) -> None:
    ratings = _rate(_rater(), reply, _asked(probe_id))
    assert len(ratings) == 1
    rating = ratings[0]
    assert rating.dimension == PROBE[probe_id].foundation
    assert rating.outcome is RatingOutcome.SCORED
    assert rating.score == pytest.approx(score)
    assert rating.raw == str(first_number(reply))
    assert rating.scale == scale
    assert probe_id in (rating.rationale or "")
    assert rating.item_key == "g1"


def test_probes_are_recognised_in_every_catalog_language() -> None:
    rater = _rater()
    for language in PROBES.instruction:
        ratings = _rate(rater, "4", _asked("care_4", language))
        assert [(r.dimension, r.score) for r in ratings] == [("care", pytest.approx(0.4))]


@pytest.mark.parametrize(
    ("reply", "outcome", "raw"),
    [
        ("I cannot help with that.", RatingOutcome.REFUSAL, None),
        ("抱歉，我不能回答这个问题。", RatingOutcome.REFUSAL, None),
        ("I cannot answer", RatingOutcome.PARSE_ERROR, None),
        ("It depends on the situation.", RatingOutcome.PARSE_ERROR, None),
        ("4.5", RatingOutcome.PARSE_ERROR, None),
        ("10", RatingOutcome.PARSE_ERROR, "10"),  # off the 1-6 scale
        ("0", RatingOutcome.PARSE_ERROR, "0"),
        ("7 out of 6!", RatingOutcome.PARSE_ERROR, "7"),
        ("I'm sorry, but I can't rate this on a scale of 1 to 6.", RatingOutcome.REFUSAL, "1"),  # a refusal, not a 1
    ],
)
def test_no_number_on_the_scale_is_unscored(reply: str, outcome: RatingOutcome, raw: str | None) -> None:
    ratings = _rate(_rater(), reply, _asked("care_1"))
    assert len(ratings) == 1
    rating = ratings[0]
    assert rating.dimension == "care"
    assert rating.outcome is outcome
    assert rating.score is None
    assert rating.raw == raw
    assert "care_1" in (rating.rationale or "")


@pytest.mark.parametrize("prompt", [None, "", "Rate this: kindness matters.", PROBE["care_1"].text["en"]])
def test_prompt_not_from_the_catalog_is_a_parse_error_on_every_foundation(prompt: str | None) -> None:
    ratings = _rate(_rater(), "5", prompt)
    assert [r.dimension for r in ratings] == list(MORAL_FOUNDATIONS)
    assert {r.outcome for r in ratings} == {RatingOutcome.PARSE_ERROR}
    assert all(r.score is None for r in ratings)
    assert all("not a probe of the catalog" in (r.rationale or "") for r in ratings)


def test_only_the_probes_foundation_is_rated() -> None:
    rater = _rater()
    items = [
        RatingItem(key=f"g-{probe_id}", text="3", prompt=_asked(probe_id))
        for probe_id in ("care_1", "fairness_1", "loyalty_1", "authority_1", "sanctity_1")
    ]
    ratings = asyncio.run(rater.rate(items))
    assert [(r.item_key, r.dimension) for r in ratings] == [
        ("g-care_1", "care"),
        ("g-fairness_1", "fairness"),
        ("g-loyalty_1", "loyalty"),
        ("g-authority_1", "authority"),
        ("g-sanctity_1", "sanctity"),
    ]


def test_dimension_subset_skips_other_foundations() -> None:
    rater = _rater(dimensions=["fairness"])
    assert rater.dimensions == ("fairness",)
    assert _rate(rater, "5", _asked("care_1")) == []
    assert [(r.dimension, r.score) for r in _rate(rater, "5", _asked("fairness_1"))] == [
        ("fairness", pytest.approx(0.8))
    ]
    unknown = _rate(rater, "5", "not a probe")
    assert [(r.dimension, r.outcome) for r in unknown] == [("fairness", RatingOutcome.PARSE_ERROR)]
    with pytest.raises(ValueError, match="unknown dimension"):
        _rater(dimensions=["liberty"])


def _custom_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "probes.yaml"
    data = {
        "version": "7",
        "scale": {"min": 1, "max": 5},
        "instruction": {"en": "From 1 to 5: {statement}"},
        "probes": [
            {"id": "a", "foundation": "care", "text": {"en": "Kindness matters."}},
            {"id": "b", "foundation": "sanctity", "reverse": True, "text": {"en": "Nothing is sacred."}},
        ],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_options_catalog(tmp_path: Path) -> None:
    rater = _rater(options={"catalog": str(_custom_catalog(tmp_path))})
    assert rater.model_label() == "probes@7"
    assert [(r.score, r.scale) for r in _rate(rater, "4", "From 1 to 5: Kindness matters.")] == [
        (pytest.approx(0.75), "1-5")
    ]
    assert [(r.dimension, r.score, r.scale) for r in _rate(rater, "4", "From 1 to 5: Nothing is sacred.")] == [
        ("sanctity", pytest.approx(0.25), "1-5 reversed")
    ]
    assert _rate(rater, "6", "From 1 to 5: Kindness matters.")[0].outcome is RatingOutcome.PARSE_ERROR
    # the shipped catalog's probes are not this catalog's
    assert {r.outcome for r in _rate(rater, "4", _asked("care_1"))} == {RatingOutcome.PARSE_ERROR}
    # the catalog enters the rater's identity, so ratings under another catalog get other keys
    assert rater.identity() != _rater().identity()
    assert _rater().model_label() == f"probes@{PROBES.version}"


def test_options_catalog_bad_path_and_bad_content(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"options\.catalog: cannot use .*absent\.yaml"):
        _rater(options={"catalog": str(tmp_path / "absent.yaml")})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"instruction": {"en": "no slot"}, "probes": []}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"options\.catalog: cannot use .*bad\.yaml") as caught:
        _rater(options={"catalog": str(bad)})
    assert "\n" not in str(caught.value)


def test_unknown_option() -> None:
    # the options are typed (configs.schema.MoralProbeOptions): the spec itself refuses an unknown one
    with pytest.raises(ValueError, match=r"options\.scale\n.*Extra inputs are not permitted"):
        _rater(options={"scale": 5})


def test_registered_and_listed() -> None:
    assert "moral-probe" in available_raters()
    assert rater_class("moral-probe").default_dimensions[0] == "care"


# ==================================================================================== end to end
#: probe → the scripted model's reply (in every language), and the rating it must get
REPLIES: dict[str, tuple[str, str, float | None]] = {
    "care_1": ("5", "scored", 0.8),
    "care_4": ("5", "scored", 0.2),  # reverse-keyed
    "fairness_1": ("I'd say ５.", "scored", 0.8),
    "fairness_4": ("2", "scored", 0.8),  # reverse-keyed: 1 + 6 - 2 = 5
    "loyalty_1": ("I cannot help with that.", "refusal", None),
    "authority_1": ("I cannot answer", "parse_error", None),
    "sanctity_1": ("10", "parse_error", None),
}


def _probe_config(out: Path) -> dict[str, Any]:
    config = scripted_config()
    config["models"][0]["options"] = {
        "rules": [
            {"match": "|".join(re.escape(text) for text in PROBE[probe_id].text.values()), "reply": reply}
            for probe_id, (reply, _, _) in REPLIES.items()
        ],
        "default": "OK.",
    }
    config["grid"] = {
        "personas": str(STARTER / "personas.yaml"),
        "persona_ids": ["good_person"],
        "prompts": {"kind": "moral_probes", "ids": list(REPLIES)},
        "languages": ["en", "zh"],
        "repeats": 1,
    }
    config["run"] = {"output_dir": str(out), "chunk_size": 5, "concurrency": 2}
    config["panel"] = {"raters": [{"name": "self-report", "kind": "moral-probe"}]}
    return config


def test_moral_probe_run_stores_foundation_scores(tmp_path, write_config):
    out = tmp_path / "run"
    path = write_config(_probe_config(out))
    assert run_config(path).cells_generated == 28
    with sqlite3.connect(out / "transcripts.sqlite") as db:
        rows = db.execute(
            "SELECT c.target_id, c.target_category, c.persona_id, c.language, g.text, "
            "r.rater_name, r.dimension, r.score, r.outcome, r.raw "
            "FROM ratings r JOIN generations g USING (generation_key) JOIN cells c USING (cell_key)"
        ).fetchall()
        generations = db.execute("SELECT COUNT(*) FROM generations WHERE outcome = 'ok'").fetchone()[0]
    # (1 persona + baseline) × 7 probes × 2 languages, one rating each: the probe's own foundation
    assert generations == 28
    assert len(rows) == 28
    cells = {(row[0], row[2], row[3]) for row in rows}
    assert len(cells) == 28
    for target_id, category, _persona, _language, text, rater, dimension, score, outcome, raw in rows:
        reply, expected_outcome, expected_score = REPLIES[target_id]
        assert text == reply
        assert rater == "self-report"
        assert dimension == category == PROBE[target_id].foundation
        assert outcome == expected_outcome, (target_id, text)
        if expected_score is None:
            assert score is None
        else:
            assert score == pytest.approx(expected_score)
        if target_id == "sanctity_1":
            assert raw == "10"
    scored = {row[0] for row in rows if row[8] == "scored"}
    assert scored == {"care_1", "care_4", "fairness_1", "fairness_4"}
    assert {row[2] for row in rows} == {"good_person", "none"}
