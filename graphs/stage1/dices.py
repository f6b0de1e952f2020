"""DICES as stage I samples: one per (conversation, rater demographic profile), with the humans' ratings on it.

DICES (Aroyo et al. 2023) has every conversation rated by a diverse pool of raters (DICES-350: 123 raters per
conversation; DICES-990: 60–70), each described by gender, race, age group, education and (990 only) locale.
Demo-SafetyBench models that pluralism at the prompt level: a *sample* is a conversation under one demographic
profile, the combination of those five attributes as DICES records them (``Woman``, ``gen z``, ...). Raters who
share a profile are the humans of that sample: their ratings ride along as gold.

The text is the conversation as DICES shows it to its raters: the ``context`` (``USER:`` / ``LAMDA:`` turns) and
the rated ``response`` as a last ``LAMDA:`` turn. A human's rating is ``Q_overall`` read as an unsafe
probability, ``Yes`` = 1, ``Unsure`` = 0.5, ``No`` = 0 (the coding of DICES's own analyses of "unsafe"
perception); ``human_unsafe`` is the mean over the sample's raters, ``human_n`` their number, ``human_votes`` the
counts, and ``degree_of_harm`` and ``safety_gold`` the conversation's expert labels.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from agents.types import content_key
from configs.stage1 import PromptSource
from graphs.datasets import DatasetError, load_dices
from graphs.stage1.simhash import simhash
from graphs.stage1.state import Stage1Prompt

#: Profile attribute (the framing attributes of :class:`configs.schema.FramingSpec`) → DICES column.
PROFILE_COLUMNS: dict[str, str] = {
    "gender": "rater_gender",
    "race": "rater_race",
    "age_group": "rater_age",
    "education": "rater_education",
    "locale": "rater_locale",
}
#: ``Q_overall`` as an unsafe probability.
HUMAN_SCORES: dict[str, float] = {"Yes": 1.0, "Unsure": 0.5, "No": 0.0}


def conversation_text(context: str, response: str) -> str:
    """The conversation as DICES shows it: the context's turns, then the rated response as a ``LAMDA:`` turn."""
    context, response = (context or "").strip(), (response or "").strip()
    return f"{context}\nLAMDA: {response}" if context else f"LAMDA: {response}"


def load_dices_samples(source: PromptSource) -> tuple[list[Stage1Prompt], dict[str, int]]:
    """The samples of a DICES source, by conversation then profile, and what was read.

    Raises:
        DatasetError: the files are missing or unreadable, or no rating has a conversation.
    """
    frame = load_dices(source.path, split=source.split)
    where = str(source.path) if source.path else "DICES"
    profile = pd.DataFrame(
        {attr: frame[col].fillna("").astype(str).str.strip() for attr, col in PROFILE_COLUMNS.items()}
    )
    frame = frame.assign(**{f"_p_{a}": profile[a] for a in PROFILE_COLUMNS})
    frame["_set"] = frame["dices_set"].fillna("").astype(str)
    keys = ["_set", "item_id", *(f"_p_{a}" for a in PROFILE_COLUMNS)]
    items = list(dict.fromkeys(zip(frame["_set"], frame["item_id"], strict=True)))
    if source.limit is not None:
        keep = set(items[: source.limit])
        frame = frame[[pair in keep for pair in zip(frame["_set"], frame["item_id"], strict=True)]]
    conversations = set(zip(frame["_set"], frame["item_id"], strict=True))
    stats: Counter[str] = Counter(rows=len(frame), conversations=len(conversations))
    samples: list[Stage1Prompt] = []
    for key, part in frame.groupby(keys, sort=False):
        dices_set, item_id = key[0], key[1]
        first = part.iloc[0]
        text = conversation_text(str(first["context"] or ""), str(first["response"] or ""))
        if not text.strip():
            stats["empty_skipped"] += len(part)
            continue
        sample_profile = {a: v for a, v in zip(PROFILE_COLUMNS, key[2:], strict=True) if v}
        votes = Counter(str(v) for v in part["q_overall"].dropna())
        scored = [HUMAN_SCORES[v] for v in part["q_overall"].dropna().astype(str) if v in HUMAN_SCORES]
        metadata: dict[str, Any] = {
            "item_id": str(item_id),
            "dices_set": dices_set or None,
            "degree_of_harm": _text(first["degree_of_harm"]),
            "safety_gold": _text(first["safety_gold"]),
            "human_n": len(scored),
            "human_unsafe": sum(scored) / len(scored) if scored else None,
            "human_votes": dict(sorted(votes.items())),
            "rater_ids": sorted(map(str, part["rater_id"])),
        }
        sample_id = f"dices{dices_set}-{item_id}-" + content_key(sorted(sample_profile.items()))[:8]
        samples.append(
            Stage1Prompt(
                sample_id,
                text,
                source.language,
                "original",
                metadata,
                profile=sample_profile,
                fingerprint=simhash(text),
            )
        )
    if not samples:
        raise DatasetError(f"{where}: no DICES conversation to sample (columns context and response are empty)")
    stats["used"] = len(samples)
    stats["profiles"] = len({s.profile_key for s in samples})
    return samples, dict(stats)


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


__all__ = ["HUMAN_SCORES", "PROFILE_COLUMNS", "conversation_text", "load_dices_samples"]
