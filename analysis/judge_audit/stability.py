r"""Stability: does a judge give the same text the same score when asked again (test–retest)?

The same audit texts are rated twice by one judge, in two independent passes (another request, another sample;
with a response cache the second pass must bypass it, or it measures the cache). Over the :math:`n` items scored
in both passes, with scores :math:`x_i` (first) and :math:`y_i` (second):

* ``retest_alpha``: Krippendorff's interval alpha [1]_ with the two passes as the two coders
  (:func:`analysis.agreement.krippendorff_alpha`): 1 when every item gets its score again, 0 when the passes
  agree no better than chance. It is a reliability, the right name for test–retest agreement of one instrument;
  ``retest_alpha_ci`` is its bootstrap percentile interval over items. When both passes give every item one and
  the same score there is no variance to compare with, alpha is undefined (``NaN`` with a note) and
  ``identical`` says whether the two passes agree.
* ``retest_shift``: :math:`\frac1n\sum_i |x_i - y_i|`, on the score's own 0–1 scale: the size of the judge's
  noise, the floor against which a counterfactual ``swap_shift`` (:mod:`analysis.judge_audit.swap`) is read.
* ``exact_share``: the share of items with :math:`|x_i - y_i| \le 10^{-9}` (greedy decoding at temperature 0
  gives 1; sampling judges less).
* ``n_unscored_second``: items scored in the first pass but not in the second (a parse error, a timeout, or no
  row): a judge that fails on re-asking is unstable too, and these items are not in :math:`n`.

References
----------
.. [1] Krippendorff, K. (2011). *Computing Krippendorff's alpha-reliability*. Annenberg School for
   Communication, University of Pennsylvania.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.agreement import krippendorff_alpha
from analysis.frames import require_columns

__all__ = ["EXACT", "retest"]

#: Two scores closer than this are the same score.
EXACT = 1e-9


def retest(
    first: pd.DataFrame,
    second: pd.DataFrame,
    *,
    item: str = "item_id",
    score: str = "score",
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Test–retest agreement of one judge between two passes over the same items.

    Args:
        first: The first pass: one row per item, with its 0–1 score (missing: unscored).
        second: The second pass, same columns.
        item: Column of the item id.
        score: Column of the score.
        n_boot: Bootstrap resamples of the items for ``retest_alpha_ci`` (0: no interval).
        seed: Seed of the bootstrap.

    Returns:
        ``n, retest_alpha, retest_alpha_ci, retest_shift, exact_share, identical, n_unscored_second, notes``
        (module docstring); a figure the data cannot support is ``NaN`` with a line in ``notes``.

    Raises:
        KeyError: a column is missing. ValueError: an item appears twice in one pass (aggregate repeats first, or
        treat them as further passes), or ``n_boot`` is negative.

    Examples:
        >>> import pandas as pd
        >>> a = pd.DataFrame({"item_id": [1, 2, 3, 4], "score": [0.1, 0.9, 0.5, 0.2]})
        >>> b = pd.DataFrame({"item_id": [1, 2, 3, 4], "score": [0.1, 0.8, 0.5, None]})
        >>> res = retest(a, b, n_boot=0)
        >>> res["n"], round(res["retest_shift"], 3), round(res["exact_share"], 3), res["n_unscored_second"]
        (3, 0.033, 0.667, 1)
    """
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"n_boot must be a whole number ≥ 0, got {n_boot!r}")
    passes = []
    for name, frame in (("first", first), ("second", second)):
        require_columns(frame, [item, score], what=name)
        duplicated = frame[item].dropna().duplicated()
        if duplicated.any():
            raise ValueError(
                f"{name} pass has {int(duplicated.sum())} repeated item(s) in {item!r}: give one row per item "
                "(average repeats first, or compare them as further passes)"
            )
        scores = pd.to_numeric(frame[score], errors="raise").astype(float)
        passes.append(pd.Series(scores.to_numpy(), index=frame[item].to_numpy()).dropna())
    x_all, y_all = passes
    shared = x_all.index.intersection(y_all.index)
    x, y = x_all.loc[shared].to_numpy(), y_all.loc[shared].to_numpy()
    notes: list[str] = []
    out: dict[str, Any] = {
        "n": len(shared),
        "retest_alpha": np.nan,
        "retest_alpha_ci": (np.nan, np.nan),
        "retest_shift": np.nan,
        "exact_share": np.nan,
        "identical": None,
        "n_unscored_second": int(len(x_all) - len(shared)),
        "notes": notes,
    }
    if out["n_unscored_second"]:
        notes.append(f"{out['n_unscored_second']} item(s) scored in the first pass were not scored in the second")
    if not len(shared):
        notes.append("no item was scored in both passes")
        return out
    difference = np.abs(x - y)
    same = difference <= EXACT
    out.update(retest_shift=float(difference.mean()), exact_share=float(same.mean()), identical=bool(same.all()))
    if len(shared) < 2:
        notes.append("one item scored in both passes: no retest alpha")
        return out
    if np.ptp(x) <= EXACT and np.ptp(y) <= EXACT:
        notes.append(
            "each pass gives every item the same score: with no variance, alpha is undefined; identical says "
            "whether the two passes agree"
        )
        return out
    long = pd.DataFrame(
        {"unit": np.tile(np.arange(len(shared)), 2), "pass": np.repeat([0, 1], len(shared)), "y": np.r_[x, y]}
    )
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of one repeated item has no variance
        if n_boot >= 2:
            res = krippendorff_alpha(long, "unit", "pass", "y", level="interval", bootstrap=int(n_boot), seed=seed)
            out.update(retest_alpha=res.alpha, retest_alpha_ci=(res.ci_low, res.ci_high))
        else:
            out["retest_alpha"] = krippendorff_alpha(long, "unit", "pass", "y", level="interval")
            notes.append(f"n_boot={n_boot}: no bootstrap interval")
    return out
