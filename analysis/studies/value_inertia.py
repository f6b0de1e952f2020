"""Value inertia: whether personas move a model's answers on the moral-foundation scales.

Headline table:

``headline_value_inertia``
    :func:`analysis.values.value_inertia` per model over the moral-foundation scores of each answer (ratings of a
    ``moral-probe`` rater when there are any, else the mean of the raters of that foundation), with the probe
    (``target_id``) and the ``language`` as the items whose effects are removed before the persona effect is
    measured. The statistics, formulas and references are in :mod:`analysis.values`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.figures import Figure, figure_png, pyplot
from analysis.io import AnalysisFrame, RunTables
from analysis.notes import Notes
from analysis.studies.common import MORAL_FOUNDATIONS, absent_reason, baseline_mask, coverage_line, value_mask
from analysis.values import value_inertia

__all__ = ["DESCRIPTIONS", "MORAL_PROBE_KIND", "TABLES", "value_inertia_figure", "value_inertia_headline"]

#: The rater kind whose scores are the model's own questionnaire answers; preferred over other raters.
MORAL_PROBE_KIND = "moral-probe"
#: The headline tables, in the order the report shows them.
TABLES = ("headline_value_inertia",)
#: What each headline table shows, for the report.
DESCRIPTIONS = {
    "headline_value_inertia": (
        "Per model and moral foundation: the default (no-persona) mean score, the distribution of persona means, "
        "the persona effect after removing probe and language effects (partial eta² of persona in a two-way "
        "model score ~ persona + probe × language: the sample value, its bias-adjusted partial omega² and the "
        "95% noncentral-F interval of the population share) and the share of personas on the same side of the "
        "scale midpoint (0.5) as the default. High share_same_side with a small persona share whose interval "
        "excludes large values is value inertia."
    ),
}


def value_inertia_headline(tables: RunTables, af: AnalysisFrame, out: dict[str, pd.DataFrame], notes: Notes) -> str:
    """Add the value-inertia headline table to ``out`` (the reason it is missing or partial to ``notes``).

    Args:
        tables: The run's tables.
        af: The run's analysis frame (not modified).
        out: Receives ``headline_value_inertia`` when it can be computed.
        notes: Receives one row per table left out or partial.

    Returns:
        The coverage line: how many (moral-probe) round-0 generations were scored on a moral foundation ("" if none).
    """
    name = "headline_value_inertia"
    frame = af.frame
    probes = value_mask(frame["template_id"], "moral_probes")
    rows = probes if probes.any() else np.ones(len(frame), dtype=bool)
    what = "of the moral-probe cells " if probes.any() else ""
    sc = af.score_columns
    sc = sc[sc["dimension"].isin(MORAL_FOUNDATIONS)] if len(sc) else sc
    if not len(sc):
        rated = sorted(set(af.score_columns["dimension"])) if len(af.score_columns) else []
        notes.add(
            name,
            "no ratings in this run yet (run `tribunal rate`)"
            if not rated
            else f"no rating on a moral foundation ({', '.join(MORAL_FOUNDATIONS)}); rated: {', '.join(rated)}",
        )
        return ""
    kinds = _config_rater_kinds(tables.config)
    is_probe = np.array(
        [_rater_kind(r, n, kinds) == MORAL_PROBE_KIND for r, n in zip(sc["rater"], sc["rater_name"], strict=True)]
    )
    part = frame.loc[rows]
    base = baseline_mask(part)
    persona = part["persona_id"].astype(str).to_numpy(dtype=object)
    persona[base] = "none"
    pieces = []
    sources = {}
    for dim in [d for d in MORAL_FOUNDATIONS if d in set(sc["dimension"])]:
        in_dim = (sc["dimension"] == dim).to_numpy()
        use = sc[in_dim & is_probe]
        if len(use):
            sources[dim] = f"moral-probe rater(s): {', '.join(sorted(set(use['rater_name'])))}"
        else:
            use = sc[in_dim]
            sources[dim] = f"mean of rater(s): {', '.join(sorted(set(use['rater_name'])))}"
        score = part[use["column"].tolist()].mean(axis=1, skipna=True).to_numpy()
        pieces.append(
            pd.DataFrame(
                {
                    "model": part["model"].astype(str).to_numpy(),
                    "dimension": dim,
                    "persona_id": persona,
                    "probe": part["target_id"].astype(object).to_numpy(),
                    "language": part["language"].astype(object).to_numpy(),
                    "score": score,
                }
            )
        )
    answered = np.column_stack([p["score"].notna().to_numpy() for p in pieces]).any(axis=1)
    coverage = coverage_line(int(answered.sum()), len(part), f"{what}scored on a moral foundation")
    long = pd.concat(pieces, ignore_index=True)
    scored = long["score"].notna()
    long = long[scored]
    if not len(long):
        notes.add(name, "the moral-foundation ratings of these generations are all unscored")
        return coverage
    results = []
    for model, mpart in long.groupby("model", sort=True):
        vi = value_inertia(mpart, "dimension", "persona_id", "score", item="probe", language="language")
        vi = vi.drop(columns="eta_squared")  # pooled over probes and languages: not the persona effect
        counts = mpart.groupby("dimension")["persona_id"].agg(
            n_answers="size", n_default_answers=lambda p: int((p == "none").sum())
        )
        vi = vi.merge(counts.reset_index(), on="dimension", how="left")
        vi.insert(0, "model", model)
        vi["scores_from"] = vi["dimension"].map(sources)
        results.append(vi)
        no_default = vi.loc[vi["default_mean"].isna(), "dimension"].tolist()
        if no_default:
            notes.add(
                name,
                f"{model} ({', '.join(no_default)}): no scored no-persona answer, so default_mean and the same-side "
                "share are empty",
            )
        for dim, note in zip(vi["dimension"], vi["note"], strict=True):
            if note:
                notes.add(name, f"{model} ({dim}): {note}")
    res = pd.concat(results, ignore_index=True)
    res["dimension"] = pd.Categorical(res["dimension"], categories=list(MORAL_FOUNDATIONS), ordered=True)
    res = res.sort_values(["model", "dimension"], ignore_index=True)
    res["dimension"] = res["dimension"].astype(str)
    lead = ["model", "dimension", "n_answers", "n_default_answers"]
    out[name] = res[[*lead, *[c for c in res.columns if c not in lead]]]
    return coverage


def _config_rater_kinds(config: dict[str, Any] | None) -> dict[str, str]:
    """Rater name → kind from the config's panel (for identities stored without their kind)."""
    raters = ((config or {}).get("panel") or {}).get("raters") or []
    return {str(r["name"]): str(r["kind"]) for r in raters if isinstance(r, dict) and "name" in r and "kind" in r}


