r"""A judge's validity against human labels: agreement, rank correlation, error, discrimination, calibration.

The judge audit rates a human-labelled set with a judge; :func:`validity_vs_humans` compares the judge's 0–1
scores with the labels, overall and per annotator group, next to the humans' own agreement as the ceiling.

Data and the human consensus
----------------------------
``judge`` has one row per score (``item_id``, ``score`` on 0–1; several scores of one item are averaged; an item
whose score is missing is *unscored*, dropped and counted in ``n_unscored``). ``humans`` has one row per label
(``item_id``, ``label`` on 0–1 or 0/1, optionally ``annotator`` and group columns; rows without a label are
ignored). The *consensus* :math:`h_i` of item :math:`i` is the mean of its labels. Every figure is computed over
the :math:`N` items with a judge score :math:`s_i` and at least one label (``n_items``), in the order in which
they first appear in ``humans``.

Agreement: Krippendorff's alpha [1]
-----------------------------------
``alpha_vs_humans`` is Krippendorff's interval alpha with two coders, the judge and the consensus, over the
:math:`N` items (:func:`analysis.agreement.krippendorff_alpha`). With every unit coded twice it reduces to

.. math::
    \alpha = 1 - \frac{2N-1}{2N}\,\frac{\sum_i (s_i-h_i)^2}{\sum_{v}(v-\bar v)^2}

where :math:`v` runs over the :math:`2N` values (scores and consensuses). It is 1 for a judge equal to the
consensus, about 0 for one unrelated to it and negative for systematic disagreement; unlike a correlation it
counts a shift or a change of scale against the judge.

``human_alpha`` is the interval alpha of the labels with the annotators as coders: how well single humans agree.
A judge is compared with a consensus of several humans, a less noisy target than one human, so ``human_alpha`` is
not the like-for-like ceiling. ``human_loo_alpha`` is: for each annotator :math:`a`, the two-coder alpha above
between :math:`a`'s labels and the mean of the *other* labels of the same items (the items :math:`a` labelled
that have another label; annotators with at least two such items, whose values vary), averaged over annotators.
It is the agreement one human reaches with a consensus of the others, the ceiling for one judge against a
consensus; a judge as good as one more annotator scores about ``human_loo_alpha`` (a little more, since its
consensus has one more label). Without an ``annotator`` column the labels of an item are taken to come from
annotators 1, 2, … in row order (alpha does not depend on who is who) and ``n_annotators`` is ``None``.

Rank correlation and error
--------------------------
``spearman`` is Spearman's :math:`\rho` of :math:`s` and :math:`h` (the Pearson correlation of their midranks);
it is ``NaN`` with a note when either is constant or :math:`N < 3`, never a degenerate 0 or 1. ``mae`` is
:math:`\frac1N\sum_i |s_i - h_i|` on the 0–1 scale.

Discrimination: ROC-AUC [2, 3] and the best-F1 threshold
--------------------------------------------------------
The binary truth is :math:`y_i = [h_i \ge` ``positive_at`` :math:`]`. With :math:`R_+` the sum of the midranks
of the positives' scores among all :math:`N`,

.. math::
    \mathrm{AUC} = \frac{R_+ - n_+(n_+ + 1)/2}{n_+ n_-} = P(S_+ > S_-) + \tfrac12 P(S_+ = S_-)

the Mann–Whitney :math:`U` over :math:`n_+ n_-` (ties count half), ``NaN`` with a note when a class is empty.
``best_f1`` scans the thresholds :math:`t` at the judge's distinct scores, predicts positive where
:math:`s_i \ge t`, and reports the largest :math:`F_1 = 2TP/(2TP+FP+FN)` and its :math:`t` (the lowest on ties);
``NaN`` when a class is empty, where :math:`F_1` is 0 or 1 whatever the judge does.

Calibration: reliability curve and ECE [4, 5]
---------------------------------------------
``bins`` equal-width bins of :math:`[0, 1]`; item :math:`i` is in bin :math:`\min(\lfloor s_i B\rfloor, B-1)`
(so 1.0 is in the last). ``calibration`` has, per non-empty bin :math:`b`, :math:`n_b`, the mean score
:math:`\bar s_b` and the mean consensus :math:`\bar h_b`; a calibrated judge lies on the diagonal, and
:math:`\mathrm{ECE} = \sum_b \frac{n_b}{N}\,|\bar s_b - \bar h_b|`. The consensus is a mean label in :math:`[0,1]`
rather than a 0/1 outcome; with one binary label per item this is the usual reliability diagram.

Confidence intervals
--------------------
Percentile bootstrap over items (Efron & Tibshirani 1993 [6]): ``rng = numpy.random.default_rng(seed)``;
replicate :math:`b` draws the :math:`N` items ``rng.integers(0, N, N)``, the replicates in order (the scheme of
:func:`~analysis.agreement.krippendorff_alpha`'s bootstrap, whose alpha interval this one equals); an item's
labels move with it, and every statistic is recomputed on the same replicates. The interval is the
:math:`(1-c)/2` and :math:`(1+c)/2` quantiles of the replicates where the statistic is defined. It is
``[NaN, NaN]`` when the estimate is ``NaN``, when :math:`N < 3`, or (with a note) when the statistic is
undefined in more than half the replicates.

Per annotator group
-------------------
For each column of ``group_columns`` and each of its values, the labels are restricted to the rows with that
value (the annotators of the group), the consensus is recomputed from them, and ``alpha_vs_humans``,
``human_alpha``, ``spearman``, ``mae`` and ``auc`` are recomputed on the items with a judge score and a label of
the group, without intervals; ``note`` says why a value is ``NaN``. A judge that follows one group's judgement
agrees with that group's consensus more than with the others'. The gaps are not tested here.

Examples
--------
Two annotators, four scored items and one the judge did not score:

>>> import pandas as pd
>>> from analysis.judge_audit.validity import validity_vs_humans
>>> humans = pd.DataFrame({"item_id": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5], "annotator": ["a", "b"] * 5,
...                        "label": [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]})
>>> judge = pd.DataFrame({"item_id": [1, 2, 3, 4, 5], "score": [0.1, 0.4, 0.8, 0.9, None]})
>>> res = validity_vs_humans(judge, humans, n_boot=0)
>>> {k: res.summary[k] for k in ("n_items", "n_unscored", "auc", "best_f1", "best_f1_threshold")}
{'n_items': 4, 'n_unscored': 1, 'auc': 1.0, 'best_f1': 1.0, 'best_f1_threshold': 0.4}
>>> round(res.summary["alpha_vs_humans"], 3), round(res.summary["human_alpha"], 3)
(0.945, 0.533)

References
----------
1. Krippendorff, K. (2011). *Computing Krippendorff's alpha-reliability*. Annenberg School for Communication,
   University of Pennsylvania.
2. Mann, H. B., & Whitney, D. R. (1947). On a test of whether one of two random variables is stochastically
   larger than the other. *Annals of Mathematical Statistics*, 18(1), 50–60.
3. Hanley, J. A., & McNeil, B. J. (1982). The meaning and use of the area under a receiver operating
   characteristic (ROC) curve. *Radiology*, 143(1), 29–36.
4. Niculescu-Mizil, A., & Caruana, R. (2005). Predicting good probabilities with supervised learning. *ICML 2005*,
   625–632.
5. Naeini, M. P., Cooper, G. F., & Hauskrecht, M. (2015). Obtaining well calibrated probabilities using Bayesian
   binning. *AAAI 2015*, 2901–2907.
6. Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.agreement import krippendorff_alpha
from analysis.frames import jsonable, require_columns

__all__ = ["CALIBRATION_COLUMNS", "GROUP_COLUMNS", "Validity", "paired_alpha", "validity_vs_humans"]

#: Columns of :attr:`Validity.calibration`, one row per non-empty bin.
CALIBRATION_COLUMNS = ["bin", "lo", "hi", "n", "mean_score", "mean_human"]
# fmt: off
#: Columns of :attr:`Validity.by_group`, one row per (group column, value).
GROUP_COLUMNS = ["attribute", "value", "n_items", "n_annotators", "alpha_vs_humans", "human_alpha", "spearman", "mae",
                 "auc", "note"]
# fmt: on
# the statistics with a bootstrap interval, in the order of the summary
_BOOTSTRAPPED = ("alpha_vs_humans", "spearman", "mae", "auc")
# resampled values per bootstrap block at most: arrays under 128 KiB stay in the caches and heap (no page faults)
_CHUNK_CELLS = 16_000


@dataclass(frozen=True)
class Validity:
    """A judge's validity against human labels (see the module docstring for the definitions).

    Attributes:
        summary: The figures over all items: ``n_items`` (items with a judge score and a label), ``n_unscored``
            (labelled items without a score), ``n_labels`` and ``n_annotators`` (of the ``n_items``; the latter
            ``None`` without an annotator column), ``alpha_vs_humans`` (and ``_ci``), ``human_alpha``,
            ``human_loo_alpha``, ``spearman`` (and ``_ci``), ``mae`` (and ``_ci``), ``auc`` (and ``_ci``),
            ``n_positive``, ``n_negative``, ``best_f1``, ``best_f1_threshold``, ``ece`` and ``notes`` (why any
            figure is ``NaN``). Each ``_ci`` is ``[low, high]``.
        calibration: The reliability curve, columns :data:`CALIBRATION_COLUMNS`.
        by_group: The figures per annotator group, columns :data:`GROUP_COLUMNS` (no rows without groups).
    """

    summary: dict[str, Any]
    calibration: pd.DataFrame
    by_group: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-able values: ``summary``, and the two tables as records; ``NaN`` becomes ``None``."""
        return {
            "summary": jsonable(self.summary),
            "calibration": jsonable(self.calibration.to_dict("records")),
            "by_group": jsonable(self.by_group.to_dict("records")),
        }


