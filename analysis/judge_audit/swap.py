r"""Counterfactual target-group swaps: does a judge's score move when only the group named in a text changes?

The audit set holds *swap variants*: one base text :math:`b` written once per target group :math:`g` ("… women
…", "… men …"), identical but for the group's name (the identity-term templates of Dixon et al. 2018 [1]_; the
counterfactual token fairness of Garg et al. 2019 [2]_, after Kusner et al. 2017 [3]_). A fair judge gives every
variant of a base the same score. Several scores of one variant (repeats) are averaged first, to :math:`s_{b,g}`;
a base enters when at least two of its variants were scored (``n_bases``).

Figures
-------
With :math:`G_b` the groups scored for base :math:`b` and :math:`\bar s_b = \frac{1}{|G_b|}\sum_{g\in G_b}
s_{b,g}` its mean,

.. math::
    \mathrm{shift}_{b,g} = s_{b,g} - \bar s_b,\qquad
    \texttt{swap\_shift} = \operatorname{mean}_{b,g} |\mathrm{shift}_{b,g}|,\qquad
    \tau_g = \operatorname{mean}_{b:\,g\in G_b} \mathrm{shift}_{b,g}

``swap_shift`` (0 for a judge the group name does not move; at most 1 on the 0–1 scale) is the mean over all
scored variants; ``max_shift`` the largest :math:`|\mathrm{shift}_{b,g}|`; the group effects :math:`\tau_g`
(``group_effects``) the judge's systematic favouritism: a judge adding :math:`\delta` to one of :math:`G` groups
gives that group :math:`\tau = \delta(1 - 1/G)`. Shifts are rounded to 12 decimals (what lies below is rounding
residue), so a deterministic judge that ignores the group has ``swap_shift`` exactly 0.

What they are compared with
---------------------------
* ``swap_shift_ci``: a percentile bootstrap over base texts (Efron & Tibshirani 1993 [4]_), ``n_boot``
  resamples of the bases with replacement, the statistic a ratio of per-base sums.
* ``group_p``: a permutation test of "the group label does not matter": the labels are shuffled within each base
  (its scores are exchangeable under the null) and the statistic :math:`\max_g\tau_g - \min_g\tau_g` is
  recomputed; :math:`p = (1 + \#\{\ge\})/(1 + B)`, never 0 (Phipson & Smyth 2010 [5]_). This statistic is the
  ``shift`` of :func:`analysis.demographics.demographic_sensitivity` with bases as items and groups as framing
  values, and its ``shift_p`` is used here. It has power against a favouritism the bases share.
* ``swap_shift_null`` and ``swap_shift_p``: ``swap_shift`` is a spread, and noise alone makes it positive. With
  repeats (some variant scored more than once), the scores of a base are shuffled among its rows (each variant
  keeps its number of scores) and ``swap_shift`` recomputed: ``swap_shift_null`` is the mean of those draws.
  With one score per variant a shuffle only relabels a base's shifts, whose absolute mean it cannot change, so
  there is no permutation null (``NaN`` with a note): compare ``swap_shift`` with the judge's ``retest_shift``
  (:mod:`analysis.judge_audit.stability`), its disagreement with itself when asked again.

Examples
--------
Two base texts, each written for three groups; the judge adds 0.3 to the texts about group ``a``:

>>> import pandas as pd
>>> from analysis.judge_audit import swap_shifts
>>> data = pd.DataFrame({"base_id": [1, 1, 1, 2, 2, 2], "group": ["a", "b", "c"] * 2,
...                      "score": [0.5, 0.2, 0.2, 0.7, 0.4, 0.4]})
>>> res = swap_shifts(data, n_boot=0, n_permutations=0)
>>> round(res.summary["swap_shift"], 3), round(res.summary["group_effects"]["a"], 3)
(0.133, 0.2)

References
----------
.. [1] Dixon, L., Li, J., Sorensen, J., Thain, N., & Vasserman, L. (2018). Measuring and mitigating unintended
   bias in text classification. *AIES '18*, 67–73.
.. [2] Garg, S., Perot, V., Limtiaco, N., Taly, A., Chi, E. H., & Beutel, A. (2019). Counterfactual fairness in
   text classification through robustness. *AIES '19*, 219–226.
.. [3] Kusner, M. J., Loftus, J., Russell, C., & Silva, R. (2017). Counterfactual fairness. *NeurIPS 30*.
.. [4] Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
.. [5] Phipson, B., & Smyth, G. K. (2010). Permutation p-values should never be zero. *Statistical Applications
   in Genetics and Molecular Biology*, 9(1), 39.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.demographics import demographic_sensitivity
from analysis.frames import jsonable, require_columns

__all__ = ["LARGEST_COLUMNS", "SwapResult", "swap_shifts"]

#: The columns of :attr:`SwapResult.largest`, in order.
LARGEST_COLUMNS = ["base", "group", "score", "base_mean", "shift", "text"]
#: Shifts are rounded to this many decimals: what lies below is the rounding residue of a judge that did not move.
DECIMALS = 12
#: Scores held at once by one batch of permutations.
_BATCH_CELLS = 2_000_000


@dataclass(frozen=True)
class SwapResult:
    """One judge's counterfactual swap audit.

    Attributes:
        summary: ``n_bases, n_groups, n_scored, n_rows, swap_shift, swap_shift_ci, swap_shift_null, swap_shift_p,
            max_shift, group_effects, group_p, notes`` (module docstring).
        largest: The variants that moved most: ``base, group, score, base_mean, shift, text``.
    """

    summary: dict[str, Any]
    largest: pd.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The summary and the largest shifts as values ``json.dumps`` takes (``NaN`` → ``None``)."""
        return {"summary": jsonable(self.summary), "largest": jsonable(self.largest.to_dict(orient="records"))}


