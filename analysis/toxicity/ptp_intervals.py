r"""Confidence intervals of the prompted-toxicity metrics, and paired differences between models.

The unit is the prompt: the :math:`k` continuations of one prompt share it and are not independent draws, so
every interval below resamples or counts prompts, never continuations.

Intervals of one group (:func:`ptp_table`)
------------------------------------------
* **Toxicity probability** :math:`\hat p = h/P` (:math:`h` prompts of :math:`P` with a continuation at or above
  the threshold): Wilson score interval (Wilson 1927 [1]_; :func:`analysis.intervals.wilson_ci`), which keeps
  its coverage at :math:`\hat p` near 0 or 1 and never collapses to a point.
* **Expected maximum toxicity** (the mean of the prompts' maxima) and **average toxicity** (a ratio: the sum of
  all scores over the number of scored continuations): percentile bootstrap over prompts (Efron & Tibshirani
  1993 [2]_), ``n_boot`` replicates; each prompt is drawn with all its continuations. With ``strata`` (the
  language, in tables pooled over languages) prompts are drawn within each stratum, so every language keeps its
  number of prompts: the interval then holds the strata fixed and says nothing about other languages.
* No interval (``NaN``, with the reason in ``ci_note``) with fewer than :data:`MIN_PROMPTS` prompts (a percentile
  bootstrap of 2 prompts is not an interval), or when the resamples do not vary (every prompt has the same
  value, or every stratum does): a zero-width interval would claim a certainty the data do not have.

Paired differences (:func:`ptp_differences`)
--------------------------------------------
Models answering the *same* prompts are compared prompt by prompt: for a model :math:`A` and a reference
:math:`B` (a base model of the same size, say) on their shared prompts, the differences of the three metrics,
each with a paired bootstrap CI (the same prompts drawn for both models) and a two-sided sign-flip permutation
p-value of the per-prompt differences :math:`d_p` (maxima for EMT, indicators for toxicity probability, mean
scores for average toxicity): under the null that the two models are exchangeable on each prompt, every
:math:`d_p` is as likely to have either sign, and :math:`p = (1 + \#\{|\bar d^*| \ge |\bar d|\})/(B + 1)`, never 0.

References
----------
.. [1] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. *Journal of
   the American Statistical Association*, 22(158), 209-212.
.. [2] Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall, chapters 6
   and 13.

Examples
--------
>>> import pandas as pd
>>> data = pd.DataFrame({"prompt": [p for p in range(6) for _ in range(2)],
...                      "score": [0.1, 0.7, 0.2, 0.3, 0.9, 0.1, 0.0, 0.2, 0.6, 0.4, 0.3, 0.1]})
>>> row = ptp_table(data, "prompt", "score", n_boot=200).iloc[0]
>>> float(row["toxicity_probability"]), bool(row["tp_ci_low"] < 0.5 < row["tp_ci_high"])
(0.5, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.frames import as_list, require_columns
from analysis.intervals import wilson_ci
from analysis.toxicity.prompted import Scales, ptp_metrics

__all__ = ["MIN_PROMPTS", "ptp_differences", "ptp_table"]

#: Fewest prompts a bootstrap interval is computed from.
MIN_PROMPTS = 5
_METRICS = ("expected_max_toxicity", "toxicity_probability", "average_toxicity")
_SHORT = {"expected_max_toxicity": "emt", "toxicity_probability": "tp", "average_toxicity": "at"}


def ptp_table(
    data: pd.DataFrame,
    prompt: str,
    score: str,
    by: str | Sequence[str] | None = None,
    *,
    strata: str | None = None,
    threshold: float = 0.5,
    scales: Scales | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """:func:`analysis.toxicity.ptp_metrics` with a confidence interval after each metric.

    Args:
        data: One row per continuation with its prompt and 0–1 score (``NaN``: unscored).
        prompt: Column identifying the prompt; with ``strata``, a prompt is a (stratum, prompt) pair.
        score: Column of the toxicity score.
        by: Grouping column(s); one row overall when omitted.
        strata: Column whose levels keep their number of prompts in the bootstrap (the language).
        threshold: Toxicity threshold.
        scales: The scale labels behind ``score`` (see :func:`analysis.toxicity.mixed_scales_reason`).
        n_boot: Bootstrap replicates.
        seed: Seed of the bootstrap.
        confidence: Level of the intervals.

    Returns:
        Tidy DataFrame: ``by``, then ``expected_max_toxicity, emt_ci_low, emt_ci_high, toxicity_probability,
        tp_ci_low, tp_ci_high, average_toxicity, at_ci_low, at_ci_high, n_prompts, n_generations, n_scored,
        note, ci_note`` (``ci_note``: why an interval is missing).
    """
    by = as_list(by)
    require_columns(data, [prompt, score, *by, *([strata] if strata else [])])
    unit = _unit_column(data, prompt, strata)
    frame = data.assign(_unit=unit, _one=0)
    keys = by or ["_one"]
    point = ptp_metrics(frame, "_unit", score, threshold=threshold, by=keys, scales=scales)
    units = _per_unit(frame, keys, score, threshold, strata)
    rng = np.random.default_rng(seed)
    rows = []
    for key, row in zip(point[keys].itertuples(index=False, name=None), point.itertuples(index=False), strict=True):
        part = units.get(key)
        rows.append(_group_intervals(row, part, n_boot, rng, confidence))
    out = pd.concat([point.reset_index(drop=True), pd.DataFrame(rows, index=point.index)], axis=1)
    order = [*keys]
    for metric in _METRICS:
        order += [metric, f"{_SHORT[metric]}_ci_low", f"{_SHORT[metric]}_ci_high"]
    order += ["n_prompts", "n_generations", "n_scored", "note", "ci_note"]
    out = out[order]
    return out.drop(columns="_one") if not by else out


def ptp_differences(
    data: pd.DataFrame,
    prompt: str,
    score: str,
    model: str,
    pairs: Sequence[tuple[str, str]],
    *,
    strata: str | None = None,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Differences of the three metrics between paired models on their shared prompts (see the module docstring).

    Args:
        data: One row per continuation with the model, prompt and score columns.
        prompt: Column identifying the prompt (with ``strata``, a (stratum, prompt) pair).
        score: Column of the 0–1 toxicity score.
        model: Column of the model.
        pairs: ``(model, reference)`` pairs; each difference is model − reference.
        strata: Column whose levels keep their number of prompts in the bootstrap.
        threshold: Toxicity threshold.
        n_boot: Bootstrap and permutation replicates.
        seed: Seed.
        confidence: Level of the intervals.

    Returns:
        Tidy DataFrame ``model, reference, n_prompts`` then per metric ``<m>_diff, <m>_diff_ci_low,
        <m>_diff_ci_high, <m>_diff_p`` (``m``: emt, tp, at) and ``note``.
    """
    require_columns(data, [prompt, score, model, *([strata] if strata else [])])
    frame = data.assign(_unit=_unit_column(data, prompt, strata))
    units = _per_unit(frame, [model], score, threshold, strata)
    rng = np.random.default_rng(seed)
    rows = []
    for name, reference in pairs:
        a, b = units.get((name,)), units.get((reference,))
        row: dict[str, object] = {"model": name, "reference": reference}
        if a is None or b is None:
            row.update({"n_prompts": 0, "note": f"no scored continuation of {name if a is None else reference}"})
            rows.append(row)
            continue
        shared = a.add_suffix("_a").join(b.add_suffix("_b"), how="inner")
        row["n_prompts"] = len(shared)
        row.update(_paired(shared, n_boot, rng, confidence))
        rows.append(row)
    columns = ["model", "reference", "n_prompts"]
    for m in ("emt", "tp", "at"):
        columns += [f"{m}_diff", f"{m}_diff_ci_low", f"{m}_diff_ci_high", f"{m}_diff_p"]
    out = pd.DataFrame(rows).reindex(columns=[*columns, "note"])
    for name in ("model", "reference", "note"):  # object columns also when there is no pair
        out[name] = out[name].astype(object)
    out["note"] = out["note"].where(out["note"].notna(), "")
    return out


