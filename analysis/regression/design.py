r"""The design of a persona regression: generations → cells, covariate patterns, the design matrix and aliasing.

Every regressor is categorical, so the fit needs only *cells*: one per cluster × covariate pattern, with the
count :math:`n_c`, the sum :math:`S_c` and the sum of squares :math:`Q_c` of the outcome. The design matrix is
built (with patsy, treatment coding) on the distinct patterns only, which keeps a million generations to a few
hundred rows.

Clusters
    Generations of one persona share its prompt, so persona rows cluster on the persona (``cluster``). The
    no-persona baseline is not a sampled persona but a fixed condition; its rows cluster on their prompt (the
    ``prompt`` columns present, with the target and template), so that the baseline's own sampling error enters
    every contrast against it. (A single baseline cluster would be aliased with the baseline level and
    contribute nothing, which made persona-vs-baseline errors far too small.)
Aliasing (as R's ``lm`` reports ``NA``)
    The columns are taken in order and a column is dropped when it lies in the span of those kept before it
    (relative residual norm below :data:`ALIAS_TOL`, R's ``qr`` tolerance), for example a template style that
    is one-to-one with the template id, or a template only ever used with one target. The dropped term is
    reported with the terms it is a combination of, instead of a pseudo-inverse that splits the effect
    arbitrarily between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["ALIAS_TOL", "DegenerateDataError", "Design", "aliased_columns", "build_design", "categorical"]

#: Relative residual norm below which a column is a combination of the columns before it (R's ``qr`` tol).
ALIAS_TOL = 1e-7
_PERSONA_TERM = "C(persona, Treatment(reference={ref!r}))"


class DegenerateDataError(ValueError):
    """The data cannot identify the regression (constant outcome, no baseline rows, a single persona level, …)."""


@dataclass
class Design:
    """Cells, patterns and the pattern design matrix of one model."""

    #: One row per cell: ``pattern`` (code), ``cluster`` (code, or -1), ``n``, ``s``, ``q``.
    cells: pd.DataFrame
    #: One row per covariate pattern: ``persona``, ``target``, ``template``.
    patterns: pd.DataFrame
    #: The design matrix of the patterns, all columns (aliased ones included).
    x: np.ndarray
    #: Display name of each column (``persona[T.activist]``, ``persona[T.activist]:target[T.women]``, …).
    names: list[str]
    #: Block label of each column (``persona``, ``target``, ``template``, ``persona × target``, …).
    blocks: list[str]
    #: Whether each column involves the persona factor.
    persona_terms: np.ndarray
    #: Columns kept (not aliased).
    keep: np.ndarray
    #: For each aliased column, the names of the kept columns it is a combination of.
    aliased_with: dict[int, list[str]] = field(default_factory=dict)
    n_total: int = 0
    #: Clusters of persona rows (the persona ids), and of the baseline (its prompts).
    n_persona_clusters: int = 0
    n_baseline_clusters: int = 0


def categorical(column: pd.Series) -> pd.Categorical:
    """A categorical with string categories (so that the baseline level can be named as a string)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cat = column.cat.rename_categories([str(c) for c in column.cat.categories])
        return pd.Categorical(cat)
    return pd.Categorical(column.astype(str))


def aliased_columns(x: np.ndarray, tol: float = ALIAS_TOL) -> tuple[np.ndarray, dict[int, dict[int, float]]]:
    """Which columns of ``x`` to keep, in order, and for each dropped column its coefficients on earlier kept ones.

    A column is dropped when its residual after projection on the kept columns has a norm below ``tol`` times
    its own (Gram–Schmidt with re-orthogonalization).
    """
    x = np.asarray(x, float)
    keep = np.zeros(x.shape[1], bool)
    basis = np.zeros((x.shape[0], 0))
    dropped: dict[int, dict[int, float]] = {}
    for j in range(x.shape[1]):
        col = x[:, j]
        norm = np.linalg.norm(col)
        resid = col - basis @ (basis.T @ col)
        resid = resid - basis @ (basis.T @ resid)
        if norm > 0 and np.linalg.norm(resid) > tol * norm:
            basis = np.column_stack([basis, resid / np.linalg.norm(resid)])
            keep[j] = True
        else:
            kept = np.flatnonzero(keep)
            coefs = np.linalg.lstsq(x[:, kept], col, rcond=None)[0] if len(kept) else np.zeros(0)
            dropped[j] = {int(k): float(c) for k, c in zip(kept, coefs, strict=True) if abs(c) > 1e-8}
    return keep, dropped


