r"""Persona toxicity amplification over the no-persona baseline, per persona and per group of personas.

Persona toxicity amplification (after Deshpande et al. 2023 [1]_, "Toxicity in ChatGPT")
----------------------------------------------------------------------------------------
Each persona cell is paired with the no-persona baseline cell of the same (model, target, template): scores are
first averaged within each (pair key, persona group) over repeats, then for a persona group with pairs
:math:`j=1..m`, with persona means :math:`x_j` and baseline means :math:`b_j`:

* difference :math:`\bar x-\bar b` (the mean paired difference);
* ratio :math:`\bar x/\bar b` (ratio of means; Deshpande et al. report such multiples, "up to 6×").

A persona group is one persona (``persona="persona_id"``), a category, a category × valence, or any
combination of persona-level columns. Confidence intervals are percentile intervals of a paired bootstrap over
the pairs (Efron & Tibshirani 1993 [2]_), resampling pairs so the pairing is kept. When the group holds several
personas and ``cluster`` names the persona column, the personas are a sample too, and a claim about the
category must carry their spread: :math:`x_j` is then the mean over the group's personas of their means on pair
:math:`j`, and each replicate resamples personas and pairs independently (the two-way "pigeonhole" bootstrap
of Owen 2007 [3]_ for crossed designs; it is mildly conservative, as it counts the persona × pair noise twice).
A percentile interval over few personas is too narrow (the bootstrap variance of a mean of :math:`k` clusters
is :math:`(k-1)/k` of the unbiased one, and its quantiles are normal where a t with :math:`k-1` degrees of
freedom applies), so its half-widths are multiplied by :math:`t_{k-1,1-\alpha/2}/z_{1-\alpha/2}\cdot
\sqrt{k/(k-1)}`, the ratio's on the log scale; the same small-sample reasoning as the :math:`t(G-1)` and CR1
corrections of cluster-robust inference (Cameron & Miller 2015 [4]_). Simulated with a persona random effect
(15 pairs; ``tests/analysis/test_toxicity.py``), the 95% interval of the difference covered the true category
effect in 96–98% of datasets with 3 to 8 personas and 95% with 20, where the pairs-only bootstrap covered about
half. With one persona in a group, the interval covers prompt variation only, and with fewer than
:data:`FEW_CLUSTERS` it is wide (a t with 1 to 3 degrees of freedom); ``note`` says so in both cases.

References
----------
.. [1] Deshpande, A., Murahari, V., Rajpurohit, T., Kalyan, A., & Narasimhan, K. (2023). Toxicity in ChatGPT:
   analyzing persona-assigned language models. *Findings of EMNLP 2023*.
.. [2] Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
.. [3] Owen, A. B. (2007). The pigeonhole bootstrap. *Annals of Applied Statistics* 1(2), 386–411.
.. [4] Cameron, A. C., & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference. *Journal of
   Human Resources* 50(2), 317–372.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.frames import as_list, require_columns

__all__ = ["FEW_CLUSTERS", "toxicity_amplification"]

#: Below this many personas in a group, an amplification row notes that its (two-way) CI is wide.
FEW_CLUSTERS = 5


def toxicity_amplification(
    data: pd.DataFrame,
    score: str,
    persona: str | Sequence[str] = "persona_id",
    baseline: str = "none",
    pair_on: Sequence[str] = ("model", "target_id", "template_id"),
    by: str | Sequence[str] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Toxicity of each persona group over the no-persona baseline, paired on (model, target, template).

    Args:
        data: One row per generation with its score, persona and pairing columns.
        score: Column of the 0–1 toxicity score (unscored rows are ignored).
        persona: The column(s) whose values form a persona group: ``"persona_id"`` (one row per persona),
            ``"persona_category"``, or several persona-level columns such as ``["persona_category",
            "persona_valence"]``. Rows where the first of them equals ``baseline`` are the baseline; rows with a
            missing value in any of them are left out.
        baseline: Value of the first ``persona`` column that marks the no-persona baseline.
        pair_on: Columns that pair a persona cell with its baseline cell.
        by: Optional extra grouping column(s) reported separately (for example ``"model"``, which must then
            also be in ``pair_on``).
        n_boot: Bootstrap replicates for the CIs (0 for none).
        confidence: CI level.
        seed: Bootstrap seed.
        cluster: The persona column (``"persona_id"``) when a group holds several personas: personas are
            averaged with equal weight and resampled with the pairs (module docstring), and ``n_clusters`` counts
            them. Ignored when it is one of the ``persona`` columns.

    Returns:
        Tidy DataFrame ``*by, persona, n_pairs, persona_mean, baseline_mean, difference, difference_ci_low,
        difference_ci_high, ratio, ratio_ci_low, ratio_ci_high, note`` (the ``persona`` column is named after
        the columns when ``persona`` is a list, and ``n_clusters`` follows ``n_pairs`` when ``cluster`` is
        used); groups without any paired baseline are omitted; ``note`` says when a ratio or CI is missing or
        covers less than it seems.
    """
    by = as_list(by)
    pair_on = list(pair_on)
    group_cols = as_list(persona)
    use_cluster = cluster is not None and cluster not in group_cols
    require_columns(data, [score, *group_cols, *pair_on, *by, *([cluster] if use_cluster else [])])
    if not set(by) <= set(pair_on):
        raise ValueError(f"by={by} must be a subset of pair_on={pair_on} so that pairs do not cross groups")
    s = pd.to_numeric(data[score], errors="raise").astype(float)
    scored = s.notna().to_numpy()
    unit = [*group_cols, *([cluster] if use_cluster else [])]
    frame = data.loc[scored, [*pair_on, *unit]].assign(_s=s.to_numpy()[scored])
    is_base = (frame[group_cols[0]].astype(str) == str(baseline)).to_numpy()
    base = frame[is_base].groupby(pair_on, observed=True, sort=False)["_s"].mean().rename("_b").reset_index()
    means = frame[~is_base].groupby([*pair_on, *unit], observed=True, sort=False)["_s"].mean().reset_index()
    pairs = means.merge(base, on=pair_on, how="inner")
    names = ["persona"] if isinstance(persona, str) else group_cols
    columns = [
        *by,
        *names,
        "n_pairs",
        *(["n_clusters"] if use_cluster else []),
        "persona_mean",
        "baseline_mean",
        "difference",
        "difference_ci_low",
        "difference_ci_high",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "note",
    ]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    pairs["_pair"] = pairs.groupby(pair_on, observed=True, sort=False).ngroup()
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    keys = [*by, *group_cols]
    rows = []
    for key, part in pairs.groupby(keys, observed=True, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pair_codes, pair_index = pd.factorize(part["_pair"])
        if use_cluster:
            cluster_codes, cluster_index = pd.factorize(part[cluster])
        else:
            cluster_codes, cluster_index = np.zeros(len(part), dtype=np.int64), [0]
        x = np.full((len(cluster_index), len(pair_index)), np.nan)
        x[cluster_codes, pair_codes] = part["_s"].to_numpy()
        b = np.empty(len(pair_index))
        b[pair_codes] = part["_b"].to_numpy()
        mx, mb = _group_means(x, b)
        m, k = len(pair_index), len(cluster_index)
        row = {
            **dict(zip(by, key[: len(by)], strict=True)),
            **dict(zip(names, key[len(by) :], strict=True)),
            "n_pairs": m,
            **({"n_clusters": k} if use_cluster else {}),
            "persona_mean": mx,
            "baseline_mean": mb,
            "difference": mx - mb,
            "ratio": mx / mb if mb > 0 else np.nan,
        }
        lo_d = hi_d = lo_r = hi_r = np.nan
        if n_boot and m >= 2:
            two_way = use_cluster and k >= 2
            bx, bb = _two_way_bootstrap(x, b, n_boot, rng, resample_clusters=two_way)
            lo_d, hi_d = np.quantile(bx - bb, [tail, 1 - tail])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(bb > 0, bx / bb, np.nan)
            if np.isfinite(ratios).any():
                lo_r, hi_r = np.nanquantile(ratios, [tail, 1 - tail])
            if two_way:
                f = _few_clusters_factor(k, confidence)
                d = mx - mb
                lo_d, hi_d = d - f * (d - lo_d), d + f * (hi_d - d)
                r = row["ratio"]
                if r > 0 and lo_r > 0:  # on the log scale, so the ratio's interval stays positive
                    lo_r, hi_r = r * (lo_r / r) ** f, r * (hi_r / r) ** f
                elif np.isfinite(r):
                    lo_r, hi_r = max(0.0, r - f * (r - lo_r)), r + f * (hi_r - r)
        row.update(difference_ci_low=lo_d, difference_ci_high=hi_d, ratio_ci_low=lo_r, ratio_ci_high=hi_r)
        notes = []
        if not mb > 0:
            notes.append("the baseline's mean is 0: no ratio")
        if m < 2:
            notes.append("one pair: no CI")
        elif use_cluster and k < 2:
            notes.append("one persona: the CI covers the prompts, not the choice of persona")
        elif use_cluster and k < FEW_CLUSTERS:
            notes.append(f"few personas ({k}): the CI is wide, as a claim about the group on {k} personas must be")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------------ helpers


def _group_means(x: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean over the pairs of the persona means (each persona's mean on the pair weighs the same) and of the
    baseline means, over the pairs where some persona has a score."""
    with np.errstate(invalid="ignore", divide="ignore"):
        col = np.nanmean(x, axis=0) if x.shape[0] > 1 else x[0]
    ok = np.isfinite(col)
    return float(col[ok].mean()), float(b[ok].mean())


def _few_clusters_factor(k: int, confidence: float) -> float:
    """How much to widen a percentile interval resampled over ``k`` clusters: t over normal quantile, times the
    square root of ``k/(k−1)`` (the bootstrap variance of a mean of ``k`` clusters is ``(k−1)/k`` of the unbiased)."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    q = 0.5 + confidence / 2
    return float(student_t.ppf(q, k - 1) / norm.ppf(q) * np.sqrt(k / (k - 1)))


def _two_way_bootstrap(
    x: np.ndarray,
    b: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    resample_clusters: bool,
    max_cells: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Persona-group and baseline means under ``n_boot`` resamplings of the pairs (columns of ``x``) and, with
    ``resample_clusters``, of the personas (rows), in memory-bounded blocks."""
    k, m = x.shape
    out_x = np.empty(n_boot)
    out_b = np.empty(n_boot)
    if not resample_clusters and k == 1:
        block = max(1, max_cells // m)
        for start in range(0, n_boot, block):
            stop = min(n_boot, start + block)
            idx = rng.integers(0, m, size=(stop - start, m))
            out_x[start:stop] = x[0][idx].mean(axis=1)
            out_b[start:stop] = b[idx].mean(axis=1)
        return out_x, out_b
    filled = np.nan_to_num(x)
    present = ~np.isnan(x)
    block = max(1, max_cells // (k * m))
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        n = stop - start
        rows = rng.integers(0, k, size=(n, k)) if resample_clusters else np.broadcast_to(np.arange(k), (n, k))
        cols = rng.integers(0, m, size=(n, m))
        sums = filled[rows[:, :, None], cols[:, None, :]].sum(axis=1)
        counts = present[rows[:, :, None], cols[:, None, :]].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            col_means = sums / counts
        ok = counts > 0
        n_ok = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out_x[start:stop] = np.where(ok, col_means, 0).sum(axis=1) / n_ok
            out_b[start:stop] = np.where(ok, b[cols], 0).sum(axis=1) / n_ok
    return out_x, out_b