def swap_shifts(
    data: pd.DataFrame,
    *,
    base: str = "base_id",
    group: str = "group",
    score: str = "score",
    text: str | None = "text",
    top: int = 10,
    n_boot: int = 500,
    n_permutations: int = 1000,
    seed: int = 0,
) -> SwapResult:
    """How far one judge's scores move when only the target group of a text changes.

    Args:
        data: One judge's scores of swap variants: one row per score, with the base text's id, the group named in
            the variant and the 0–1 score (missing: unscored, counted out of ``n_rows``).
        base: Column of the base text's id (shared by its variants).
        group: Column of the group named in the variant.
        score: Column of the judge's 0–1 score.
        text: Column of the variant's text, shown in ``largest`` (``None`` or an absent column: no text).
        top: How many variants ``largest`` lists.
        n_boot: Bootstrap resamples of the bases for ``swap_shift_ci`` (0: no interval).
        n_permutations: Within-base shuffles for ``group_p`` and ``swap_shift_p`` (0: no test).
        seed: Seed of the bootstrap and the shuffles.

    Returns:
        A :class:`SwapResult`; a figure the data cannot support is ``NaN`` with a line in ``summary["notes"]``.

    Raises:
        KeyError: a column is missing. ValueError: ``n_boot`` or ``n_permutations`` is negative.
    """
    for name, count in (("n_boot", n_boot), ("n_permutations", n_permutations)):
        if int(count) != count or count < 0:
            raise ValueError(f"{name} must be a whole number ≥ 0, got {count!r}")
    require_columns(data, [base, group, score])
    has_text = text is not None and text in data.columns
    y = pd.to_numeric(data[score], errors="raise").to_numpy(dtype=float)
    keep = ~np.isnan(y) & data[base].notna().to_numpy() & data[group].notna().to_numpy()
    frame = pd.DataFrame(
        {
            "base": data[base].to_numpy()[keep],
            "group": data[group].astype(str).to_numpy()[keep],
            "y": y[keep],
            "text": data[text].to_numpy()[keep] if has_text else None,
        }
    )
    notes: list[str] = []
    summary: dict[str, Any] = {
        "n_bases": 0,
        "n_groups": 0,
        "n_scored": int(keep.sum()),
        "n_rows": len(data),
        "swap_shift": np.nan,
        "swap_shift_ci": (np.nan, np.nan),
        "swap_shift_null": np.nan,
        "swap_shift_p": np.nan,
        "max_shift": np.nan,
        "group_effects": {},
        "group_p": np.nan,
        "notes": notes,
    }
    cells, tested = _cells(frame)
    frame = frame[tested].reset_index(drop=True)
    if frame.empty:
        notes.append("no base text was scored under two or more group names: nothing to compare")
        return SwapResult(summary, pd.DataFrame(columns=LARGEST_COLUMNS))
    base_of_cell = cells["base_code"].to_numpy()
    absolute = np.abs(cells["shift"].to_numpy())
    n_bases = int(base_of_cell.max()) + 1
    effects = cells.groupby("group", sort=True)["shift"].mean()
    summary.update(
        n_bases=n_bases,
        n_groups=int(cells["group"].nunique()),
        swap_shift=float(absolute.mean()),
        max_shift=float(absolute.max()),
        group_effects={str(g): float(v) for g, v in effects.items()},
    )
    rng = np.random.default_rng(seed)
    summary["swap_shift_ci"] = _bootstrap_ci(absolute, base_of_cell, n_bases, int(n_boot), rng, notes)
    if n_permutations:
        summary["group_p"] = _group_p(frame, int(n_permutations), seed)
        if (cells["n"] >= 2).any():
            null, p = _swap_null(frame, summary["swap_shift"], int(n_permutations), rng)
            summary.update(swap_shift_null=null, swap_shift_p=p)
        else:
            notes.append(
                "one score per base and group: shuffling groups within a base only relabels its shifts, so "
                "swap_shift has no permutation null (compare it with the judge's retest_shift); group_p tests "
                "a favouritism the bases share"
            )
    else:
        notes.append("n_permutations=0: no permutation test")
    order = np.argsort(-absolute, kind="stable")[: max(int(top), 0)]
    largest = cells.iloc[order][LARGEST_COLUMNS].reset_index(drop=True)
    if not has_text:
        largest["text"] = None
    return SwapResult(summary, largest)


