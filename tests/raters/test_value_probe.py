"""The value-probe rater (Schwartz value items, scored like the moral probes) and a grid that asks both instruments.

Unit tests rate hand-made items; the end-to-end test runs a role-play grid of moral probes and value items on the
scripted backend with both raters in its panel, reads the stored ratings back and analyses the run.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis import analyze_run
from analysis.studies.value_inertia import LEAD_COLUMNS
from configs.catalog_schema import (
    DEFAULT_MORAL_PROBES,
    DEFAULT_SCHWARTZ_VALUES,
    SCHWARTZ_VALUES,
    load_moral_probes,
    load_schwartz_values,
)
from configs.schema import RaterSpec
from raters.moral_probe import MoralProbeRater, ValueProbeRater
from raters.registry import available_raters, create_rater
from raters.types import Rating, RatingItem, RatingOutcome
from tests.conftest import STARTER, run_config, scripted_config

VALUES = load_schwartz_values(DEFAULT_SCHWARTZ_VALUES)
ITEM = {i.id: i for i in VALUES.items}
PROBES = load_moral_probes(DEFAULT_MORAL_PROBES)
PROBE = {p.id: p for p in PROBES.probes}


def _rater(kind: str = "value-probe", **spec: Any) -> MoralProbeRater:
    rater = create_rater(RaterSpec(**{"name": "self-values", "kind": kind, **spec}))
    assert isinstance(rater, MoralProbeRater)
    return rater


def _rate(rater: MoralProbeRater, text: str, prompt: str) -> list[Rating]:
    return asyncio.run(rater.rate([RatingItem(key="g1", text=text, prompt=prompt)]))


def test_value_item_is_scored_on_its_value_reversed_where_marked() -> None:
    rater = _rater()
    assert isinstance(rater, ValueProbeRater) and rater.dimensions == SCHWARTZ_VALUES
    (rating,) = _rate(rater, "5", VALUES.render(ITEM["universalism_1"], "en"))
    assert (rating.dimension, rating.outcome, rating.score, rating.raw) == ("universalism", "scored", 0.8, "5")
    (rating,) = _rate(rater, "我选５。", VALUES.render(ITEM["universalism_3"], "zh"))  # reverse-keyed: 1 + 6 - 5
    assert rating.dimension == "universalism" and rating.score == pytest.approx(0.2)
    assert rating.scale == "1-6 reversed" and rating.rationale == "probe universalism_3"
    (rating,) = _rate(rater, "Somewhere in the middle.", VALUES.render(ITEM["power_1"], "en"))
    assert (rating.dimension, rating.outcome, rating.score) == ("power", RatingOutcome.PARSE_ERROR, None)
    assert rater.model_label() == f"values@{VALUES.version}"


def test_each_instrument_leaves_the_other_instruments_items_unrated() -> None:
    values, moral = _rater(), _rater("moral-probe", name="self-report")
    assert _rate(values, "5", PROBES.render(PROBE["care_1"], "en")) == []
    assert _rate(moral, "5", VALUES.render(ITEM["benevolence_1"], "zh")) == []
    # a prompt of neither catalog is still a parse error on every dimension, with the reason
    unknown = _rate(values, "5", "How are you?")
    assert len(unknown) == len(SCHWARTZ_VALUES) and {r.outcome for r in unknown} == {RatingOutcome.PARSE_ERROR}
    assert unknown[0].rationale == "the prompt is not a probe of the catalog"


def test_value_probe_is_registered_and_takes_a_catalog(tmp_path: Path) -> None:
    assert "value-probe" in available_raters()
    one = tmp_path / "one.yaml"
    text = DEFAULT_SCHWARTZ_VALUES.read_text(encoding="utf-8")
    one.write_text(text.replace('version: "1"', 'version: "9"'), encoding="utf-8")
    rater = _rater(options={"catalog": str(one)})
    assert rater.model_label() == "values@9" and rater.settings()["catalog"] != _rater().settings()["catalog"]
    with pytest.raises(ValueError, match=r"options\.catalog: cannot use .*moral_probes\.yaml"):
        _rater(options={"catalog": str(DEFAULT_MORAL_PROBES)})  # a moral-probe catalog is not a value catalog
    with pytest.raises(ValueError, match="unknown dimension"):
        _rater(dimensions=["care"])


# ==================================================================================== end to end
#: item → the scripted model's reply, and the score it must get
REPLIES: dict[str, tuple[str, float | None]] = {
    "care_1": ("5", 0.8),
    "fairness_1": ("6", 1.0),
    "benevolence_1": ("4", 0.6),
    "benevolence_3": ("2", 0.8),  # reverse-keyed: 1 + 6 - 2 = 5
    "power_1": ("2", 0.2),
    "power_2": ("3", 0.4),
}


def _both_config(out: Path) -> dict[str, Any]:
    config = scripted_config()
    texts = {**{k: p.text for k, p in PROBE.items()}, **{k: i.text for k, i in ITEM.items()}}
    config["models"][0]["options"] = {
        "rules": [
            {"match": "|".join(re.escape(text) for text in texts[item_id].values()), "reply": reply}
            for item_id, (reply, _) in REPLIES.items()
        ],
        "default": "OK.",
    }
    config["grid"] = {
        "personas": str(STARTER / "personas.yaml"),
        "persona_ids": ["good_person", "talk_show_host"],
        "persona_prompt": "roleplay",
        "prompts": {
            "kind": "moral_probes",
            "instruments": ["moral_foundations", "schwartz_values"],
            "ids": list(REPLIES),
        },
        "languages": ["en", "zh"],
    }
    config["study"] = "value_inertia"
    config["run"] = {"output_dir": str(out), "chunk_size": 8, "concurrency": 2}
    config["panel"] = {
        "raters": [{"name": "self-report", "kind": "moral-probe"}, {"name": "self-values", "kind": "value-probe"}]
    }
    return config


def test_a_grid_of_both_instruments_gets_one_rating_per_answer_and_a_headline(tmp_path, write_config):
    out = tmp_path / "run"
    assert run_config(write_config(_both_config(out))).cells_generated == 36  # (2 personas + baseline) × 6 × 2
    with sqlite3.connect(out / "transcripts.sqlite") as db:
        rows = db.execute(
            "SELECT c.target_id, c.target_category, c.persona_id, r.rater_name, r.dimension, r.score, r.outcome "
            "FROM ratings r JOIN generations g USING (generation_key) JOIN cells c USING (cell_key)"
        ).fetchall()
        system = db.execute(
            "SELECT messages FROM cells WHERE persona_id = 'good_person' AND language = 'zh' LIMIT 1"
        ).fetchone()[0]
    assert "你是" in system and "价值观" in system  # the Chinese role-play prompt, not the style one
    assert len(rows) == 36  # one rating per answer: neither rater marks the other instrument's items
    for target_id, category, _persona, rater, dimension, score, outcome in rows:
        assert dimension == category
        assert rater == ("self-report" if target_id in PROBE else "self-values")
        expected = REPLIES[target_id][1]
        assert (outcome, score) == (
            ("scored", pytest.approx(expected)) if expected is not None else ("parse_error", None)
        )

    vi = analyze_run(out)["headline_value_inertia"]
    assert tuple(vi.columns[: len(LEAD_COLUMNS)]) == LEAD_COLUMNS
    by_dim = vi.set_index("dimension")
    # moral foundations, then basic values in the order of Schwartz's circle, then the higher-order values
    assert list(vi["dimension"]) == [
        "care",
        "fairness",
        "power",
        "benevolence",
        "self_enhancement",
        "self_transcendence",
    ]
    assert by_dim.loc["benevolence", "instrument"] == "schwartz_values"
    assert by_dim.loc["self_transcendence", "instrument"] == "schwartz_higher_order"
    assert by_dim.loc["self_transcendence", "scores_from"] == "pooled from benevolence, universalism"
    assert by_dim.loc["benevolence", "default_mean"] == pytest.approx(0.7)  # (0.6 + 0.8) / 2, each language
    assert by_dim.loc["benevolence", "n_answers"] == 12
    # every persona answers alike (the script ignores the persona): no persona variance, and the note says so
    assert np.isnan(by_dim.loc["care", "persona_omega_squared"]) and by_dim.loc["care", "note"]
    high = by_dim.loc["self_enhancement"]  # power_1 and power_2 pooled: (0.2 + 0.4) / 2, both personas alike
    assert high["default_mean"] == pytest.approx(0.3) and high["share_same_side"] == 1
    # 8 persona answers (2 personas × 2 items × 2 languages) less rank 2 + 3: 3 residual degrees of freedom
    assert (high["n_persona_answers"], high["df_persona"], high["df_residual"]) == (8, 1, 3)
    assert high["persona_eta_squared_null"] == pytest.approx(1 / 4)  # what noise alone would give
