r"""Demographic sensitivity of raters and group-fairness gaps against gold labels.

Demographic sensitivity (DS), our definition
--------------------------------------------
A rater is asked about the same item several times, each time framed with a different value of one demographic
attribute (for example "the annotator is a woman / a man / non-binary"). Let :math:`p_{r,a,v,i}` be rater
:math:`r`'s unsafe probability (its 0–1 score) for item :math:`i` under value :math:`v` of attribute :math:`a`.
Then

.. math::
    \mathrm{DS}_{r,a,i} = \max_v p_{r,a,v,i} - \min_v p_{r,a,v,i},\qquad
    \mathrm{DS}_{r,a} = \frac{1}{|I_{r,a}|}\sum_{i} \mathrm{DS}_{r,a,i},\qquad
    \mathrm{DS}_r = \frac{1}{|A_r|}\sum_a \mathrm{DS}_{r,a}

where :math:`I_{r,a}` are the items with at least two framings of :math:`a` scored by :math:`r` (an item with one
scored framing has no spread and is left out; ``n_items`` counts the rest). DS is 0 for a rater whose judgement
ignores the framing and at most 1. The persona/demographic-judge literature reports such spreads without a
published formula, so this is tribunal's definition; say so when reporting it. Several scores of one (item,
framing) are averaged first.

Group fairness against gold labels (Hardt, Price & Srebro 2016; fairlearn's definitions)
-----------------------------------------------------------------------------------------
With binary predictions :math:`\hat y` (scores :math:`\ge` ``threshold``), gold labels :math:`y` and groups
:math:`g`:

* demographic parity difference :math:`\max_g P(\hat y=1\mid g)-\min_g P(\hat y=1\mid g)` (needs no gold);
* equalized odds difference :math:`\max(\Delta\mathrm{TPR}, \Delta\mathrm{FPR})`, where each
  :math:`\Delta` is the max − min over groups of :math:`P(\hat y=1\mid y=1,g)` resp. :math:`P(\hat y=1\mid y=0,g)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.frames import as_list, require_columns

__all__ = [
    "demographic_parity_difference",
    "demographic_sensitivity",
    "equalized_odds_difference",
]

ALL_ATTRIBUTES = "ALL"


def demographic_sensitivity(
    data: pd.DataFrame,
    item: str,
    score: str,
    attribute: str = "framing_attribute",
    value: str = "framing_value",
    rater: str | None = "rater_name",
) -> pd.DataFrame:
    """Demographic sensitivity (DS) per rater and attribute, plus the mean over attributes.

    Args:
        data: One row per score: the item, the framing attribute and value, the rater and the 0–1 score.
        item: Column identifying the rated item (for example ``generation_id``).
        score: Column of the unsafe probability (0–1); missing scores are ignored.
        attribute: Column of the framed demographic attribute (rows where it is missing are unframed: ignored).
        value: Column of the attribute's value in the framing.
        rater: Column of the rater *without* its framing (``rater_name``), or ``None`` for a single rater.

    Returns:
        Tidy DataFrame ``rater, attribute, ds, n_items``; the row with ``attribute == "ALL"`` is
        :math:`\\mathrm{DS}_r`, the unweighted mean over attributes (``n_items`` there: the sum).
    """
    require_columns(data, [item, score, attribute, value, rater])
    frame = data.loc[data[score].notna() & data[attribute].notna() & data[value].notna()]
    rater_col = rater if rater is not None else "__rater"
    if rater is None:
        frame = frame.assign(__rater="rater")
    keys = [rater_col, attribute, item]
    per_framing = frame.groupby([*keys, value], observed=True, sort=False)[score].mean()
    g = per_framing.groupby(level=[0, 1, 2], observed=True, sort=False)
    stats = pd.DataFrame({"spread": g.max() - g.min(), "n": g.size()})
    stats = stats[stats["n"] >= 2]
    per_attr = stats.groupby(level=[0, 1], observed=True, sort=True)["spread"].agg(["mean", "size"]).reset_index()
    per_attr.columns = ["rater", "attribute", "ds", "n_items"]
    overall = per_attr.groupby("rater", observed=True, sort=True).agg(ds=("ds", "mean"), n_items=("n_items", "sum"))
    overall = overall.reset_index().assign(attribute=ALL_ATTRIBUTES)
    out = pd.concat([per_attr, overall[per_attr.columns]], ignore_index=True)
    out["attribute"] = out["attribute"].astype(str)
    return out.sort_values(["rater", "attribute"], kind="stable", ignore_index=True)


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
