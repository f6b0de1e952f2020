"""Joint tests of blocks of terms: does the persona matter, and does it change what the target or template do?

The seed asks how persona, target group and template shape refusal and toxicity "independently and jointly".
Independently: the main-effect blocks (``persona``, ``target``, ``template``) of the additive model. Jointly: the
persona × target and persona × template interaction blocks of the model with both interactions, on the template
id and, in a model of its own, on the template *style* (several templates share a style). Each block gets one
joint test of "all its coefficients are zero":

* with persona clusters (``cov_type="CR2"``, the default): the HTZ small-sample cluster-robust Wald F test
  (:func:`analysis.regression.robust.htz_test`). It is refused, with a note, when a coefficient of the block
  rests on a single persona (its variance cannot be estimated) or when the block has more coefficients than the
  personas can inform (a 195-coefficient persona × target block with 56 personas): the persona is the unit;
* a block with separated coefficients (a persona × target cell with no refusal): the penalized (Firth)
  likelihood-ratio test, which treats generations as independent (the note says so);
* ``cov_type="CR1"``: Wald :math:`W/q \\sim F(q, G-1)`; ``"HC3"`` (OLS): :math:`W/q \\sim F(q, n-p)`;
  ``"model"``: the likelihood-ratio :math:`\\chi^2_q` test (logit) or the classical F test (OLS).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from analysis.frames import require_columns
from analysis.regression.design import DegenerateDataError
from analysis.regression.fit import PROMPT_COLUMNS, FittedModel, fit_model, pvalue_floor
from analysis.regression.logistic import penalized_lr_test
from analysis.regression.robust import htz_test

__all__ = ["BLOCK_TEST_COLUMNS", "block_tests", "interaction_tests"]

BLOCK_TEST_COLUMNS = [
    "model",
    "block",
    "df",
    "df_denom",
    "statistic",
    "pval",
    "test",
    "n_obs",
    "n_total",
    "n_clusters",
    "note",
]


def block_tests(
    fitted: FittedModel, blocks: list[str] | None = None, names: dict[str, str] | None = None
) -> pd.DataFrame:
    """One joint test per block of a fitted model (:data:`BLOCK_TEST_COLUMNS`).

    Args:
        fitted: From :func:`analysis.regression.fit.fit_model`.
        blocks: Block labels to test (``"persona"``, ``"persona × target"``, …); all but the intercept by default.
        names: Display names of the blocks (label → name) in the ``block`` column.
    """
    from scipy.stats import f as f_dist

    d = fitted.design
    labels = blocks or [b for b in dict.fromkeys(d.blocks) if b != "intercept"]
    kept_blocks = np.array(d.blocks)[d.keep]
    rows = []
    for label in labels:
        n_all = sum(b == label for b in d.blocks)
        index = np.flatnonzero(kept_blocks == label)
        row = {"model": fitted.model, "block": (names or {}).get(label, label), "df": len(index), "df_denom": np.nan,
               "statistic": np.nan, "pval": np.nan, "test": "", "n_obs": fitted.n_obs, "n_total": d.n_total,
               "n_clusters": fitted.n_clusters if fitted.robust is not None else np.nan}  # fmt: skip
        notes = []
        if n_all == 0:
            notes.append("not in this model")
        elif len(index) < n_all:
            notes.append(f"{n_all - len(index)} of its {n_all} terms are aliased with earlier ones and left out")
        separated = fitted.separated is not None and fitted.separated[index].any()
        clustered = fitted.cov_type in ("CR2", "CR1")
        if len(index) == 0:
            notes.append("no estimable term")
        elif clustered and not fitted.identified[index].all():
            notes.append("a coefficient's variance rests on a single cluster (e.g. a one-persona category): no test")
        elif separated or (fitted.cov_type == "model" and fitted.kind == "logit"):
            stat, p = penalized_lr_test(fitted.pattern_x, fitted.pattern_s, fitted.pattern_n, fitted.logit, index)
            firth = fitted.logit.firth
            row.update(statistic=stat, pval=p, test="penalized LR chi2" if firth else "LR chi2")
            if separated and clustered:
                notes.append("separated terms: penalized likelihood-ratio test (treats generations as independent)")
        elif fitted.cov_type == "CR2":
            if len(index) >= fitted.n_clusters:
                notes.append(f"{len(index)} coefficients but only {fitted.n_clusters} clusters: no cluster-robust test")
            else:
                res = htz_test(fitted.robust, fitted.beta, index)
                row.update(statistic=res.statistic, df_denom=res.df_denom, pval=res.pval, test="HTZ Wald F (CR2)")
                if res.note:
                    notes.append(res.note)
                elif d.n_persona_clusters < fitted.min_clusters and label.startswith("persona"):
                    notes.append(f"only {d.n_persona_clusters} personas: small-sample test, approximate")
        else:
            v = fitted.cov[np.ix_(index, index)]
            b = fitted.beta[index]
            denom = {"CR1": fitted.n_clusters - 1.0, "HC3": fitted.df_resid, "model": fitted.df_resid}[fitted.cov_type]
            if np.linalg.matrix_rank(v) < len(index) or not np.isfinite(v).all():
                notes.append("singular covariance for this block: no test")
            else:
                stat = float(b @ np.linalg.solve(v, b)) / len(index)
                row.update(statistic=stat, df_denom=denom, pval=float(f_dist.sf(stat, len(index), denom)),
                           test=f"Wald F ({fitted.cov_type})")  # fmt: skip
        if fitted.model_notes:
            notes = fitted.model_notes + notes
        p, floored = pvalue_floor(np.array([row["pval"]]))
        row["pval"] = float(p[0])
        if floored[0]:
            notes.append("p below 1e-300, shown as 1e-300")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows, columns=BLOCK_TEST_COLUMNS)


def _one_to_one(data: pd.DataFrame, a: str, b: str) -> bool:
    pairs = data[[a, b]].dropna().astype(str).drop_duplicates()
    return pairs[a].is_unique and pairs[b].is_unique


def interaction_tests(
    data: pd.DataFrame,
    outcome: str,
    kind: Literal["logit", "ols"],
    model_col: str = "model",
    persona: str = "persona_category",
    target: str = "target_category",
    templates: tuple[str, ...] = ("template_id", "template_style"),
    on_degenerate: Literal["raise", "skip"] = "raise",
    prompt: tuple[str, ...] = PROMPT_COLUMNS,
    fixed_personas: str | None = "auto",
    **kwargs,
) -> pd.DataFrame:
    """Joint tests of the main-effect and interaction blocks, per generator model.

    For each model: the blocks ``persona``, ``target`` and ``template`` of the additive model, then ``persona ×
    target`` and ``persona × template`` of the model with both interactions; then the same template blocks with
    each further column of ``templates`` (the template style) in place of the first. A template column that is
    one-to-one with the first (each template its own style) gives a row with a note instead of the same test
    again.

    With few personas the category-level blocks cannot be tested (a category with one persona, or more
    coefficients than personas). ``fixed_personas`` then adds the same blocks with the persona *id* as the
    factor and generations as the unit (no clusters): tests about these particular personas as fixed conditions,
    not about their categories, and each row's note says so.

    Args:
        data: One row per generation, with a ``model_col`` column.
        outcome, kind: As for :func:`analysis.regression.fit_persona_model`; other keyword arguments
            (``cluster``, ``baseline``, ``cov_type``, ``firth``, ``min_clusters``) are passed on to it.
        persona, target: Regressor columns.
        templates: Template columns to test, the first being the template id; missing columns are skipped.
        on_degenerate: ``"raise"`` or ``"skip"`` a model whose regression is degenerate (listed with its reason in
            ``result.attrs["skipped"]``).
        prompt: Columns identifying a baseline generation's prompt (its cluster).
        fixed_personas: Column of the persona ids for the fixed-persona blocks; ``"auto"`` uses ``persona_id``
            when it exists and a model has fewer personas than ``min_clusters`` (20); ``None`` never.

    Returns:
        :data:`BLOCK_TEST_COLUMNS`: ``model, block, df, df_denom, statistic, pval, test, n_obs, n_total,
        n_clusters, note``. ``block`` names the columns (``persona_category × template_style``); ``df`` (and
        ``df_denom`` for F tests) are the test's degrees of freedom; ``note`` says why a test is missing or
        approximate.
    """
    require_columns(data, [model_col])
    present = [t for t in templates if t in data.columns and data[t].notna().any()]
    if not present:
        raise KeyError(f"none of the template columns {list(templates)} is in the data")
    tables, skipped = [], {}
    for name, part in data.groupby(model_col, observed=True, sort=True):
        try:
            tables.append(_model_tests(part, outcome, kind, str(name), persona, target, present, prompt, kwargs))
            fixed = _fixed_column(part, fixed_personas, persona, kwargs)
            if fixed is not None:
                fixed_kwargs = {k: v for k, v in kwargs.items() if k not in ("cluster", "cov_type")}
                fixed_kwargs.update(cluster=None, cov_type="auto")
                rows = _model_tests(part, outcome, kind, str(name), fixed, target, present, prompt, fixed_kwargs)
                note = "these personas as fixed conditions, generations as the unit: not a claim about categories"
                rows["note"] = [note + (f"; {n}" if n else "") for n in rows["note"].fillna("")]
                tables.append(rows[rows["block"].str.startswith(fixed)])
        except DegenerateDataError as exc:
            if on_degenerate == "raise":
                raise
            skipped[str(name)] = str(exc)
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=BLOCK_TEST_COLUMNS)
    out.attrs["skipped"] = skipped
    return out


def _fixed_column(part: pd.DataFrame, fixed: str | None, persona: str, kwargs: dict) -> str | None:
    """The persona-id column of the fixed-persona blocks for this model, if any."""
    if fixed != "auto":
        return fixed if fixed is not None and fixed != persona else None
    if "persona_id" not in part.columns or persona == "persona_id":
        return None
    baseline = kwargs.get("baseline", "none")
    ids = part.loc[part[persona].astype(str) != baseline, "persona_id"].nunique()
    return "persona_id" if ids < kwargs.get("min_clusters", 20) else None


def _model_tests(part, outcome, kind, model, persona, target, templates, prompt, kwargs) -> pd.DataFrame:
    parts = []
    for i, template in enumerate(templates):
        names = {
            "persona": persona,
            "target": target,
            "template": template,
            "persona × target": f"{persona} × {target}",
            "persona × template": f"{persona} × {template}",
        }
        if i > 0 and _one_to_one(part, templates[0], template):
            note = f"{template} is one-to-one with {templates[0]} here: the same test as {templates[0]}"
            rows = [{"model": model, "block": names[b], "note": note} for b in ("template", "persona × template")]
            parts.append(pd.DataFrame(rows, columns=BLOCK_TEST_COLUMNS))
            continue
        common = dict(persona=persona, target=target, template=template, prompt=prompt, model=model)
        common.update(profiles=False, with_df=False)
        main = fit_model(part, outcome, kind, **common, **kwargs)
        parts.append(block_tests(main, ["persona", "target", "template"] if i == 0 else ["template"], names))
        joint = fit_model(part, outcome, kind, interactions=("target", "template"), **common, **kwargs)
        wanted = ["persona × target", "persona × template"] if i == 0 else ["persona × template"]
        parts.append(block_tests(joint, wanted, names))
    return pd.concat(parts, ignore_index=True)