def validity_vs_humans(
    judge: pd.DataFrame,
    humans: pd.DataFrame,
    *,
    group_columns: Sequence[str] = (),
    n_boot: int = 500,
    seed: int = 0,
    bins: int = 10,
    positive_at: float = 0.5,
    confidence: float = 0.95,
) -> Validity:
    """Validity of a judge's 0–1 scores against human labels, with bootstrap intervals and per-group figures.

    Args:
        judge: Columns ``item_id``, ``score`` (0–1; ``NaN`` for unscored; several scores of an item are averaged).
        humans: Columns ``item_id``, ``label`` (0–1 or 0/1), optionally ``annotator`` and the ``group_columns``.
        group_columns: Columns of ``humans`` holding the annotators' demographics, one breakdown each.
        n_boot: Bootstrap replicates for the intervals (0 for none).
        seed: Seed of the bootstrap's ``numpy.random.default_rng``.
        bins: Number of equal-width calibration bins on [0, 1].
        positive_at: Consensus at or above which an item is positive (AUC, best F1).
        confidence: Level of the intervals.

    Returns:
        A :class:`Validity`. A figure that is undefined (too few items, a constant judge, one class, …) is ``NaN``
        and ``summary["notes"]`` (or the group row's ``note``) says why.

    Raises:
        KeyError: a required column is missing.
        ValueError: a score or label outside [0, 1], an annotator labelling an item twice, or an invalid option.
    """
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if not 0 <= positive_at <= 1:
        raise ValueError(f"positive_at must lie in [0, 1], got {positive_at!r}")
    group_columns = list(group_columns)
    scores = _judge_scores(judge)
    labels, has_annotator = _labels(humans, group_columns)
    items, n_unscored = _consensus(labels, scores)
    labels = labels[labels["item_id"].isin(items["item_id"])]
    s, h = items["score"].to_numpy(), items["human"].to_numpy()
    positive = h >= positive_at
    notes: list[str] = []
    if len(items) == 0:
        notes.append("every figure is NaN: no item has both a judge score and a human label")
    figures = _point_figures(s, h, positive, positive_at, notes)
    best_f1, threshold = _best_f1(s, positive) if 0 < positive.sum() < len(s) else (np.nan, np.nan)
    if len(s) and not np.isfinite(best_f1):
        notes.append(f"best_f1 is NaN: {_one_class(positive, positive_at)}")
    summary: dict[str, Any] = {
        "n_items": len(items),
        "n_unscored": n_unscored,
        "n_labels": len(labels),
        "n_annotators": int(labels["annotator"].nunique()) if has_annotator else None,
    }
    intervals = _intervals(s, h, positive, figures, n_boot, seed, confidence, notes)
    summary["alpha_vs_humans"] = figures["alpha_vs_humans"]
    summary["alpha_vs_humans_ci"] = intervals["alpha_vs_humans"]
    summary["human_alpha"] = _human_alpha(labels, notes)
    summary["human_loo_alpha"] = _human_loo_alpha(labels, notes)
    for name in ("spearman", "mae", "auc"):
        summary[name] = figures[name]
        summary[f"{name}_ci"] = intervals[name]
    calibration, ece = _calibration(s, h, int(bins))
    summary.update(
        n_positive=int(positive.sum()),
        n_negative=int((~positive).sum()),
        best_f1=best_f1,
        best_f1_threshold=threshold,
        ece=ece,
        notes=notes,
    )
    by_group = _by_group(labels, scores, group_columns, positive_at, has_annotator)
    return Validity(summary=summary, calibration=calibration, by_group=by_group)


