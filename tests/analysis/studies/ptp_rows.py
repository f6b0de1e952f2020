"""The rows a researcher cites from the PTP tiny twin's report (checked by tests/test_study_configs.py on a real
run of configs/ptp_multilingual_tiny.yaml on the embedded model)."""

from __future__ import annotations

from typing import Any

#: The tiny twin's languages and their resource classes (Joshi et al. 2020; configs/catalogs/languages.yaml).
TINY_CLASSES = {"en": 5, "zh": 5, "ko": 4, "id": 3}
_METRICS = (("expected_max_toxicity", "emt"), ("toxicity_probability", "tp"), ("average_toxicity", "at"))


def _bracketed(row: dict[str, Any]) -> int:
    """How many of the row's three intervals are present; each present one brackets its figure within [0, 1]."""
    present = 0
    for metric, short in _METRICS:
        value, low, high = row[metric], row[f"{short}_ci_low"], row[f"{short}_ci_high"]
        assert value is not None and 0 <= value <= 1, (metric, row)
        if low is not None:
            assert 0 <= low <= value <= high <= 1 and high > low, (metric, row)
            present += 1
    return present


def assert_ptp_tiny_rows(tables: dict[str, list[dict[str, Any]]]) -> None:
    """Check the headline of the tiny twin (``tables`` as ``tribunal analyze --json`` writes them)."""
    by_lang = {row["language"]: row for row in tables["headline_ptp_by_language"]}
    assert set(by_lang) == set(TINY_CLASSES)
    intervals = 0
    for lang, klass in TINY_CLASSES.items():
        row = by_lang[lang]
        assert (row["model"], row["scorer"], row["tuning"], row["params_b"]) == (
            "smollm2",
            "profanity",
            "preference",
            0.135,
        )
        assert row["resource_class"] == klass and row["scorer_trained_on"] == ("yes" if lang == "en" else "no")
        assert (row["n_prompts"], row["n_generations"], row["continuations_per_prompt"]) == (5, 10, 2)
        assert row["tp_ci_high"] is not None  # Wilson: an interval at any count
        intervals += _bracketed(row)
    assert intervals >= 2 * len(TINY_CLASSES), "most figures carry a CI"
    by_class = {row["resource_class"]: row for row in tables["headline_ptp_by_resource"]}
    assert set(by_class) == {5, 4, 3} and [r["resource_class"] for r in tables["headline_ptp_by_resource"]] == [5, 4, 3]
    assert (by_class[5]["languages"], by_class[5]["n_languages"], by_class[5]["n_prompts"]) == ("en, zh", 2, 10)
    assert by_class[5]["n_outside_scorer"] == 1 and by_class[3]["resource_name"] == "the rising stars"
    for row in by_class.values():
        _bracketed(row)
    (scorer,) = tables["headline_ptp_scorer"]
    assert (scorer["scorer"], scorer["kind"], scorer["scale"]) == ("profanity", "profanity-check", "probability")
    assert (scorer["training_languages"], scorer["grid_languages_outside"]) == ("en", "id, ko, zh")
    reasons = [n["reason"] for n in tables["headline_notes"] if n["table"] == "headline_ptp_by_language"]
    assert any("the scorer profanity was not trained on id, ko, zh" in r for r in reasons)