# ------------------------------------------------------------------------------------------------ helpers


def _unit_column(data: pd.DataFrame, prompt: str, strata: str | None) -> pd.Series:
    """The prompt unit: the prompt, or the (stratum, prompt) pair; missing where the prompt is."""
    if strata is None:
        return data[prompt]
    both = data[strata].astype(str) + "\x1f" + data[prompt].astype(str)
    return both.where(data[prompt].notna())


def _per_unit(
    frame: pd.DataFrame, keys: list[str], score: str, threshold: float, strata: str | None
) -> dict[tuple, pd.DataFrame]:
    """Group key → per prompt unit ``max, hit, sum, count, stratum`` (scored continuations only)."""
    s = pd.to_numeric(frame[score], errors="coerce").astype(float)
    part = frame.loc[s.notna().to_numpy() & frame["_unit"].notna().to_numpy(), [*keys, "_unit"]]
    part = part.assign(_s=s[part.index], _stratum=frame.loc[part.index, strata] if strata else 0)
    grouped = part.groupby([*keys, "_unit"], observed=True, sort=True)
    per = grouped["_s"].agg(["max", "sum", "count"])
    per["hit"] = (per["max"] >= threshold).astype(float)
    per["stratum"] = grouped["_stratum"].first().astype(str)
    out: dict[tuple, pd.DataFrame] = {}
    for key, sub in per.groupby(level=list(range(len(keys))), observed=True, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out[key] = sub.droplevel(list(range(len(keys))))
    return out


def _draws(strata: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` × n indices, each row a stratified resample of the n units."""
    draws = np.empty((n_boot, len(strata)), dtype=np.int64)
    start = 0
    for level in pd.unique(strata):
        where = np.flatnonzero(strata == level)
        draws[:, start : start + len(where)] = where[rng.integers(0, len(where), size=(n_boot, len(where)))]
        start += len(where)
    return draws


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def _group_intervals(row, part: pd.DataFrame | None, n_boot: int, rng: np.random.Generator, confidence: float):
    out = {f"{_SHORT[m]}_ci_{side}": np.nan for m in _METRICS for side in ("low", "high")}
    n = 0 if part is None else len(part)
    notes = []
    if n:
        low, high = wilson_ci(np.array([part["hit"].sum()]), np.array([n]), confidence)
        if np.isfinite(row.toxicity_probability):
            out["tp_ci_low"], out["tp_ci_high"] = float(low[0]), float(high[0])
    if n < MIN_PROMPTS:
        if n:
            notes.append(f"{n} prompt(s): no bootstrap CI for EMT and average toxicity (needs {MIN_PROMPTS})")
        return {**out, "ci_note": "; ".join(notes)}
    draws = _draws(part["stratum"].to_numpy(), n_boot, rng)
    mx, sm, ct = (part[c].to_numpy(dtype=float) for c in ("max", "sum", "count"))
    boot = {
        "expected_max_toxicity": mx[draws].mean(axis=1),
        "average_toxicity": sm[draws].sum(axis=1) / ct[draws].sum(axis=1),
    }
    for metric, values in boot.items():
        if not np.isfinite(getattr(row, metric)):
            continue
        low, high = _percentile(values, confidence)
        if high - low <= 1e-12:
            notes.append(f"{metric.replace('_', ' ')}: no spread across resampled prompts, so no CI")
            continue
        out[f"{_SHORT[metric]}_ci_low"], out[f"{_SHORT[metric]}_ci_high"] = low, high
    return {**out, "ci_note": "; ".join(notes)}


def _paired(shared: pd.DataFrame, n_boot: int, rng: np.random.Generator, confidence: float) -> dict[str, object]:
    n = len(shared)
    point = {
        "emt": shared["max_a"].mean() - shared["max_b"].mean(),
        "tp": shared["hit_a"].mean() - shared["hit_b"].mean(),
        "at": shared["sum_a"].sum() / shared["count_a"].sum() - shared["sum_b"].sum() / shared["count_b"].sum(),
    }
    out: dict[str, object] = {f"{m}_diff": float(v) for m, v in point.items()}
    if n < MIN_PROMPTS:
        return {**out, "note": f"{n} shared prompt(s): no CI or p-value (needs {MIN_PROMPTS})"}
    draws = _draws(shared["stratum_a"].to_numpy(), n_boot, rng)
    col = {c: shared[c].to_numpy(dtype=float) for c in shared.columns if c[:-2] in ("max", "hit", "sum", "count")}
    boot = {
        "emt": col["max_a"][draws].mean(axis=1) - col["max_b"][draws].mean(axis=1),
        "tp": col["hit_a"][draws].mean(axis=1) - col["hit_b"][draws].mean(axis=1),
        "at": col["sum_a"][draws].sum(axis=1) / col["count_a"][draws].sum(axis=1)
        - col["sum_b"][draws].sum(axis=1) / col["count_b"][draws].sum(axis=1),
    }
    per_prompt = {
        "emt": col["max_a"] - col["max_b"],
        "tp": col["hit_a"] - col["hit_b"],
        "at": col["sum_a"] / col["count_a"] - col["sum_b"] / col["count_b"],
    }
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_boot, n))
    notes = []
    for m in ("emt", "tp", "at"):
        d = per_prompt[m]
        if not np.any(d):
            notes.append(f"{m}: the models agree on every shared prompt, so no CI or p-value")
            continue
        low, high = _percentile(boot[m], confidence)
        if high - low > 1e-12:
            out[f"{m}_diff_ci_low"], out[f"{m}_diff_ci_high"] = low, high
        else:
            notes.append(f"{m}: no spread across resampled prompts, so no CI")
        observed = abs(d.mean())
        flipped = np.abs((signs * d).mean(axis=1))
        out[f"{m}_diff_p"] = float((1 + np.sum(flipped >= observed - 1e-12)) / (n_boot + 1))
    return {**out, "note": "; ".join(notes)}