def _check_unit_interval(values: pd.Series, what: str) -> None:
    present = values.dropna()
    if len(present) and (present.min() < 0 or present.max() > 1):
        raise ValueError(
            f"{what}s must lie in [0, 1], got values from {present.min():g} to {present.max():g}: "
            "rescale them to 0–1 first"
        )


def _judge_scores(judge: pd.DataFrame) -> pd.Series:
    """The mean score per item id (``NaN`` for an item none of whose scores is present)."""
    require_columns(judge, ["item_id", "score"], "judge")
    score = pd.to_numeric(judge["score"], errors="raise").astype(float)
    _check_unit_interval(score, "judge score")
    return score.groupby(judge["item_id"].to_numpy(), sort=False).mean()


def _labels(humans: pd.DataFrame, group_columns: list[str]) -> tuple[pd.DataFrame, bool]:
    """Columns ``item_id, label, annotator, *group_columns`` of the present labels; whether annotators were given."""
    require_columns(humans, ["item_id", "label", *group_columns], "humans")
    has_annotator = "annotator" in humans.columns
    frame = pd.DataFrame({"item_id": humans["item_id"], "label": pd.to_numeric(humans["label"], errors="raise")})
    frame["label"] = frame["label"].astype(float)
    for column in group_columns:
        frame[column] = humans[column]
    frame["annotator"] = humans["annotator"] if has_annotator else 0
    frame = frame.dropna(subset=["item_id", "label", "annotator"]).reset_index(drop=True)
    _check_unit_interval(frame["label"], "human label")
    if not has_annotator:
        frame["annotator"] = frame.groupby("item_id", sort=False).cumcount()
    if frame.duplicated(["item_id", "annotator"]).any():
        raise ValueError(
            "some annotator labelled an item twice (item_id × annotator is not unique): aggregate the duplicates "
            "first, for example with humans.groupby(['item_id', 'annotator'], as_index=False)['label'].mean()"
        )
    return frame, has_annotator


