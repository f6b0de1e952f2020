r"""Demographic sensitivity of raters, with its noise floor and permutation null; group-fairness gaps.

Demographic sensitivity (DS), our definition
--------------------------------------------
A rater is asked about the same item several times, each time framed with a different value of one demographic
attribute (for example "the annotator is a woman / a man / non-binary"). Let :math:`p_{r,a,v,i}` be rater
:math:`r`'s unsafe probability (its 0–1 score) for item :math:`i` under value :math:`v` of attribute :math:`a`
(several scores of one item and framing, *repeats*, are averaged first). Then

.. math::
    \mathrm{DS}_{r,a,i} = \max_v p_{r,a,v,i} - \min_v p_{r,a,v,i},\qquad
    \mathrm{DS}_{r,a} = \frac{1}{|I_{r,a}|}\sum_{i} \mathrm{DS}_{r,a,i},\qquad
    \mathrm{DS}_r = \frac{1}{|A_r|}\sum_a \mathrm{DS}_{r,a}

where :math:`I_{r,a}` are the items with at least two framings of :math:`a` scored by :math:`r` (an item with one
scored framing has no spread and is left out; ``n_items`` counts the rest). DS is 0 for a rater whose judgement
ignores the framing and at most 1. The persona/demographic-judge literature reports such spreads without a
published formula, so this is tribunal's definition; say so when reporting it.

What DS is compared with
------------------------
A range grows with the rater's noise, with the number of framing values and with missing framings, and shrinks
with repeats, so a DS alone is not comparable across attributes, judges or runs. Next to each DS:

* ``noise_floor``: the mean, over the (item, framing) pairs scored more than once, of the spread (max − min) of
  those repeated scores: how much the rater disagrees with itself under one framing (``NaN`` without repeats).
* ``ds_null`` and ``p_value``: a permutation test of "the framing does not matter" (Good 2005 [1]; Phipson &
  Smyth 2010 [2]). Under it the scores of one item are exchangeable across its framings, so the framing labels are
  shuffled within each item (each framing keeps its number of scores), :math:`B` = ``n_permutations`` times
  (seeded per rater and attribute), and DS is recomputed. ``ds_null`` is the **mean** of the :math:`B` permuted
  DS values and :math:`p = (1 + \#\{b: \mathrm{DS}^{(b)} \ge \mathrm{DS}\}) / (1 + B)`, never 0 (ties count as
  reaching the observed value). With one score per item and framing a shuffle only reorders an item's scores, whose
  range it cannot change: DS then has no permutation null (``ds_null`` and ``p_value`` are ``NaN`` with a note),
  because a framing effect that differs between items cannot be told from the rater's noise without repeats.
* ``shift``, ``shift_null`` and ``shift_p``: the systematic part of the framing effect, its average over the
  items, which needs no repeats. With :math:`\bar p_i` the mean of item :math:`i`'s framing means, the framing
  effects :math:`\tau_v = \operatorname{mean}_i (p_{v,i} - \bar p_i)` (over the items with :math:`v`) and
  :math:`\mathrm{shift} = \max_v \tau_v - \min_v \tau_v`, tested against the same null by the same
  within-item permutations (for two values, a paired sign-flip test). It has power against
  a framing effect the items share, little against effects that differ between items and average out.
  :math:`\mathrm{shift} \le \mathrm{DS}`: what DS holds beyond it is item-specific framing effects plus noise.

The ``ALL`` row averages over attributes the observed values and, permutation by permutation, the null draws
(attributes without repeats enter the DS null at their observed DS); the p-values are not adjusted for the several
attributes and raters.

How precise a DS is (:func:`ds_confidence_interval`)
----------------------------------------------------
DS is a mean over items of per-item spreads, so its sampling error comes from which items were drawn: a
percentile bootstrap over items (Efron & Tibshirani 1993 [4]) resamples the items with replacement, ``n_boot``
times, and recomputes each attribute's mean spread and their mean (``ALL``) on the same draw of items. It is an
interval for DS over items like these, not a test: the null above says whether the framing matters at all. With
fewer than two items there is no interval (``NaN`` with a note).

Group fairness against gold labels (Hardt, Price & Srebro 2016 [3]; fairlearn's definitions)
---------------------------------------------------------------------------------------------
With binary predictions :math:`\hat y` (scores :math:`\ge` ``threshold``), gold labels :math:`y` and groups
:math:`g`:

* demographic parity difference :math:`\max_g P(\hat y=1\mid g)-\min_g P(\hat y=1\mid g)` (needs no gold);
* equalized odds difference :math:`\max(\Delta\mathrm{TPR}, \Delta\mathrm{FPR})`, where each
  :math:`\Delta` is the max − min over groups of :math:`P(\hat y=1\mid y=1,g)` resp. :math:`P(\hat y=1\mid y=0,g)`.

Examples
--------
Two items, each scored twice under each of two framings; the framing moves both items the same way:

>>> import pandas as pd
>>> from analysis import demographic_sensitivity
>>> data = pd.DataFrame({"item": [1, 1, 1, 1, 2, 2, 2, 2], "value": ["f", "f", "m", "m"] * 2,
...                      "attribute": "gender", "p": [0.2, 0.3, 0.6, 0.7, 0.1, 0.1, 0.5, 0.4]})
>>> res = demographic_sensitivity(data, "item", "p", "attribute", "value", rater=None)
>>> print(res[["attribute", "ds", "ds_null", "p_value", "noise_floor", "shift", "shift_p"]].round(3).to_string())
  attribute     ds  ds_null  p_value  noise_floor  shift  shift_p
0       ALL  0.375    0.157      0.1        0.075  0.375    0.043
1    gender  0.375    0.157      0.1        0.075  0.375    0.043

With two items the permutations cannot give much smaller p-values (the exact one of DS is 1/9).

References
----------
1. Good, P. (2005). *Permutation, Parametric, and Bootstrap Tests of Hypotheses* (3rd ed.). Springer.
2. Phipson, B., & Smyth, G. K. (2010). Permutation p-values should never be zero: calculating exact p-values when
   permutations are randomly drawn. *Statistical Applications in Genetics and Molecular Biology*, 9(1), 39.
3. Hardt, M., Price, E., & Srebro, N. (2016). Equality of opportunity in supervised learning. *NeurIPS 29*.
4. Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.frames import as_list, require_columns

__all__ = [
    "demographic_parity_difference",
    "demographic_sensitivity",
    "ds_confidence_interval",
    "equalized_odds_difference",
]

ALL_ATTRIBUTES = "ALL"
#: The columns of :func:`demographic_sensitivity`, in order.
DS_COLUMNS = [
    "rater",
    "attribute",
    "ds",
    "ds_null",
    "p_value",
    "noise_floor",
    "shift",
    "shift_null",
    "shift_p",
    "n_items",
    "n_repeat_cells",
    "note",
]
#: Scores held at once by one batch of permutations (bounds the memory, not the result).
_BATCH_CELLS = 2_000_000
_NO_REPEATS = (
    "one score per item and framing: shuffling framings within an item cannot change its spread, so DS has no "
    "permutation null (rate items more than once per framing for one); shift_p still tests an effect the items share"
)
_NO_NOISE = "no item was scored twice under one framing: no noise floor"


def demographic_sensitivity(
    data: pd.DataFrame,
    item: str,
    score: str,
    attribute: str = "framing_attribute",
    value: str = "framing_value",
    rater: str | None = "rater_name",
    n_permutations: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Demographic sensitivity (DS) per rater and attribute, with its noise floor and permutation null.

    Args:
        data: One row per score: the item, the framing attribute and value, the rater and the 0–1 score.
        item: Column identifying the rated item (for example ``generation_id``).
        score: Column of the unsafe probability (0–1); missing scores are ignored.
        attribute: Column of the framed demographic attribute (rows where it is missing are unframed: ignored).
        value: Column of the attribute's value in the framing.
        rater: Column of the rater *without* its framing (``rater_name``), or ``None`` for a single rater.
        n_permutations: Within-item shuffles of the framing labels per rater and attribute (0: no null).
        seed: Seed of the shuffles; each (rater, attribute) draws from its own stream, so adding a rater does not
            change another's p-values.

    Returns:
        Tidy DataFrame ``rater, attribute, ds, ds_null, p_value, noise_floor, shift, shift_null, shift_p, n_items,
        n_repeat_cells, note`` (module docstring): ``ds_null`` and ``shift_null`` are the means of the permutation
        distributions, the p-values :math:`(1 + \\#\\{\\text{null} \\ge \\text{observed}\\})/(1 + B)`;
        ``n_repeat_cells`` counts the (item, framing) pairs scored more than once. The row with
        ``attribute == "ALL"`` is :math:`\\mathrm{DS}_r`, the unweighted mean over attributes (``n_items`` and
        ``n_repeat_cells`` there: the sums). ``note`` says why a figure is ``NaN``.

    Raises:
        ValueError: ``n_permutations`` is negative.
    """
    if int(n_permutations) != n_permutations or n_permutations < 0:
        raise ValueError(f"n_permutations must be a whole number ≥ 0, got {n_permutations!r}")
    frame = _framed_scores(data, item, score, attribute, value, rater)
    raters = frame[rater].astype(str).to_numpy() if rater is not None else np.full(len(frame), "rater", dtype=object)
    rater_codes, rater_names = pd.factorize(raters, sort=True)
    attr_codes, attr_names = pd.factorize(frame[attribute].astype(str).to_numpy(), sort=True)
    items = pd.factorize(frame[item])[0]
    values = pd.factorize(frame[value].astype(str))[0]
    y = pd.to_numeric(frame[score], errors="raise").to_numpy(float)
    group = rater_codes * max(len(attr_names), 1) + attr_codes
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    rows, draws = [], {}
    for rows_of in np.split(order, bounds) if len(order) else []:
        r, a = rater_names[rater_codes[rows_of[0]]], attr_names[attr_codes[rows_of[0]]]
        rng = np.random.default_rng([int(seed), zlib.crc32(f"{r}\x00{a}".encode())])
        result = _one_attribute(items[rows_of], values[rows_of], y[rows_of], int(n_permutations), rng)
        if result is None:
            continue
        row, ds_draws, shift_draws = result
        rows.append({"rater": r, "attribute": a, **row})
        draws[(r, a)] = (ds_draws, shift_draws)
    out = pd.DataFrame(rows, columns=DS_COLUMNS)
    overall = [_overall(r, part, draws, int(n_permutations)) for r, part in out.groupby("rater", sort=True)]
    out = pd.concat([out, pd.DataFrame(overall, columns=DS_COLUMNS)], ignore_index=True)
    for col in ("n_items", "n_repeat_cells"):
        out[col] = out[col].astype(np.int64)
    return out.sort_values(["rater", "attribute"], kind="stable", ignore_index=True)