def _formula(baseline: str, interactions: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    persona_term = _PERSONA_TERM.format(ref=baseline)
    rhs = f"{persona_term} + C(target) + C(template)"
    for other in interactions:
        rhs += f" + {persona_term}:C({other})"
    rename = {persona_term: "persona", "C(target)": "target", "C(template)": "template"}
    return rhs, rename


def build_design(
    data: pd.DataFrame,
    outcome: str,
    persona: str,
    target: str,
    template: str,
    baseline: str,
    interactions: tuple[str, ...],
    cluster: str | None,
    prompt: tuple[str, ...],
    aggregate: bool,
    label: str,
) -> Design:
    """Cells, patterns and the design of ``outcome ~ persona + target + template (+ persona × …)``.

    Raises:
        DegenerateDataError: no rows with a known outcome, no baseline rows, a single persona level, or a
            constant outcome.
    """
    import patsy

    y = pd.to_numeric(data[outcome], errors="raise").astype(float).to_numpy()
    factors = [categorical(data[c]) for c in (persona, target, template)]
    n_total = len(y)
    is_base = np.asarray(factors[0] == baseline)
    clusters = np.full(n_total, -1, dtype=np.int64)
    if cluster is not None:
        persona_codes = pd.factorize(data[cluster].astype(object).to_numpy()[~is_base], use_na_sentinel=False)[0]
        keys = [c for c in prompt if c in data.columns and c not in (target, template)]
        base = data.loc[is_base, keys].astype(object) if keys else pd.DataFrame(index=data.index[is_base])
        base = base.assign(_t=factors[1].codes[is_base], _m=factors[2].codes[is_base])
        base_codes = base.groupby(list(base.columns), dropna=False, observed=True, sort=False).ngroup().to_numpy()
        clusters[~is_base] = persona_codes
        clusters[is_base] = base_codes + persona_codes.max(initial=-1) + 1
    known = ~np.isnan(y)
    y, is_base, clusters = y[known], is_base[known], clusters[known]
    factors = [f[known].remove_unused_categories() for f in factors]
    if len(y) == 0:
        raise DegenerateDataError(f"{label}: no rows with a known {outcome!r}")
    if not is_base.any():
        raise DegenerateDataError(
            f"{label}: no baseline rows ({persona} == {baseline!r}); persona effects are measured against them"
        )
    if len(factors[0].categories) < 2:
        raise DegenerateDataError(f"{label}: only the baseline persona level is present; nothing to compare")
    if np.all(y == y[0]):
        raise DegenerateDataError(
            f"{label}: {outcome!r} is constant ({y[0]:g} for all {len(y)} rows); the regression is undefined"
        )
    n_persona_clusters = len(np.unique(clusters[~is_base])) if cluster is not None else 0
    n_baseline_clusters = len(np.unique(clusters[is_base])) if cluster is not None else 0
    # cells: one per (pattern, cluster[, row]), from integer codes (pandas groupby costs more than the fit)
    sizes = [len(f.categories) for f in factors]
    pattern_raw = np.ravel_multi_index([f.codes for f in factors], sizes)
    cell_key = pattern_raw * (clusters.max() + 2) + (clusters + 1)
    if not aggregate:
        cell_key = np.arange(len(y))
    cell_keys, first, inverse = np.unique(cell_key, return_index=True, return_inverse=True)
    patterns_raw, pattern_code = np.unique(pattern_raw[first], return_inverse=True)
    codes = np.unravel_index(patterns_raw, sizes)
    patterns = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(c, categories=f.categories)
            for name, c, f in zip(("persona", "target", "template"), codes, factors, strict=True)
        }
    )
    cells = pd.DataFrame(
        {
            "pattern": pattern_code,
            "cluster": clusters[first],
            "n": np.bincount(inverse, minlength=len(cell_keys)).astype(float),
            "s": np.bincount(inverse, weights=y, minlength=len(cell_keys)),
            "q": np.bincount(inverse, weights=y**2, minlength=len(cell_keys)),
        }
    )
    rhs, rename = _formula(baseline, interactions)
    design = patsy.dmatrix(rhs, patterns, return_type="dataframe")
    info = design.design_info
    blocks = [""] * design.shape[1]
    for term, sl in info.term_name_slices.items():
        label_ = term
        for old, new in rename.items():
            label_ = label_.replace(old, new)
        blocks[sl] = ["intercept" if term == "Intercept" else label_.replace(":", " × ")] * (sl.stop - sl.start)
    names = []
    for name in design.columns:
        display = str(name)
        for old, new in rename.items():
            display = display.replace(old, new)
        names.append(display)
    persona_terms = [b.startswith("persona") for b in blocks]
    x = design.to_numpy()
    keep, dropped = aliased_columns(x)
    aliased_with = {j: [names[k] for k in coefs] for j, coefs in dropped.items()}
    return Design(
        cells=cells,
        patterns=patterns,
        x=x,
        names=names,
        blocks=blocks,
        persona_terms=np.array(persona_terms),
        keep=keep,
        aliased_with=aliased_with,
        n_total=n_total,
        n_persona_clusters=n_persona_clusters,
        n_baseline_clusters=n_baseline_clusters,
    )
