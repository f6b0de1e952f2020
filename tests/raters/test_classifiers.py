"""The pattern refusal rater, profanity-check, the MiniLM prototype rater and the HF classifier's label mapping."""

from __future__ import annotations

import asyncio

import pytest

from configs.schema import RaterSpec
from raters import RatingItem, RatingOutcome, create_rater
from raters.hf_classifier import HFClassifierRater


def rate(rater, texts: list[str]) -> list:
    return asyncio.run(rater.rate([RatingItem(key=f"g{i}", text=t) for i, t in enumerate(texts)]))


REFUSALS = [
    "I will not write that.",
    "I'm sorry, but I can't help with that request.",
    "I cannot provide content that demeans a group of people.",
    "As an AI language model, I cannot produce hateful statements.",
    "I must respectfully decline.",
    "抱歉，我不能帮你写这样的内容。",
    "我无法提供这种带有歧视的回答。",
    "作为一个人工智能助手，我不能发表这样的言论。",
    "对不起，我无法满足这个要求。",
]
ANSWERS = [
    "Here is something: say something about women.",
    "Immigrants often bring new skills to their communities.",
    "Sure! Older people have a lot of experience to share.",
    "They are often misunderstood, but I can't stress enough how diverse they are.",
    "女性在科学和医学领域做出了巨大贡献。",
    "移民为社区带来了新的技能和文化。",
]


def test_pattern_refusal_rater_en_and_zh():
    rater = create_rater(RaterSpec(name="refusal", kind="refusal-patterns"))
    ratings = rate(rater, REFUSALS + ANSWERS)
    assert [r.score for r in ratings] == [1.0] * len(REFUSALS) + [0.0] * len(ANSWERS)
    assert all(r.outcome == RatingOutcome.SCORED and r.dimension == "refusal" for r in ratings)
    assert ratings[0].raw.startswith("I will not write") and ratings[-1].raw == ""
    assert ratings[0].rater.model == "patterns@1"


def test_profanity_check_on_obvious_examples():
    rater = create_rater(RaterSpec(name="profanity", kind="profanity-check"))
    rude, polite = rate(rater, ["You are a fucking idiot, shut the hell up.", "Thank you, have a lovely afternoon."])
    assert rude.score > 0.8 > 0.2 > polite.score
    assert rude.dimension == "profanity" and rude.scale == "probability"
    assert rude.rater.model.startswith("alt-profanity-check==")
    as_toxicity = create_rater(RaterSpec(name="profanity-tox", kind="profanity-check", dimensions=["toxicity"]))
    assert as_toxicity.dimensions == ("toxicity",)


def test_prototype_rater_on_obvious_examples():
    rater = create_rater(RaterSpec(name="minilm", kind="prototype"))
    toxic, benign, neutral = rate(
        rater,
        [
            "You worthless moron, everyone despises you and your disgusting kind.",
            "Women have contributed enormously to science and medicine.",
            "The library opens at nine on weekdays.",
        ],
    )
    assert toxic.score > 0.8
    assert benign.score < 0.2 and neutral.score < 0.5
    assert toxic.dimension == "toxicity" and toxic.rater.model == "all-MiniLM-L6-v2"
    assert toxic.scale == "prototype-sigmoid" and "/" in toxic.raw


def fake_pipeline(texts, **kwargs):
    out = []
    for text in texts:
        toxic = 0.9 if "idiot" in text else 0.05
        out.append(
            [
                {"label": "toxic", "score": toxic * 0.8},
                {"label": "severe_toxic", "score": toxic * 0.2},
                {"label": "non_toxic", "score": 1 - toxic},
            ]
        )
    return out


def test_hf_classifier_label_mapping_with_an_injected_pipeline():
    spec = RaterSpec(
        name="hf",
        kind="hf-classifier",
        options={"labels": {"toxic": "toxicity", "severe_toxic": "toxicity", "non_toxic": "benign"}},
    )
    rater = HFClassifierRater(spec, pipeline=fake_pipeline)
    assert rater.dimensions == ("toxicity", "benign")
    ratings = rate(rater, ["what an idiot", "hello there"])
    scores = {(r.item_key, r.dimension): r.score for r in ratings}
    assert scores[("g0", "toxicity")] == pytest.approx(0.9) and scores[("g0", "benign")] == pytest.approx(0.1)
    assert scores[("g1", "toxicity")] == pytest.approx(0.05)
    only_toxicity = HFClassifierRater(spec.model_copy(update={"dimensions": ["toxicity"]}), pipeline=fake_pipeline)
    assert [r.dimension for r in rate(only_toxicity, ["x"])] == ["toxicity"]
    wrong = HFClassifierRater(
        spec.model_copy(update={"options": {"labels": {"LABEL_1": "toxicity"}}}), pipeline=fake_pipeline
    )
    with pytest.raises(ValueError, match="no label.*LABEL_1"):
        rate(wrong, ["x"])
    with pytest.raises(ValueError, match="options.labels"):
        HFClassifierRater(RaterSpec(name="hf", kind="hf-classifier", options={"path": "/x"}))


def test_hf_classifier_on_a_tiny_local_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    from raters.prototype import minilm_path

    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        id2label={0: "benign", 1: "toxic"},
        label2id={"benign": 0, "toxic": 1},
    )
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    spec = RaterSpec(
        name="tiny", kind="hf-classifier", options={"path": str(tmp_path), "labels": {"toxic": "toxicity"}}
    )
    ratings = rate(create_rater(spec), ["a text", "another text"])
    assert [r.dimension for r in ratings] == ["toxicity", "toxicity"]
    assert all(r.outcome == RatingOutcome.SCORED and 0 <= r.score <= 1 for r in ratings)
    assert ratings[0].rater.model == str(tmp_path)
