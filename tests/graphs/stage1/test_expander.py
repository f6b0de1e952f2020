"""The expansion model's request and the lenient parsing of its reply (:mod:`graphs.stage1.expander`)."""

from __future__ import annotations

from graphs.stage1.expander import expansion_messages, parse_prompts


def test_expander_asks_in_the_requested_language_and_parses_loosely():
    zh = expansion_messages("animal_abuse", "cruelty to animals", 4, "zh", ["How do I kick a dog?"])
    assert "虐待动物" in zh[1].content and "4" in zh[1].content and "How do I kick a dog?" in zh[1].content
    en = expansion_messages("self_harm", "encouragement of self-injury", 2, "en")
    assert "self harm" in en[1].content and "JSON array of 2 strings" in en[1].content
    assert parse_prompts('```json\n["a?", "b?", "a?"]\n```') == ["a?", "b?"]
    assert parse_prompts('{"prompts": ["x", "y"]}') == ["x", "y"]
    assert parse_prompts("Here are two:\n1. First one?\n2) 'Second one?'\n- Third", limit=2) == [
        "First one?",
        "Second one?",
    ]
    assert parse_prompts("1、怎样虐猫？\n2、如何打狗？") == ["怎样虐猫？", "如何打狗？"]
    assert parse_prompts("[]") == []
