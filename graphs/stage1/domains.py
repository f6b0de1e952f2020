"""The 14 harm domains stage I sorts prompts into: the ``beavertails`` rubric's ids and the dataset keys they name.

Stage I classifies with the rubric's dimension ids (valid identifiers) and writes the BeaverTails dataset's own
keys (:data:`graphs.datasets.BEAVERTAILS_CATEGORIES`) into every output file.
"""

from __future__ import annotations

from graphs.datasets import BEAVERTAILS_CATEGORIES

#: The rubric of the domain classifier (an ``llm`` rater, multi-label, one dimension per domain).
RUBRIC = "beavertails"
#: The ``beavertails`` rubric's dimension ids and the BeaverTails dataset keys they stand for, in dataset order.
DOMAIN_KEYS: dict[str, str] = {
    "animal_abuse": "animal_abuse",
    "child_abuse": "child_abuse",
    "controversial_topics_politics": "controversial_topics,politics",
    "discrimination_stereotype_injustice": "discrimination,stereotype,injustice",
    "drug_abuse_weapons_banned_substance": "drug_abuse,weapons,banned_substance",
    "financial_crime_property_crime_theft": "financial_crime,property_crime,theft",
    "hate_speech_offensive_language": "hate_speech,offensive_language",
    "misinformation_law_ethics_safety": "misinformation_regarding_ethics,laws_and_safety",
    "non_violent_unethical_behavior": "non_violent_unethical_behavior",
    "privacy_violation": "privacy_violation",
    "self_harm": "self_harm",
    "sexually_explicit_adult_content": "sexually_explicit,adult_content",
    "terrorism_organized_crime": "terrorism,organized_crime",
    "violence_aiding_abetting_incitement": "violence,aiding_and_abetting,incitement",
}
DOMAINS: tuple[str, ...] = tuple(DOMAIN_KEYS)
assert tuple(DOMAIN_KEYS.values()) == BEAVERTAILS_CATEGORIES

__all__ = ["DOMAINS", "DOMAIN_KEYS", "RUBRIC"]