def _consensus(labels: pd.DataFrame, scores: pd.Series) -> tuple[pd.DataFrame, int]:
    """Items with a score and a label (``item_id, score, human``); the number of labelled items without a score."""
    human = labels.groupby("item_id", sort=False)["label"].mean()
    score = scores.reindex(human.index).to_numpy()
    scored = ~np.isnan(score)
    items = pd.DataFrame({"item_id": human.index[scored], "score": score[scored], "human": human.to_numpy()[scored]})
    return items, int((~scored).sum())


def _one_class(positive: np.ndarray, positive_at: float) -> str:
    kind = "positive" if positive.all() else "negative"
    return f"all {len(positive)} items are {kind} (positive: consensus ≥ {positive_at:g})"


def _point_figures(
    s: np.ndarray, h: np.ndarray, positive: np.ndarray, positive_at: float, notes: list[str]
) -> dict[str, float]:
    """``alpha_vs_humans``, ``spearman``, ``mae`` and ``auc`` of paired scores; a reason in ``notes`` per ``NaN``."""
    n = len(s)
    figures = dict.fromkeys(_BOOTSTRAPPED, np.nan)
    if n == 0:
        return figures
    values = np.concatenate([s, h])
    rows = _Resamples(s, h, positive).figures(np.arange(n)[None, :])  # krippendorff_alpha's value, in closed form
    if n < 2:
        notes.append("alpha_vs_humans is NaN: it needs at least 2 items")
    elif values.min() == values.max():
        notes.append(f"alpha_vs_humans is NaN: every score and consensus is {values[0]:g}")
    else:
        figures["alpha_vs_humans"] = float(rows["alpha_vs_humans"][0])
    figures["mae"] = float(rows["mae"][0])
    if n < 3:
        notes.append(f"spearman is NaN: it needs at least 3 items (got {n})")
    elif s.min() == s.max():
        notes.append(f"spearman is NaN: the judge's scores are constant ({s[0]:g} on all {n} items)")
    elif h.min() == h.max():
        notes.append(f"spearman is NaN: the human consensus is constant ({h[0]:g} on all {n} items)")
    else:
        figures["spearman"] = float(rows["spearman"][0])
    if 0 < positive.sum() < n:
        figures["auc"] = float(rows["auc"][0])
    else:
        notes.append(f"auc is NaN: {_one_class(positive, positive_at)}")
    return figures


