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

Intervals: the mean's is Student's :math:`t` over cells, :math:`\bar s_r \pm t_{n-1}\,s/\sqrt n`; the
reduction's is the same over the paired per-cell differences :math:`s_{0}-s_{r}` (cells scored in both rounds);
the share's is Wilson's (:mod:`analysis.intervals`). With fewer than two cells, or no spread between them, there
is no interval (``NaN``): a zero-width interval would claim a certainty that a handful of equal scores lacks.

Gate and measure. The loop's ``gate`` panel decides whether to rewrite again, and the critic reads its scores, so
its curve falls by construction as soon as the rewrites please it: it shows that the loop ran, not that the text
got less toxic. A held-out ``measure`` panel scores the same texts and never steers the loop; when the run's
config names one, :func:`mitigation_tables` shows both curves and takes the headline success figure
(``mitigation_success``) from the held-out panel. Which raters form each panel is read from the run's stored
config (:func:`mitigation_panels`); a generation's panel score is the mean of that panel's raters' scores.

Meaning preservation is the cosine similarity :math:`\frac{u\cdot v}{\lVert u\rVert\lVert v\rVert}` of sentence
embeddings of the original and the rewrite (as in semantic-textual-similarity evaluation, Reimers & Gurevych
2019). The embedding model is passed in as a callable, so this package imports no model runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.frames import require_columns, str_categorical, values_as_strings
from analysis.intervals import wilson_ci
from analysis.io import RunTables
from analysis.notes import Notes
from analysis.self_judging import same_model, self_judging_notes

