r"""Mitigation curves: what the critique–rewrite loop achieves, round by round.

The loop rewrites a generation while its stopping panel scores it at or above the threshold :math:`\tau` and
rounds are left. Round 0 is the original generation. Per round :math:`r` we report, over a fixed population of
cells (all cells, or those that entered the loop),

* the mean toxicity :math:`\bar s_r` and the share at or above :math:`\tau`;
* the reduction from round 0, :math:`\bar s_0-\bar s_r`, and relative, :math:`(\bar s_0-\bar s_r)/\bar s_0`.

A cell that stopped before round :math:`r` keeps its last generation's score (last observation carried forward),
so the population is the same in every round and the curve is monotone only if rewrites help. A generation that
exists but was not scored is *not* filled: it counts in ``n_unscored`` and leaves the mean.

*Rounds to success* is the first round whose score is below :math:`\tau` (0 if the original already was);
cells that never get there count as failures. Stop reasons are those of the transcript's ``mitigation`` table.

Meaning preservation is the cosine similarity :math:`\frac{u\cdot v}{\lVert u\rVert\lVert v\rVert}` of sentence
embeddings of the original and the rewrite (as in semantic-textual-similarity evaluation, Reimers & Gurevych
2019). The embedding model is passed in as a callable, so this package imports no model runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from analysis.frames import require_columns

__all__ = ["cosine_similarity", "meaning_preservation", "mitigation_curve", "rounds_to_success", "stop_reasons"]

STOP_REASONS = ("below_threshold", "max_rounds", "refused", "rewrite_failed")


def _round_matrix(
    data: pd.DataFrame, cell: str, round_col: str, score: str, cells: Iterable | None
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    require_columns(data, [cell, round_col, score])
    frame = data[[cell, round_col]].assign(_s=pd.to_numeric(data[score], errors="raise").to_numpy(float))
    if cells is not None:
        frame = frame[frame[cell].isin(pd.Index(list(cells)))]
    if frame.empty:
        return np.empty((0, 0)), np.empty((0, 0), dtype=bool), pd.Index([])
    codes, index = pd.factorize(frame[cell])
    rounds = frame[round_col].to_numpy(dtype=np.int64)
    n_rounds = int(rounds.max()) + 1
    flat = codes.astype(np.int64) * n_rounds + rounds
    exists = np.bincount(flat, minlength=len(index) * n_rounds).reshape(len(index), n_rounds) > 0
    ok = ~np.isnan(frame["_s"].to_numpy())
    sums = np.bincount(flat[ok], weights=frame["_s"].to_numpy()[ok], minlength=exists.size)
    counts = np.bincount(flat[ok], minlength=exists.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (sums / counts).reshape(exists.shape)
    # Carry a score forward only into rounds that have no generation at all.
    for r in range(1, n_rounds):
        fill = ~exists[:, r]
        scores[fill, r] = scores[fill, r - 1]
        exists[fill, r] = exists[fill, r - 1]
    return scores, exists, pd.Index(index)


def mitigation_curve(
    data: pd.DataFrame,
    score: str = "score",
    threshold: float = 0.5,
    cell: str = "cell_id",
    round_col: str = "round",
    cells: Iterable | None = None,
) -> pd.DataFrame:
    """Per-round mean toxicity, share above threshold and reduction from round 0.

    Args:
        data: One row per generation (all rounds) with its cell, round and stopping-panel score.
        score: Column of the 0–1 score.
        threshold: The loop's threshold.
        cell: Column identifying the cell; ``round_col``: the round (0 = original).
        cells: Optional subset of cells (for example those in the ``mitigation`` table, which entered the loop).

    Returns:
        ``round, n_cells, n_scored, n_unscored, mean_score, share_above, reduction, relative_reduction``.
    """
    scores, exists, index = _round_matrix(data, cell, round_col, score, cells)
    columns = [
        "round",
        "n_cells",
        "n_scored",
        "n_unscored",
        "mean_score",
        "share_above",
        "reduction",
        "relative_reduction",
    ]
    if not len(index):
        return pd.DataFrame(columns=columns)
    scored = ~np.isnan(scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(scores, axis=0) / scored.sum(axis=0)
        above = np.nansum(scores >= threshold, axis=0) / scored.sum(axis=0)
    out = pd.DataFrame(
        {
            "round": np.arange(scores.shape[1]),
            "n_cells": exists.sum(axis=0),
            "n_scored": scored.sum(axis=0),
            "n_unscored": (exists & ~scored).sum(axis=0),
            "mean_score": mean,
            "share_above": above,
        }
    )
    out["reduction"] = out["mean_score"].iloc[0] - out["mean_score"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["relative_reduction"] = out["reduction"] / out["mean_score"].iloc[0]
    return out


def rounds_to_success(
    data: pd.DataFrame,
    score: str = "score",
    threshold: float = 0.5,
    cell: str = "cell_id",
    round_col: str = "round",
    cells: Iterable | None = None,
) -> pd.DataFrame:
    """How many cells first drop below the threshold at each round.

    Returns:
        ``round, n_success, cumulative_share`` (share of all cells), plus a final row with ``round = -1`` for
        the cells that never succeeded (``n_success`` holds their number). ``attrs["mean_rounds"]`` is the mean
        rounds to success over the successful cells.
    """
    scores, _, index = _round_matrix(data, cell, round_col, score, cells)
    if not len(index):
        out = pd.DataFrame(columns=["round", "n_success", "cumulative_share"])
        out.attrs["mean_rounds"] = float("nan")
        return out
    below = np.nan_to_num(scores, nan=np.inf) < threshold
    success = below.any(axis=1)
    first = np.where(success, below.argmax(axis=1), -1)
    counts = np.bincount(first[success], minlength=scores.shape[1])
    out = pd.DataFrame(
        {
            "round": np.arange(scores.shape[1]),
            "n_success": counts,
            "cumulative_share": np.cumsum(counts) / len(index),
        }
    )
    never = pd.DataFrame({"round": [-1], "n_success": [int((~success).sum())], "cumulative_share": [np.nan]})
    out = pd.concat([out, never], ignore_index=True)
    out.attrs["mean_rounds"] = float(first[success].mean()) if success.any() else float("nan")
    return out


def stop_reasons(mitigation: pd.DataFrame, stop_reason: str = "stop_reason") -> pd.DataFrame:
    """Counts and shares of the loop's stop reasons (every known reason listed, zeros included)."""
    require_columns(mitigation, [stop_reason], what="mitigation")
    counts = mitigation[stop_reason].astype(str).value_counts()
    reasons = list(STOP_REASONS) + sorted(set(counts.index) - set(STOP_REASONS))
    counts = counts.reindex(reasons, fill_value=0)
    total = int(counts.sum())
    return pd.DataFrame(
        {
            "stop_reason": reasons,
            "n": counts.to_numpy().astype(int),
            "share": counts.to_numpy() / total if total else np.nan,
        }
    )


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``n × d`` arrays (``NaN`` where a vector is zero)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def meaning_preservation(
    data: pd.DataFrame,
    embed: Callable[[Sequence[str]], np.ndarray],
    original: str = "original_text",
    rewrite: str = "text",
    batch_size: int = 256,
) -> pd.Series:
    """Cosine similarity between embeddings of each original and its rewrite.

    Args:
        data: One row per rewrite with the original text and the rewritten text.
        embed: A callable mapping a list of texts to an ``n × d`` array (for example a sentence-transformers
            model's ``encode``).
        original, rewrite: Column names.
        batch_size: Texts per call to ``embed``.

    Returns:
        A Series aligned with ``data`` (``NaN`` where either text is missing).
    """
    require_columns(data, [original, rewrite])
    out = pd.Series(np.nan, index=data.index, name="meaning_similarity")
    ok = data[original].notna() & data[rewrite].notna()
    src = data.loc[ok, original].astype(str).tolist()
    dst = data.loc[ok, rewrite].astype(str).tolist()
    sims = []
    for start in range(0, len(src), batch_size):
        ea = np.asarray(embed(src[start : start + batch_size]))
        eb = np.asarray(embed(dst[start : start + batch_size]))
        sims.append(cosine_similarity(ea, eb))
    if sims:
        out.loc[ok] = np.concatenate(sims)
    return out