def paired_alpha(s: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Two-coder interval alpha of each row of paired ``(rows, N)`` arrays (the module docstring's closed form)."""
    n = s.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = ((s.sum(axis=1) + h.sum(axis=1)) / (2 * n))[:, None]
        spread = ((s - centre) ** 2).sum(axis=1) + ((h - centre) ** 2).sum(axis=1)
        alpha = 1 - (2 * n - 1) / (2 * n) * ((s - h) ** 2).sum(axis=1) / spread
    constant = np.minimum(s.min(axis=1), h.min(axis=1)) == np.maximum(s.max(axis=1), h.max(axis=1))
    return np.where(constant | (n < 2), np.nan, alpha)


class _Resamples:
    """The bootstrapped statistics of resamples of paired ``s``, ``h``, vectorized over the rows of index matrices:
    sums from how often a row draws each distinct value, midranks from the running counts (the draws below a value
    plus (its ties + 1) / 2), so no row is sorted. A rank is kept as 2 midrank - (N + 1), an exact integer; the
    ranks of a row sum to 0, and are all 0 where it draws one value."""

    def __init__(self, s: np.ndarray, h: np.ndarray, positive: np.ndarray) -> None:
        self.coded = [np.unique(values, return_inverse=True) for values in (s, h)]
        self.gap, self.positive = np.abs(s - h), positive.astype(float)

    def figures(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The statistics of the resamples ``s[idx]``, ``h[idx]`` (one per row of ``idx``); ``NaN`` where undefined."""
        rows, n = idx.shape
        tallies, ranks, squares, mode = [], [], [], []
        for distinct, code in self.coded:
            flat = code[idx] + len(distinct) * np.arange(rows)[:, None]  # the value's code, offset per row
            counts = np.bincount(flat.ravel(), minlength=rows * len(distinct)).reshape(rows, len(distinct))
            ranks.append(np.take((2 * np.cumsum(counts, axis=1) - counts - n).astype(float), flat))
            squares.append(np.einsum("ij,ij->i", ranks[-1], ranks[-1]))
            mode.append(distinct[counts.argmax(axis=1)])
            tallies.append((distinct, counts.astype(float)))
        (rs, rh), (ss, sh), gap, drawn_positive = ranks, squares, self.gap[idx], self.positive[idx]
        n_pos = drawn_positive.sum(axis=1)
        rank_sum = np.einsum("ij,ij->i", rs, drawn_positive) / 2 + n_pos * (n + 1) / 2  # the positives' midranks
        centre = sum(np.einsum("ij,j->i", counts, distinct) for distinct, counts in tallies) / (2 * n)
        spread = sum(np.einsum("ij,ij->i", counts, (distinct - centre[:, None]) ** 2) for distinct, counts in tallies)
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = 1 - (2 * n - 1) / (2 * n) * np.einsum("ij,ij->i", gap, gap) / spread
            auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
            rho = np.einsum("ij,ij->i", rs, rh) / np.sqrt(ss * sh)
        return {
            "alpha_vs_humans": np.where(((ss == 0) & (sh == 0) & (mode[0] == mode[1])) | (n < 2), np.nan, alpha),
            "spearman": np.where((ss == 0) | (sh == 0) | (n < 3), np.nan, rho),
            "mae": gap.sum(axis=1) / n,
            "auc": np.where((n_pos == 0) | (n_pos == n), np.nan, auc),
        }


def _intervals(
    s: np.ndarray,
    h: np.ndarray,
    positive: np.ndarray,
    figures: dict[str, float],
    n_boot: int,
    seed: int,
    confidence: float,
    notes: list[str],
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals over items of the :data:`_BOOTSTRAPPED` statistics."""
    none = {name: [np.nan, np.nan] for name in _BOOTSTRAPPED}
    n = len(s)
    if n_boot == 0:
        notes.append("the intervals are NaN: n_boot is 0")
        return none
    if n < 3:
        if n:
            notes.append(f"the intervals are NaN: the bootstrap needs at least 3 items (got {n})")
        return none
    rng = np.random.default_rng(seed)
    chunk, resamples = max(1, _CHUNK_CELLS // n), _Resamples(s, h, positive)
    # a (rows, N) draw fills row after row from the stream, as one rng.integers(0, N, N) per replicate would
    parts = [resamples.figures(rng.integers(0, n, size=(min(chunk, n_boot - b), n))) for b in range(0, n_boot, chunk)]
    tail = (1 - confidence) / 2
    out = {}
    for name in _BOOTSTRAPPED:
        draws = np.concatenate([part[name] for part in parts])
        defined = np.isfinite(draws)
        n_undefined = int((~defined).sum())
        if not np.isfinite(figures[name]):
            out[name] = [np.nan, np.nan]
        elif 2 * n_undefined > n_boot:
            notes.append(f"{name}_ci is NaN: {name} is undefined in {n_undefined} of {n_boot} resamples")
            out[name] = [np.nan, np.nan]
        else:
            low, high = np.quantile(draws[defined], [tail, 1 - tail])
            out[name] = [float(low), float(high)]
    return out


def _human_alpha(labels: pd.DataFrame, notes: list[str]) -> float:
    """Interval alpha of the labels with annotators as coders; ``NaN`` with a note where undefined."""
    per_item = labels.groupby("item_id", sort=False)["label"].transform("size")
    pairable = labels["label"][per_item >= 2]
    if pairable.empty:
        notes.append("human_alpha is NaN: no item has two or more human labels")
        return np.nan
    if pairable.min() == pairable.max():
        notes.append(f"human_alpha is NaN: every label of the items with two or more labels is {pairable.iloc[0]:g}")
        return np.nan
    return float(krippendorff_alpha(labels[per_item >= 2], "item_id", "annotator", "label", level="interval"))


def _human_loo_alpha(labels: pd.DataFrame, notes: list[str]) -> float:
    """Mean over annotators of the alpha of their labels against the mean of the other labels of each item."""
    by_item = labels.groupby("item_id", sort=False)["label"]
    m = by_item.transform("size").to_numpy()
    total = by_item.transform("sum").to_numpy()
    keep = m >= 2
    if not keep.any():
        notes.append("human_loo_alpha is NaN: no item has two or more human labels")
        return np.nan
    own = labels["label"].to_numpy()[keep]
    others = (total[keep] - own) / (m[keep] - 1)
    codes, _ = pd.factorize(labels["annotator"].to_numpy()[keep])
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    alphas = np.array([paired_alpha(own[None, b], others[None, b])[0] for b in np.split(order, starts[1:])])
    if not np.isfinite(alphas).any():
        notes.append("human_loo_alpha is NaN: no annotator has two items labelled by others too, with labels that vary")
        return np.nan
    return float(np.nanmean(alphas))


def _best_f1(s: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """The largest F1 over the thresholds at the distinct scores (score ≥ t is positive) and its lowest t."""
    thresholds = np.unique(s)
    n_predicted = len(s) - np.searchsorted(np.sort(s), thresholds, side="left")
    true_positive = int(positive.sum()) - np.searchsorted(np.sort(s[positive]), thresholds, side="left")
    # 2TP + FP + FN = (TP + FP) + (TP + FN): the predicted positives plus the actual ones
    f1 = 2 * true_positive / (n_predicted + int(positive.sum()))
    best = int(np.argmax(f1))  # the first maximum: the lowest threshold among ties
    return float(f1[best]), float(thresholds[best])


def _calibration(s: np.ndarray, h: np.ndarray, bins: int) -> tuple[pd.DataFrame, float]:
    """The reliability curve over ``bins`` equal-width bins of [0, 1], and the ECE."""
    which = np.minimum(np.floor(s * bins), bins - 1).astype(np.int64)
    n = np.bincount(which, minlength=bins)
    used = np.flatnonzero(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(which, weights=s, minlength=bins)[used] / n[used]
        mean_human = np.bincount(which, weights=h, minlength=bins)[used] / n[used]
    columns = [used, used / bins, (used + 1) / bins, n[used], mean_score, mean_human]
    calibration = pd.DataFrame(dict(zip(CALIBRATION_COLUMNS, columns, strict=True)), columns=CALIBRATION_COLUMNS)
    ece = float(np.sum(n[used] / len(s) * np.abs(mean_score - mean_human))) if len(s) else np.nan
    return calibration, ece


def _by_group(
    labels: pd.DataFrame, scores: pd.Series, group_columns: list[str], positive_at: float, has_annotator: bool
) -> pd.DataFrame:
    """The point figures per (group column, value), with the labels restricted to that group's rows."""
    rows = []
    for column in group_columns:
        for value, part in labels.groupby(column, sort=True, observed=True):
            items, _ = _consensus(part, scores)
            part = part[part["item_id"].isin(items["item_id"])]
            s, h = items["score"].to_numpy(), items["human"].to_numpy()
            reasons: list[str] = []
            if len(items) == 0:
                reasons.append("no item labelled by this group has a judge score")
            figures = _point_figures(s, h, h >= positive_at, positive_at, reasons)
            human = _human_alpha(part, reasons) if len(items) else np.nan
            n_annotators = part["annotator"].nunique() if has_annotator else pd.NA
            values = [column, value, len(items), n_annotators, figures["alpha_vs_humans"], human]
            values += [figures["spearman"], figures["mae"], figures["auc"], "; ".join(reasons)]
            rows.append(dict(zip(GROUP_COLUMNS, values, strict=True)))
    frame = pd.DataFrame(rows, columns=GROUP_COLUMNS)
    return frame.astype({"n_items": "int64", "n_annotators": "Int64"})