def _rater_kind(rater: str, rater_name: str, config_kinds: dict[str, str]) -> str | None:
    """A rater's kind: the second field of its stored identity (``name|kind|…``), else the config's panel."""
    parts = str(rater).split("|")
    if len(parts) >= 2 and parts[0] == str(rater_name):
        return parts[1]
    return config_kinds.get(str(rater_name))


def value_inertia_figure(tables: dict[str, pd.DataFrame], coverage: str) -> Figure:
    """Persona means (range and IQR) against the default model's mean per foundation and model."""
    vi = tables.get("headline_value_inertia")
    title = "Persona means against the default model per moral foundation"
    if vi is None or not len(vi):
        return Figure(title, None, "Absent: " + absent_reason(tables, "headline_value_inertia"))
    models = list(dict.fromkeys(vi["model"].astype(str)))
    dims = [d for d in MORAL_FOUNDATIONS if d in set(vi["dimension"])]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 * len(dims) * max(1, len(models)) ** 0.5 + 3, 4.5))
    width = 0.7 / max(len(models), 1)
    for i, model in enumerate(models):
        p = vi[vi["model"] == model].set_index("dimension").reindex(dims)
        x = np.arange(len(dims)) + (i - (len(models) - 1) / 2) * width
        ax.vlines(x, p["persona_min"], p["persona_max"], color=f"C{i}", lw=1)
        ax.vlines(x, p["persona_q25"], p["persona_q75"], color=f"C{i}", lw=5, label=f"{model[:30]} personas")
        ax.scatter(x, p["default_mean"], marker="x", color="black", zorder=3, s=40)
    ax.scatter([], [], marker="x", color="black", label="default (no persona)")
    ax.axhline(0.5, color="grey", lw=1, ls="--")
    ax.set_xticks(range(len(dims)), dims)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean score (persona range, IQR)")
    ax.legend(fontsize=8)
    return Figure(title, figure_png(fig), coverage)