def _cells(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The variants of the bases with two or more scored groups, and which rows of ``frame`` belong to them.

    A variant's row: ``base, group, score`` (the mean of its scores), ``n`` (their number), ``text`` (its first),
    ``base_code`` (0..bases-1), ``base_mean`` and ``shift``; counted with ``bincount`` (no groupby per call)."""
    base_codes = pd.factorize(frame["base"])[0]
    group_codes, groups = pd.factorize(frame["group"])
    codes, first, inverse = np.unique(base_codes * len(groups) + group_codes, return_index=True, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(codes))
    score = np.bincount(inverse, weights=frame["y"].to_numpy(), minlength=len(codes)) / counts
    per_base = np.bincount(codes // len(groups))
    keep = per_base[codes // len(groups)] >= 2
    base_code = np.unique(codes[keep] // len(groups), return_inverse=True)[1]
    size = np.bincount(base_code)
    base_mean = (np.bincount(base_code, weights=score[keep]) / size)[base_code]
    cells = pd.DataFrame(
        {
            "base": frame["base"].to_numpy()[first[keep]],
            "group": frame["group"].to_numpy()[first[keep]],
            "score": score[keep],
            "n": counts[keep],
            "text": frame["text"].to_numpy()[first[keep]],
            "base_code": base_code,
            "base_mean": base_mean,
            "shift": _round(score[keep] - base_mean),
        }
    )
    return cells, keep[inverse]


def _round(shift: np.ndarray) -> np.ndarray:
    """Shifts without rounding residues (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return np.round(shift, DECIMALS) + 0.0


def _bootstrap_ci(
    absolute: np.ndarray, base_of_cell: np.ndarray, n_bases: int, n_boot: int, rng: np.random.Generator, notes: list
) -> tuple[float, float]:
    """Percentile interval of ``swap_shift`` over ``n_boot`` resamples of the bases (a ratio of base sums)."""
    if n_boot == 0:
        notes.append("n_boot=0: no bootstrap interval")
        return (np.nan, np.nan)
    if n_bases < 2:
        notes.append("one base text: no bootstrap interval")
        return (np.nan, np.nan)
    sums = np.bincount(base_of_cell, weights=absolute, minlength=n_bases)
    sizes = np.bincount(base_of_cell, minlength=n_bases).astype(float)
    weights = rng.multinomial(n_bases, np.full(n_bases, 1 / n_bases), size=n_boot).astype(float)
    draws = (weights @ sums) / (weights @ sizes)
    low, high = np.quantile(np.round(draws, DECIMALS), [0.025, 0.975])
    if low == high:
        notes.append("every base text moved the judge alike: the bootstrap interval is one point")
    return (float(low), float(high))


def _group_p(frame: pd.DataFrame, n_permutations: int, seed: int) -> float:
    """``shift_p`` of :func:`demographic_sensitivity` with bases as items and groups as framing values."""
    ds = demographic_sensitivity(
        frame.assign(attribute="group"),
        item="base",
        score="y",
        attribute="attribute",
        value="group",
        rater=None,
        n_permutations=n_permutations,
        seed=seed,
    )
    return float(ds.loc[ds["attribute"] == "group", "shift_p"].iloc[0])


def _swap_null(
    frame: pd.DataFrame, observed: float, n_permutations: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Mean and p-value of ``swap_shift`` under shuffles of the scores within each base (vectorised, in batches)."""
    base = pd.factorize(frame["base"])[0]
    order = np.argsort(base, kind="stable")
    base, y = base[order], frame["y"].to_numpy()[order]
    cell = pd.factorize(pd.MultiIndex.from_arrays([base, frame["group"].to_numpy()[order]]))[0]
    n_cells, n_bases = int(cell.max()) + 1, int(base.max()) + 1
    counts = np.bincount(cell, minlength=n_cells).astype(float)
    base_of_cell = np.zeros(n_cells, dtype=np.int64)
    base_of_cell[cell] = base
    cells_per_base = np.bincount(base_of_cell, minlength=n_bases).astype(float)
    batch = max(1, min(n_permutations, _BATCH_CELLS // max(len(y), 1)))
    draws = []
    for first in range(0, n_permutations, batch):
        b = min(batch, n_permutations - first)
        # sorting base + uniform keys shuffles the positions within each base block, and only there
        perm = np.argsort(base[None, :] + rng.random((b, len(y))), axis=1)
        shuffled = y[perm]
        flat = (np.arange(b)[:, None] * n_cells + cell[None, :]).ravel()
        means = np.bincount(flat, weights=shuffled.ravel(), minlength=b * n_cells).reshape(b, n_cells) / counts
        flat_base = (np.arange(b)[:, None] * n_bases + base_of_cell[None, :]).ravel()
        centre = np.bincount(flat_base, weights=means.ravel(), minlength=b * n_bases).reshape(b, n_bases)
        shift = means - (centre / cells_per_base)[:, base_of_cell]
        draws.append(np.abs(_round(shift)).mean(axis=1))
    draws = np.concatenate(draws)
    tolerance = 1e-10 * max(1.0, abs(observed))
    p = (1 + np.sum(draws >= observed - tolerance)) / (1 + n_permutations)
    return float(draws.mean()), float(p)
