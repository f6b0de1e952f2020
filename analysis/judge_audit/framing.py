r"""Framing sensitivity of a judge for its card: demographic sensitivity (DS) and the systematic framing shift.

A *framed judge* is one judge model asked about the same items several times, each time told that the annotator
has another value of a demographic attribute ("rate as a woman / a man would"; Demo-SafetyBench). A judge whose
safety verdict follows the annotator it was told to be is not measuring the text alone.

This module is a thin wrapper over :func:`analysis.demographics.demographic_sensitivity`, whose docstring gives
the definitions, and keeps its ``ALL`` row (the mean over the judge's attributes) for each judge:

* ``ds``: the mean over items of the range of the framings' scores, next to ``ds_null`` and ``ds_p``, its
  within-item permutation null and p-value (``NaN`` with a note when every item has one score per framing: a
  shuffle cannot change a range then);
* ``noise_floor``: the judge's spread under one framing when asked again (``NaN`` without repeats);
* ``shift``: the framing effect the items share, :math:`\max_v\tau_v - \min_v\tau_v` with :math:`\tau_v` the
  mean deviation of framing :math:`v` from the item's mean (a judge whose "female" framing adds :math:`\delta`
  against one other value has ``shift`` :math:`\delta`), next to ``shift_null`` and ``shift_p``. It needs no
  repeats; the judge card reports it as ``framing_shift`` with ``framing_p`` = ``shift_p`` and ``framing_n`` =
  ``n_items``.

A figure is never shown without its null: the rows carry both, and a judge with no item scored under two
framings of one attribute gets a row of ``NaN`` with a note. The p-values are not adjusted for the several
judges and attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.demographics import demographic_sensitivity
from analysis.frames import require_columns

__all__ = ["FRAMING_COLUMNS", "framing_sensitivity"]

#: The columns of :func:`framing_sensitivity`, in order.
FRAMING_COLUMNS = [
    "rater",
    "ds",
    "ds_null",
    "ds_p",
    "noise_floor",
    "shift",
    "shift_null",
    "shift_p",
    "n_items",
    "n_attributes",
    "note",
]
_NOT_TESTED = "no item was scored under two values of one framing attribute: no framing figure"


def framing_sensitivity(
    data: pd.DataFrame,
    *,
    item: str = "item_id",
    rater: str | None = "rater_name",
    attribute: str = "framing_attribute",
    value: str = "framing_value",
    score: str = "score",
    n_permutations: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per framed judge: DS and the systematic framing shift over all its attributes, each with its null.

    Args:
        data: One row per score of a framed judge: the item, the judge's base name (its framings share it), the
            framing attribute and value, and the 0–1 score. Unframed rows (no attribute) are ignored.
        item: Column of the rated item.
        rater: Column of the judge's base name, or ``None`` for one judge.
        attribute: Column of the framed demographic attribute.
        value: Column of the attribute's value in the framing.
        score: Column of the score.
        n_permutations: Within-item shuffles of the framing labels (0: no null, and a note).
        seed: Seed of the shuffles.

    Returns:
        One row per judge with a framed score: ``rater, ds, ds_null, ds_p, noise_floor, shift, shift_null, shift_p,
        n_items, n_attributes, note`` (module docstring), sorted by ``rater``.

    Examples:
        One judge, two items, each scored once per framing; "f" adds 0.2:

        >>> import pandas as pd
        >>> data = pd.DataFrame({"item_id": [1, 1, 2, 2], "rater_name": "j", "framing_attribute": "gender",
        ...                      "framing_value": ["f", "m"] * 2, "score": [0.5, 0.3, 0.7, 0.5]})
        >>> row = framing_sensitivity(data, n_permutations=99).iloc[0]
        >>> round(float(row["shift"]), 3), float(row["shift_p"]), int(row["n_items"])
        (0.2, 0.5, 2)

        With two items the sign flips of the two framings give only four labellings, two of them as extreme as the
        data: ``shift_p`` cannot be small.
    """
    require_columns(data, [item, rater, attribute, value, score])
    ds = demographic_sensitivity(
        data,
        item=item,
        score=score,
        attribute=attribute,
        value=value,
        rater=rater,
        n_permutations=n_permutations,
        seed=seed,
    )
    overall = ds[ds["attribute"] == "ALL"].set_index("rater")
    n_attributes = ds[ds["attribute"] != "ALL"].groupby("rater").size()
    framed = data[attribute].notna() & data[value].notna() & pd.to_numeric(data[score], errors="coerce").notna()
    if rater is None:
        judges = ["rater"] if framed.any() else []
    else:
        judges = sorted(map(str, data.loc[framed, rater].dropna().unique()))
    rows = []
    for judge in judges:
        if judge not in overall.index:
            rows.append({"rater": judge, **dict.fromkeys(FRAMING_COLUMNS[1:-3], np.nan), "n_items": 0,
                         "n_attributes": 0, "note": _NOT_TESTED})  # fmt: skip
            continue
        r = overall.loc[judge]
        rows.append(
            {
                "rater": judge,
                "ds": r["ds"],
                "ds_null": r["ds_null"],
                "ds_p": r["p_value"],
                "noise_floor": r["noise_floor"],
                "shift": r["shift"],
                "shift_null": r["shift_null"],
                "shift_p": r["shift_p"],
                "n_items": int(r["n_items"]),
                "n_attributes": int(n_attributes.get(judge, 0)),
                "note": r["note"],
            }
        )
    out = pd.DataFrame(rows, columns=FRAMING_COLUMNS)
    for column in ("n_items", "n_attributes"):
        out[column] = out[column].astype(np.int64)
    return out
