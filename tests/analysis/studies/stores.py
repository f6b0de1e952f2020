"""One small store per study, with hand-checkable numbers (the docstrings and constants say which)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.analysis.stores import make_store


def persona_toxicity_store(run_dir: Path, configs=()) -> Path:
    """Baseline t1 .1 / t2 .3; politician p1 (female) t1 .4, t2 .6 and p2 (male) t1 .2, t2 .2; plus a zh cell of
    p1 (tox .9) that has no zh baseline to pair with. Refusals: baseline 0, 1; p1 1, 1, 1; p2 0, 0."""
    cells = [
        {"key": "b1", "target_id": "t1", "is_baseline": 1, "refusal": 0},
        {"key": "b2", "target_id": "t2", "is_baseline": 1, "refusal": 1},
    ]
    tox = {"b1": 0.1, "b2": 0.3}
    for pid, gender, scores, refusal in (("p1", "female", (0.4, 0.6), 1), ("p2", "male", (0.2, 0.2), 0)):
        for target, score in zip(("t1", "t2"), scores, strict=True):
            key = f"{pid}-{target}"
            cells.append(
                {
                    "key": key,
                    "persona_id": pid,
                    "persona_kind": "character",
                    "persona_category": "politician",
                    "persona_gender": gender,
                    "target_id": target,
                    "refusal": refusal,
                }
            )
            tox[key] = score
    cells.append(
        {
            "key": "p1-t1-zh",
            "persona_id": "p1",
            "persona_kind": "character",
            "persona_category": "politician",
            "persona_gender": "female",
            "language": "zh",
            "refusal": 1,
        }
    )
    tox["p1-t1-zh"] = 0.9
    ratings = [
        {"cell": k, "rater": "tox", "kind": "hf-classifier", "dimension": "toxicity", "score": s}
        for k, s in tox.items()
    ]
    return make_store(run_dir, cells, ratings, configs)


CARE = {"none": [0.8], "p1": [0.7, 0.9], "p2": [0.6, 0.6], "p3": [0.2, 0.4]}  # test_metrics' value-inertia toy


FAIRNESS_JUDGES = {"none": (0.2, 0.4), "p1": (0.6, 0.8), "p2": (0.8, 1.0)}


def value_inertia_store(run_dir: Path) -> Path:
    cells, ratings = [], []
    for pid, scores in CARE.items():
        for i, score in enumerate(scores):
            key = f"care-{pid}-{i}"
            cells.append(
                {
                    "key": key,
                    "persona_id": pid,
                    "persona_kind": "randomized" if pid != "none" else "none",
                    "persona_category": "randomized" if pid != "none" else "none",
                    "target_id": f"care_{i}",
                    "target_category": "care",
                    "template_id": "moral_probes",
                    "is_baseline": int(pid == "none"),
                }
            )
            ratings.append({"cell": key, "rater": "probe", "kind": "moral-probe", "dimension": "care", "score": score})
            # An LLM judge on the same foundation disagrees completely; the moral-probe rater is preferred.
            ratings.append(
                {"cell": key, "rater": "judge", "kind": "llm-judge", "model": "x:y", "dimension": "care", "score": 0.5}
            )
    for pid, (a, b) in FAIRNESS_JUDGES.items():
        key = f"fair-{pid}"
        cells.append(
            {
                "key": key,
                "persona_id": pid,
                "persona_category": "randomized" if pid != "none" else "none",
                "target_id": "fair_0",
                "target_category": "fairness",
                "template_id": "moral_probes",
                "is_baseline": int(pid == "none"),
            }
        )
        ratings.append({"cell": key, "rater": "judge", "kind": "llm-judge", "dimension": "fairness", "score": a})
        ratings.append({"cell": key, "rater": "judge2", "kind": "llm-judge", "dimension": "fairness", "score": b})
    return make_store(run_dir, cells, ratings)


# model → language → prompt → scores of its k = 3 continuations (None: unscored)
PTP_SCORES = {
    "small": {
        "en": {"ptp_1": (0.1, 0.6, 0.2), "ptp_2": (0.3, 0.2, 0.4)},
        "de": {"ptp_1": (0.9, 0.1, 0.1), "ptp_2": (0.7, None, 0.5)},
    },
    "big": {
        "en": {"ptp_1": (0.0, 0.1, 0.2), "ptp_2": (0.1, 0.1, 0.1)},
        "de": {"ptp_1": (0.2, 0.3, 0.2), "ptp_2": (0.6, 0.1, 0.1)},
    },
}


def ptp_store(run_dir: Path, sizes: dict[str, float | None]) -> Path:
    cells, ratings = [], []
    for model, langs in PTP_SCORES.items():
        for lang, prompts in langs.items():
            for prompt, scores in prompts.items():
                for k, score in enumerate(scores):
                    key = f"{model}-{lang}-{prompt}-{k}"
                    cells.append(
                        {
                            "key": key,
                            "model": model,
                            "target_id": prompt,
                            "target_category": "high",
                            "template_id": "ptp",
                            "language": lang,
                            "repeat": k,
                        }
                    )
                    ratings.append(
                        {"cell": key, "rater": "tox", "kind": "hf-classifier", "dimension": "toxicity", "score": score}
                    )
    config = {"study": None, "models": [{"name": m, "params_b": s} for m, s in sizes.items()]}
    return make_store(run_dir, cells, ratings, [config])


# Shrout & Fleiss (1979), Table 2 (6 targets × 4 judges), scaled to 0–1; judges are the four framings below.
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float) / 10


FRAMINGS = [("gender", "female"), ("gender", "male"), ("age_group", "young"), ("age_group", "old")]


def demo_store(run_dir: Path, model: str | None = "openai:judge", single_rater_dimension: bool = True) -> Path:
    cells = [
        {
            "key": f"q{i}",
            "target_id": f"q{i}",
            "target_category": "violence" if i < 3 else "privacy",
            "template_id": "stage1",
        }
        for i in range(len(SF))
    ]
    ratings = []
    for i in range(len(SF)):
        for j, framing in enumerate(FRAMINGS):
            ratings.append(
                {
                    "cell": f"q{i}",
                    "rater": f"judge_{framing[1]}",
                    "kind": "llm-judge",
                    "model": model,
                    "framing": framing,
                    "dimension": "harmfulness",
                    "score": float(SF[i, j]),
                }
            )
        if single_rater_dimension:
            ratings.append(
                {
                    "cell": f"q{i}",
                    "rater": "judge_female",
                    "kind": "llm-judge",
                    "model": model,
                    "framing": ("gender", "female"),
                    "dimension": "toxicity",
                    "score": 0.1 * i,
                }
            )
    return make_store(run_dir, cells, ratings, [{"study": "demo_safetybench"}])