def ds_confidence_interval(
    data: pd.DataFrame,
    item: str,
    score: str,
    attribute: str = "framing_attribute",
    value: str = "framing_value",
    rater: str | None = "rater_name",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """A percentile bootstrap interval over items for each DS of :func:`demographic_sensitivity` (same arguments).

    Returns:
        ``rater, attribute, ds, ds_ci_low, ds_ci_high, n_items, note``, one row per row of
        :func:`demographic_sensitivity` (``ALL`` included: the attributes' mean on each draw of items).
    """
    framed = _framed_scores(data, item, score, attribute, value, rater)
    frame = pd.DataFrame(
        {
            "r": framed[rater].astype(str).to_numpy() if rater is not None else "rater",
            "a": framed[attribute].astype(str).to_numpy(),
            "i": framed[item].astype(str).to_numpy(),
            "v": framed[value].astype(str).to_numpy(),
            "y": pd.to_numeric(framed[score], errors="raise").to_numpy(float),
        }
    )
    means = frame.groupby(["r", "a", "i", "v"], sort=True)["y"].mean()
    spread = means.groupby(level=["r", "a", "i"]).agg(lambda m: m.max() - m.min() if len(m) >= 2 else np.nan)
    rows, tail = [], (1 - level) / 2
    for r, part in spread.dropna().groupby(level="r", sort=True):
        table = part.droplevel("r").unstack("a")  # items × attributes, NaN where an item lacks two values
        values = table.to_numpy(float)
        rng = np.random.default_rng([int(seed), zlib.crc32(str(r).encode())])
        draws = rng.integers(0, len(values), size=(int(n_boot), len(values))) if len(values) >= 2 else None
        columns = [(a, values[:, j]) for j, a in enumerate(table.columns)]
        for a, col in [*columns, (ALL_ATTRIBUTES, None)]:
            observed = np.nanmean(values, axis=0) if col is None else None
            ds = float(np.mean(observed)) if col is None else float(np.nanmean(col))
            n_items = int(np.isfinite(values).any(axis=1).sum()) if col is None else int(np.isfinite(col).sum())
            low = high = np.nan
            note = "fewer than two items: no bootstrap interval" if n_items < 2 else ""
            if draws is not None and n_items >= 2:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    per_attr = np.nanmean(values[draws], axis=1)  # (n_boot, attributes)
                    boot = np.mean(per_attr, axis=1) if col is None else per_attr[:, list(table.columns).index(a)]
                boot = boot[np.isfinite(boot)]
                if len(boot):
                    low, high = (float(q) for q in np.quantile(boot, [tail, 1 - tail]))
                if low == high:
                    note = "every resample of items gives this DS (the spread is the same on every item): no width"
            rows.append({"rater": r, "attribute": a, "ds": ds, "ds_ci_low": low, "ds_ci_high": high,
                         "n_items": n_items, "note": note})  # fmt: skip
    out = pd.DataFrame(rows, columns=["rater", "attribute", "ds", "ds_ci_low", "ds_ci_high", "n_items", "note"])
    return out.sort_values(["rater", "attribute"], kind="stable", ignore_index=True)


def _framed_scores(
    data: pd.DataFrame, item: str, score: str, attribute: str, value: str, rater: str | None
) -> pd.DataFrame:
    """The rows DS is computed on: a score, an item and a framing (attribute and value); unframed rows dropped."""
    require_columns(data, [item, score, attribute, value, rater])
    keep = (data[score].notna() & data[attribute].notna() & data[value].notna() & data[item].notna()).to_numpy()
    return data.loc[keep]


def _one_attribute(
    items: np.ndarray, values: np.ndarray, y: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[dict, np.ndarray, np.ndarray] | None:
    """The row of one rater and attribute and its permutation draws (``None`` when no item has two framings)."""
    items = np.unique(items, return_inverse=True)[1]
    values = np.unique(values, return_inverse=True)[1]
    n_v = int(values.max()) + 1
    cell = items * n_v + values
    order = np.argsort(cell, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(cell[order]) != 0])
    size = np.diff(np.r_[starts, len(order)])
    spread = np.maximum.reduceat(y[order], starts) - np.minimum.reduceat(y[order], starts)
    repeated = size >= 2
    noise_floor = float(spread[repeated].mean()) if repeated.any() else np.nan
    n_framings = np.bincount(cell[order][starts] // n_v)
    tested = n_framings[items] >= 2
    if not tested.any():
        return None
    items = np.unique(items[tested], return_inverse=True)[1]
    values = np.unique(values[tested], return_inverse=True)[1]
    y = y[tested]
    n_i, n_v = int(items.max()) + 1, int(values.max()) + 1
    counts = np.bincount(values * n_i + items, minlength=n_v * n_i).reshape(n_v, n_i)
    sums = np.bincount(values * n_i + items, weights=y, minlength=n_v * n_i).reshape(n_v, 1, n_i)
    ds, shift = (float(s[0]) for s in _statistics(sums, counts))
    notes = []
    has_repeats = bool((counts >= 2).any())
    if n_permutations:
        ds_draws, shift_draws = _permutation_draws(items, values, y, counts, n_permutations, rng)
        if not has_repeats:
            ds_draws = np.full(n_permutations, ds)  # the exact null: every shuffle leaves each range unchanged
            notes.append(_NO_REPEATS)
    else:
        ds_draws = shift_draws = np.empty(0)
        notes.append("n_permutations=0: no permutation null")
    if not repeated.any():
        notes.append(_NO_NOISE)
    testable = n_permutations and has_repeats
    row = {
        "ds": ds,
        "ds_null": float(ds_draws.mean()) if testable else np.nan,
        "p_value": _p_value(ds_draws, ds) if testable else np.nan,
        "noise_floor": noise_floor,
        "shift": shift,
        "shift_null": float(shift_draws.mean()) if n_permutations else np.nan,
        "shift_p": _p_value(shift_draws, shift) if n_permutations else np.nan,
        "n_items": n_i,
        "n_repeat_cells": int(repeated.sum()),
        "note": "; ".join(notes),
    }
    return row, ds_draws, shift_draws


def _overall(rater: str, part: pd.DataFrame, draws: dict, n_permutations: int) -> dict:
    """The ``ALL`` row of one rater: means over its attributes, the null draws averaged permutation by permutation."""
    ds, shift = float(part["ds"].mean()), float(part["shift"].mean())
    testable = bool(n_permutations) and bool(part["p_value"].notna().any())
    notes = []
    if n_permutations and not testable:
        notes.append("no attribute has repeated scores under one framing, so DS has no permutation null")
    if not n_permutations:
        notes.append("n_permutations=0: no permutation null")
    ds_draws = np.mean([draws[(rater, a)][0] for a in part["attribute"]], axis=0)
    shift_draws = np.mean([draws[(rater, a)][1] for a in part["attribute"]], axis=0)
    noise = part["noise_floor"]
    if noise.isna().all():
        notes.append(_NO_NOISE)
    return {
        "rater": rater,
        "attribute": ALL_ATTRIBUTES,
        "ds": ds,
        "ds_null": float(ds_draws.mean()) if testable else np.nan,
        "p_value": _p_value(ds_draws, ds) if testable else np.nan,
        "noise_floor": float(noise.mean()) if noise.notna().any() else np.nan,
        "shift": shift,
        "shift_null": float(shift_draws.mean()) if n_permutations else np.nan,
        "shift_p": _p_value(shift_draws, shift) if n_permutations else np.nan,
        "n_items": int(part["n_items"].sum()),
        "n_repeat_cells": int(part["n_repeat_cells"].sum()),
        "note": "; ".join(notes),
    }


def _statistics(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DS and shift of each labelling: ``sums`` is (values, labellings, items), ``counts`` (values, items).

    The value axis comes first so that the reductions over it are elementwise over contiguous slabs (fast for the
    few framing values of an attribute)."""
    present = counts > 0
    means = sums / np.maximum(counts, 1)[:, None, :]
    if present.all():
        high, low, filled = means.max(axis=0), means.min(axis=0), means
    else:
        masked = np.where(present[:, None, :], means, np.nan)
        high, low = np.fmax.reduce(masked, axis=0), np.fmin.reduce(masked, axis=0)
        filled = np.where(present[:, None, :], means, 0.0)
    ds = (high - low).mean(axis=1)
    centre = filled.sum(axis=0) / present.sum(axis=0)
    effects = (filled.sum(axis=2) - (centre @ present.T.astype(float)).T) / present.sum(axis=1)[:, None]
    return ds, effects.max(axis=0) - effects.min(axis=0)


def _permutation_draws(
    items: np.ndarray, values: np.ndarray, y: np.ndarray, counts: np.ndarray, n_permutations: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """DS and shift under ``n_permutations`` shuffles of the framing labels within each item (vectorised).

    Items are grouped by their number of scores ``k``; each item's framing labels stay in their ``k`` slots and its
    scores are permuted among them, all items and a batch of permutations at once (``argsort`` of uniform keys; a
    coin flip per item when ``k == 2``). The per-(framing, item) sums are then ``k × values`` masked additions.
    """
    n_v, n_i = counts.shape
    order = np.argsort(items, kind="stable")
    items, values, y = items[order], values[order], y[order]
    sizes = np.bincount(items, minlength=n_i)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    groups = []
    for k in np.unique(sizes):
        members = np.flatnonzero(sizes == k)
        rows = starts[members][:, None] + np.arange(k)
        masks = [[values[rows[:, j]] == v for v in range(n_v)] for j in range(k)]
        groups.append((members, y[rows], masks))
    batch = max(1, min(n_permutations, _BATCH_CELLS // max(len(y), n_i * n_v)))
    ds_draws, shift_draws = [], []
    for first in range(0, n_permutations, batch):
        b = min(batch, n_permutations - first)
        sums = np.zeros((n_v, b, n_i))
        for members, scores, masks in groups:
            if scores.shape[1] == 2:
                flip = rng.random((b, len(members))) < 0.5
                slots = [np.where(flip, scores[:, 1], scores[:, 0]), np.where(flip, scores[:, 0], scores[:, 1])]
            else:
                perm = rng.random((b, *scores.shape)).argsort(axis=2)
                shuffled = np.take_along_axis(np.broadcast_to(scores, perm.shape), perm, axis=2)
                slots = [shuffled[..., j] for j in range(scores.shape[1])]
            part = np.zeros((n_v, b, len(members)))
            for slot, slot_masks in zip(slots, masks, strict=True):
                for v, mask in enumerate(slot_masks):
                    if mask.any():
                        part[v] += slot * mask
            sums[:, :, members] = part
        ds, shift = _statistics(sums, counts)
        ds_draws.append(ds)
        shift_draws.append(shift)
    return np.concatenate(ds_draws), np.concatenate(shift_draws)


def _p_value(draws: np.ndarray, observed: float) -> float:
    """``(1 + #{draws ≥ observed}) / (1 + B)``; a draw within rounding of the observed value counts as reaching it."""
    tolerance = 1e-10 * max(1.0, abs(observed))
    return float((1 + np.sum(draws >= observed - tolerance)) / (1 + len(draws)))


def _binarize(values: pd.Series, threshold: float) -> pd.Series:
    v = pd.to_numeric(values, errors="raise").astype(float)
    return (v >= threshold).astype(float).where(v.notna())


def _rate_spread(frame: pd.DataFrame, group: str, outcome: str) -> tuple[float, int]:
    rates = frame.groupby(group, observed=True)[outcome].mean()
    return (float(rates.max() - rates.min()) if len(rates) >= 2 else float("nan")), len(rates)


def demographic_parity_difference(
    data: pd.DataFrame,
    group: str,
    prediction: str,
    threshold: float = 0.5,
    by: str | Sequence[str] | None = None,
) -> float | pd.DataFrame:
    """Largest gap between groups in the share of positive (unsafe) predictions.

    Args:
        data: One row per prediction.
        group: Column of the demographic group (for example ``framing_value``).
        prediction: Column of scores (binarised at ``threshold``) or 0/1 predictions.
        threshold: Scores at or above it count as positive.
        by: Optional column(s), for example the rater; then a DataFrame ``*by, dpd, n_groups`` is returned.
    """
    by = as_list(by)
    require_columns(data, [group, prediction, *by])
    frame = data[[*by, group]].assign(_pred=_binarize(data[prediction], threshold)).dropna(subset=["_pred"])
    if not by:
        return _rate_spread(frame, group, "_pred")[0]
    rows = []
    for key, part in frame.groupby(by, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        dpd, n_groups = _rate_spread(part, group, "_pred")
        rows.append({**dict(zip(by, key, strict=True)), "dpd": dpd, "n_groups": n_groups})
    return pd.DataFrame(rows, columns=[*by, "dpd", "n_groups"])


def equalized_odds_difference(
    data: pd.DataFrame,
    group: str,
    prediction: str,
    gold: str,
    threshold: float = 0.5,
    by: str | Sequence[str] | None = None,
) -> float | pd.DataFrame:
    """Equalized odds difference: the larger of the between-group TPR gap and FPR gap.

    Args:
        data: One row per prediction with its gold label.
        group: Column of the demographic group.
        prediction: Column of scores (binarised at ``threshold``) or 0/1 predictions.
        gold: Column of gold labels (scores binarised at ``threshold`` too, or 0/1).
        threshold: Positive-class threshold.
        by: Optional grouping column(s); then a DataFrame ``*by, eod, tpr_gap, fpr_gap`` is returned.
    """
    by = as_list(by)
    require_columns(data, [group, prediction, gold, *by])
    frame = data[[*by, group]].assign(
        _pred=_binarize(data[prediction], threshold), _gold=_binarize(data[gold], threshold)
    )
    frame = frame.dropna(subset=["_pred", "_gold"])

    def one(part: pd.DataFrame) -> tuple[float, float, float]:
        tpr, _ = _rate_spread(part[part["_gold"] == 1], group, "_pred")
        fpr, _ = _rate_spread(part[part["_gold"] == 0], group, "_pred")
        return float(np.nanmax([tpr, fpr])) if np.isfinite([tpr, fpr]).any() else float("nan"), tpr, fpr

    if not by:
        return one(frame)[0]
    rows = []
    for key, part in frame.groupby(by, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        eod, tpr, fpr = one(part)
        rows.append({**dict(zip(by, key, strict=True)), "eod": eod, "tpr_gap": tpr, "fpr_gap": fpr})
    return pd.DataFrame(rows, columns=[*by, "eod", "tpr_gap", "fpr_gap"])
