"""Agreement by subgroup: ICC, Krippendorff's alpha, Fleiss' kappa and mean Spearman per group, one tidy table.

The statistics are those of :mod:`analysis.agreement.intraclass`, :mod:`analysis.agreement.krippendorff`,
:mod:`analysis.agreement.kappa` and :mod:`analysis.agreement.judges` (see their docstrings for formulas and
references); this module only groups the data and turns a statistic that is undefined for a group (one rater,
constant ratings, …) into a row with ``value = NaN`` and the reason in ``note``, so that one bad group does not
lose the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.agreement.intraclass import ICC_TYPES, icc
from analysis.agreement.judges import spearman_matrix
from analysis.agreement.kappa import fleiss_kappa
from analysis.agreement.krippendorff import AlphaResult, Level, krippendorff_alpha
from analysis.frames import as_list, require_columns, wide_matrix

__all__ = ["AGREEMENT_METRICS", "agreement_by"]

#: The ``metrics`` :func:`agreement_by` knows.
AGREEMENT_METRICS = ("icc", "alpha", "fleiss_kappa", "spearman")


def agreement_by(
    data: pd.DataFrame,
    by: str | Sequence[str] | None,
    units: str,
    raters: str,
    ratings: str,
    metrics: Sequence[str] = ("icc", "alpha"),
    level: Level = "interval",
    bootstrap: int | None = None,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Agreement figures for every subgroup (language, domain, framing, …) in one tidy table.

    Args:
        data: Long-format ratings.
        by: Column(s) defining the subgroups; ``None`` or ``[]`` for the whole data.
        units, raters, ratings: Column names.
        metrics: Any of ``"icc"`` (six rows, ``nan_policy="omit"``), ``"alpha"`` (at ``level``, with a CI when
            ``bootstrap`` is given), ``"fleiss_kappa"`` (complete units only; labels may be text),
            ``"spearman"`` (mean pairwise).
        level: Level of measurement for alpha.
        bootstrap, seed: Bootstrap replicates and seed for alpha's CI.

    Returns:
        Columns ``*by, metric, value, ci_low, ci_high, n_units, n_raters, note``. A subgroup where a metric is
        undefined (one rater, constant ratings, text labels for a numeric metric, …) gets ``value = NaN`` and
        the reason in ``note``; the ICC's own notes (clamped or undefined intervals) are carried over. Rows with
        a missing unit or rater id are dropped, and the note of each of their subgroup's rows says how many.
    """
    by = as_list(by)
    require_columns(data, [*by, units, raters, ratings])
    unknown = set(metrics) - set(AGREEMENT_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from icc, alpha, fleiss_kappa, spearman")
    groups = data.groupby(by, observed=True, sort=True) if by else [((), data)]
    rows: list[dict] = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = dict(zip(by, key, strict=True))
        has_id = part[units].notna() & part[raters].notna()
        n_no_id = int((~has_id).sum())
        id_note = f"{n_no_id} row{'s' * (n_no_id != 1)} with a missing unit or rater id dropped" if n_no_id else ""
        part = part[part[ratings].notna() & has_id]
        n_units = int(part[units].nunique())
        n_raters = int(part[raters].nunique())

        def add(
            metric: str,
            value=np.nan,
            low=np.nan,
            high=np.nan,
            note: str = "",
            n: int = n_units,
            base: dict = base,
            n_raters: int = n_raters,
            id_note: str = id_note,
        ) -> None:
            rows.append(
                {
                    **base,
                    "metric": metric,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "n_units": n,
                    "n_raters": n_raters,
                    "note": "; ".join(x for x in (note, id_note) if x),
                }
            )

        if "icc" in metrics:
            try:
                res = icc(part, units, raters, ratings, nan_policy="omit")
                for _, r in res.iterrows():
                    add(r["Type"], r["ICC"], r["CI95"][0], r["CI95"][1], note=r["note"], n=res.attrs["n_units"])
            except ValueError as exc:
                for t in ICC_TYPES:
                    add(t, note=str(exc))
        if "alpha" in metrics:
            try:
                res = krippendorff_alpha(part, units, raters, ratings, level=level, bootstrap=bootstrap, seed=seed)
                if isinstance(res, AlphaResult):
                    add(f"alpha_{level}", res.alpha, res.ci_low, res.ci_high)
                else:
                    add(f"alpha_{level}", res)
            except ValueError as exc:
                add(f"alpha_{level}", note=str(exc))
        if "fleiss_kappa" in metrics:
            try:
                # Complete units from the pivot of category codes: the labels may be text.
                coded = part.assign(**{ratings: pd.factorize(part[ratings])[0].astype(float)})
                wide = wide_matrix(coded, units, raters, ratings).complete()
                complete = part[part[units].isin(wide.units)]
                add("fleiss_kappa", fleiss_kappa(complete, units, raters, ratings), n=len(wide.units))
            except ValueError as exc:
                add("fleiss_kappa", note=str(exc))
        if "spearman" in metrics:
            if n_raters < 2:
                add("mean_spearman", note="fewer than 2 raters")
            else:
                try:
                    m = spearman_matrix(part, units, raters, ratings).to_numpy()
                    off = m[~np.eye(len(m), dtype=bool)]
                    add("mean_spearman", float(np.nanmean(off)) if np.isfinite(off).any() else np.nan)
                except ValueError as exc:
                    add("mean_spearman", note=str(exc))
    return pd.DataFrame(rows, columns=[*by, "metric", "value", "ci_low", "ci_high", "n_units", "n_raters", "note"])