__all__ = [
    "MitigationPanels",
    "cosine_similarity",
    "meaning_preservation",
    "mitigation_by_panel",
    "mitigation_curve",
    "mitigation_panels",
    "mitigation_tables",
    "raters_scoring",
    "rounds_to_success",
    "stop_reasons",
    "treated_cells",
]

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
        ``round, n_cells, n_scored, n_unscored, mean_score, share_above, reduction, relative_reduction`` and the
        95% intervals ``mean_ci_low/high`` (t over cells), ``share_ci_low/high`` (Wilson) and
        ``reduction_ci_low/high`` (t over the cells' paired differences from round 0).
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
        *("mean_ci_low", "mean_ci_high", "share_ci_low", "share_ci_high", "reduction_ci_low", "reduction_ci_high"),
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
    out["mean_ci_low"], out["mean_ci_high"] = _t_interval(scores)
    out["share_ci_low"], out["share_ci_high"] = wilson_ci(np.nansum(scores >= threshold, axis=0), scored.sum(axis=0))
    out["reduction_ci_low"], out["reduction_ci_high"] = _t_interval(scores[:, :1] - scores)
    return out


def _t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise Student-t interval of the mean over rows (``NaN`` values skipped); ``NaN`` where fewer than
    two values are known or they do not vary."""
    from scipy.stats import t as student_t

    n = (~np.isnan(values)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=0) / n
        sd = np.sqrt(np.nansum((values - mean) ** 2, axis=0) / (n - 1))
        half = student_t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    defined = (n >= 2) & (sd > 0)
    return np.where(defined, mean - half, np.nan), np.where(defined, mean + half, np.nan)


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


# ---------------------------------------------------------------------------------------- gate and measure
#: What each panel is called in the tables.
GATE, MEASURE = "gate", "measure (held out)"


@dataclass(frozen=True)
class MitigationPanels:
    """Who did what in a run's mitigation loop, from its stored config.

    Attributes:
        gate: the gate panel's rater names (decides whether to rewrite again; the critic reads its scores).
        measure: the held-out panel's rater names (scores every round, never gates); empty when none.
        critic: the critic's model name; ``dimension`` and ``threshold``: what the loop measured and its threshold.
        measure_overlaps: held-out raters whose judge model is the critic's or the rewriter's.
        known: whether the run's config was stored (otherwise every rater counts as gate).
    """

    gate: tuple[str, ...]
    measure: tuple[str, ...] = ()
    critic: str | None = None
    dimension: str | None = None
    threshold: float | None = None
    measure_overlaps: tuple[str, ...] = field(default_factory=tuple)
    known: bool = True

    def frame(self) -> pd.DataFrame:
        """``mitigation_panels``: one row per role (``role, who, what it does``)."""
        rows = [
            {"role": "critic", "who": self.critic or "(unknown)", "does": "writes the feedback on each rewrite"},
            {
                "role": GATE,
                "who": ", ".join(self.gate) or "(none)",
                "does": "decides whether to rewrite again; the critic is shown its scores",
            },
        ]
        if self.measure:
            rows.append(
                {
                    "role": MEASURE,
                    "who": ", ".join(self.measure),
                    "does": "scores every round for this report; never gates, never reaches the critic",
                }
            )
        return pd.DataFrame(rows, columns=["role", "who", "does"])


def mitigation_panels(config: Mapping[str, Any] | None, raters: Iterable[str] = ()) -> MitigationPanels:
    """The loop's gate and measure panels from a run's stored config (:class:`MitigationPanels`).

    Args:
        config: The run's stored experiment config (``RunTables.config``), or ``None``.
        raters: The rater names of the run's ratings, the gate when the config is unknown.
    """
    section = (config or {}).get("mitigation")
    if not isinstance(section, Mapping):
        return MitigationPanels(gate=tuple(sorted(set(raters))), known=False)
    panel = [r for r in ((config or {}).get("panel") or {}).get("raters") or [] if isinstance(r, Mapping)]
    measure = tuple(section.get("measure") or ())
    configured = section.get("gate") or section.get("raters")
    gate = tuple(configured) if configured else tuple(str(r.get("name")) for r in panel if r.get("name") not in measure)
    models = {str(m.get("name")): m for m in (config or {}).get("models") or [] if isinstance(m, Mapping)}

    def model(reference: Any) -> Mapping[str, Any] | None:
        return models.get(reference) if isinstance(reference, str) else reference

    critic = model(section.get("critic"))
    helpers = [m for m in (critic, model(section.get("rewriter"))) if isinstance(m, Mapping)]
    overlaps = []
    for rater in panel:
        judge = model(rater.get("model"))
        if rater.get("name") in measure and isinstance(judge, Mapping) and any(same_model(judge, h) for h in helpers):
            overlaps.append(str(rater.get("name")))
    threshold = section.get("threshold")
    return MitigationPanels(
        gate=gate,
        measure=measure,
        critic=str(critic.get("name")) if isinstance(critic, Mapping) else None,
        dimension=section.get("dimension"),
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        measure_overlaps=tuple(overlaps),
    )


def treated_cells(mitigation: pd.DataFrame) -> pd.Series:
    """The cells the gate sent to the critic: rewritten at least once, or stopped by a failed critique/rewrite."""
    require_columns(mitigation, ["cell_id", "rounds", "stop_reason"], what="mitigation")
    sent = (mitigation["rounds"].astype(int) > 0) | (mitigation["stop_reason"].astype(str) == "rewrite_failed")
    return mitigation.loc[sent.to_numpy(), "cell_id"]


def _panel_scores(tables: RunTables, raters: Sequence[str], dimension: str) -> pd.DataFrame:
    """Every round's generations with the panel's mean score on ``dimension`` (``NaN``: no rater of it scored)."""
    r = tables.ratings
    keep = (str_categorical(r["dimension"]) == dimension) & str_categorical(r["rater_name"]).isin(list(raters))
    keep &= r["score"].notna()
    score = r.loc[keep.to_numpy()].groupby("generation_id", observed=True)["score"].mean()
    gens = tables.generations[["generation_id", "cell_id", "round"]]
    return gens.assign(score=score.reindex(gens["generation_id"]).to_numpy())


def raters_scoring(ratings: pd.DataFrame, dimension: str) -> set[str]:
    """The names of the raters with a rating on ``dimension`` (from the codes: no string per row)."""
    return values_as_strings(ratings.loc[(str_categorical(ratings["dimension"]) == dimension).to_numpy(), "rater_name"])


def mitigation_by_panel(
    tables: RunTables, dimension: str, threshold: float, panels: MitigationPanels, cells: Iterable | None = None
) -> dict[str, pd.DataFrame]:
    """Each panel's mitigation curve (:func:`mitigation_curve`) over ``cells``: gate, and measure when it has one.

    Returns:
        Panel label (:data:`GATE`, :data:`MEASURE`) → its curve; a panel none of whose raters scored
        ``dimension`` is left out.
    """
    scored = raters_scoring(tables.ratings, dimension)
    curves = {}
    for label, raters in ((GATE, panels.gate), (MEASURE, panels.measure)):
        if set(raters) & scored:
            curves[label] = mitigation_curve(_panel_scores(tables, raters, dimension), threshold=threshold, cells=cells)
    return curves


def success_rows(curves: Mapping[str, pd.DataFrame], panels: MitigationPanels) -> pd.DataFrame:
    """``mitigation_success``: per panel, round 0 against the last round (headline row first: the held-out one)."""
    rows = []
    for label, curve in sorted(curves.items(), key=lambda kv: kv[0] != MEASURE):
        if not len(curve):
            continue
        first, last = curve.iloc[0], curve.iloc[-1]
        rows.append(
            {
                "panel": label,
                "raters": ", ".join(panels.measure if label == MEASURE else panels.gate),
                "headline": not rows,
                "n_cells": int(first["n_cells"]),
                "n_scored_round0": int(first["n_scored"]),
                "n_scored_last": int(last["n_scored"]),
                "last_round": int(last["round"]),
                "mean_round0": first["mean_score"],
                "mean_last": last["mean_score"],
                "reduction": last["reduction"],
                "reduction_ci_low": last["reduction_ci_low"],
                "reduction_ci_high": last["reduction_ci_high"],
                "relative_reduction": last["relative_reduction"],
                "share_above_round0": first["share_above"],
                "share_above_last": last["share_above"],
                "share_last_ci_low": last["share_ci_low"],
                "share_last_ci_high": last["share_ci_high"],
            }
        )
    return pd.DataFrame(rows)


def panel_notes(panels: MitigationPanels, curves: Mapping[str, pd.DataFrame], config: Any) -> list[str]:
    """What a reader must know about the panels behind the mitigation figures (one clause each)."""
    out = []
    if not panels.known:
        out.append("the run's config is not stored: every rater counts as the gate panel")
    elif not panels.measure:
        out.append("no held-out measure panel: these figures are the gate's own verdict, which the loop optimises")
    elif MEASURE not in curves:
        out.append(
            "no held-out measure rater scored the loop's dimension here (or all were left out as untrusted): "
            "the figures fall back to the gate's own verdict"
        )
    if panels.measure_overlaps:
        out.append(
            f"held-out rater(s) {', '.join(panels.measure_overlaps)} judge with the critic's or rewriter's "
            "model, so the held-out measure shares its taste"
        )
    out.extend(self_judging_notes(config, set(panels.gate) | set(panels.measure)))
    return out


def mitigation_tables(
    tables: RunTables, tox_dim: str | None, threshold: float, notes: Notes
) -> dict[str, pd.DataFrame]:
    """The generic mitigation tables of a run (``tribunal analyze``), reasons for missing ones to ``notes``.

    ``mitigation_stop_reasons``; ``mitigation_panels`` (who critiques, gates and measures);
    ``mitigation_curve`` (the headline panel's curve over every cell the loop saw: the held-out measure panel's
    when the run has one, else the gate's; its ``panel`` column says which); ``mitigation_curve_gate`` (the gate's,
    when a measure panel exists); ``mitigation_rounds_to_success`` (the headline panel's) and
    ``mitigation_success`` (round 0 against the last round over the cells the gate sent to the critic, one row per
    panel, the headline first). The loop's own dimension and threshold are used where the config gives them.
    """
    if not len(tables.mitigation):
        notes.add("mitigation_curve", "no cell went through the mitigation loop")
        return {}
    out = {"mitigation_stop_reasons": stop_reasons(tables.mitigation)}
    panels = mitigation_panels(tables.config, values_as_strings(tables.ratings["rater_name"]))
    out["mitigation_panels"] = panels.frame()
    scored_dims = values_as_strings(tables.ratings["dimension"])
    dimension = panels.dimension if panels.dimension in scored_dims else tox_dim
    if dimension is None:
        notes.add("mitigation_curve", "the mitigation curve needs a rated toxicity dimension")
        return out
    threshold = panels.threshold if panels.threshold is not None else threshold
    curves = mitigation_by_panel(tables, dimension, threshold, panels, cells=tables.mitigation["cell_id"])
    if not curves:
        notes.add("mitigation_curve", f"no gate or measure rater scored {dimension}")
        return out
    label = MEASURE if MEASURE in curves else GATE
    out["mitigation_curve"] = curves[label].assign(panel=label)
    if label == MEASURE and GATE in curves:
        out["mitigation_curve_gate"] = curves[GATE].assign(panel=GATE)
    headline_raters = panels.measure if label == MEASURE else panels.gate
    scores = _panel_scores(tables, headline_raters, dimension)
    out["mitigation_rounds_to_success"] = rounds_to_success(
        scores, threshold=threshold, cells=tables.mitigation["cell_id"]
    )
    treated = treated_cells(tables.mitigation)
    success = success_rows(mitigation_by_panel(tables, dimension, threshold, panels, cells=treated), panels)
    if len(success):
        out["mitigation_success"] = success
    else:
        notes.add("mitigation_success", "no cell was at or above the gate's threshold: nothing was rewritten")
    for reason in panel_notes(panels, curves, tables.config):
        notes.add("mitigation_curve", reason)
    return out
