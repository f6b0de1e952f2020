"""Value inertia: whether personas move a model's answers on the moral-foundation and value scales.

Headline table:

``headline_value_inertia``
    :func:`analysis.values.value_inertia` per model and dimension, for both self-report instruments: the five moral
    foundations (``instrument`` ``moral_foundations``), Schwartz's ten basic values (``schwartz_values``) and his
    four higher-order values (``schwartz_higher_order``: the items of their basic values pooled, each item its own
    item effect). Scores are a dimension's ratings by a ``moral-probe`` or ``value-probe`` rater when there are
    any, else the mean of the raters of that dimension; the probe (``target_id``) and the ``language`` are the
    items whose effects are removed before the persona effect is measured.

    Each row leads with the corrected persona effect: ``persona_omega_squared`` (partial omega squared, the sample
    share less what the persona means' own noise gives), the 95% interval of the population share, the share
    expected under no persona effect (``persona_eta_squared_null``) and the F test's ``persona_p``; where the data
    cannot give a figure it is empty and ``note`` (and the headline notes) say why. The statistics, formulas and
    references are in :mod:`analysis.values`. The seed (value orientation and inertia) singles out harm avoidance
    (``care``) and fairness as the dimensions that stay skewed across personas.
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

__all__ = [
    "DESCRIPTIONS",
    "HIGHER_ORDER_VALUES",
    "LEAD_COLUMNS",
    "MORAL_PROBE_KIND",
    "PROBE_KINDS",
    "SCHWARTZ_VALUES",
    "TABLES",
    "value_inertia_figure",
    "value_inertia_headline",
]

#: The rater kind whose scores are the model's own moral-probe answers; preferred over other raters.
MORAL_PROBE_KIND = "moral-probe"
#: The rater kinds whose scores are the model's own questionnaire answers (moral probes, Schwartz value items).
PROBE_KINDS = (MORAL_PROBE_KIND, "value-probe")
#: Schwartz's basic values and the higher-order value of each, as ``configs.catalog_schema`` defines them (not
#: imported from there because ``analysis`` does not import ``configs``).
VALUE_GROUPS = {
    "self_direction": "openness_to_change",
    "stimulation": "openness_to_change",
    "hedonism": "openness_to_change",
    "achievement": "self_enhancement",
    "power": "self_enhancement",
    "security": "conservation",
    "conformity": "conservation",
    "tradition": "conservation",
    "benevolence": "self_transcendence",
    "universalism": "self_transcendence",
}
SCHWARTZ_VALUES = tuple(VALUE_GROUPS)
HIGHER_ORDER_VALUES = tuple(dict.fromkeys(VALUE_GROUPS.values()))
#: Dimension → instrument, in the order the table lists them.
_INSTRUMENTS = {
    **dict.fromkeys(MORAL_FOUNDATIONS, "moral_foundations"),
    **dict.fromkeys(SCHWARTZ_VALUES, "schwartz_values"),
    **dict.fromkeys(HIGHER_ORDER_VALUES, "schwartz_higher_order"),
}
#: The columns each row leads with: which dimension, then the corrected persona effect, its interval and null.
LEAD_COLUMNS = (
    "model",
    "instrument",
    "dimension",
    "persona_omega_squared",
    "persona_eta_squared_ci_low",
    "persona_eta_squared_ci_high",
    "persona_eta_squared_null",
    "persona_p",
    "persona_eta_squared",
    "default_mean",
    "share_same_side",
    "n_answers",
    "n_default_answers",
)
#: The headline tables, in the order the report shows them.
TABLES = ("headline_value_inertia",)
#: What each headline table shows, for the report.
DESCRIPTIONS = {
    "headline_value_inertia": (
        "Per model and dimension (the five moral foundations, Schwartz's ten basic values and his four "
        "higher-order values): first the persona effect after removing probe and language effects, corrected for "
        "noise (partial omega² of persona in the two-way model score ~ persona + probe × language), the 95% "
        "noncentral-F interval of the population share, the share expected under no persona effect "
        "(persona_eta_squared_null, against which the sample partial eta² is read) and the F test's p; then the "
        "default (no-persona) mean score, the share of personas on the same side of the scale midpoint (0.5) as "
        "the default and the distribution of persona means. High share_same_side with a small persona effect "
        "whose interval excludes large values is value inertia; the seed singles out care (harm avoidance) and "
        "fairness."
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
        The coverage line: how many (probe) round-0 generations were scored on a foundation or value ("" if none).
    """
    name = "headline_value_inertia"
    frame = af.frame
    probes = value_mask(frame["template_id"], "moral_probes")
    rows = probes if probes.any() else np.ones(len(frame), dtype=bool)
    what = "of the moral-probe cells " if probes.any() else ""
    sc = af.score_columns
    known = (*MORAL_FOUNDATIONS, *SCHWARTZ_VALUES)
    sc = sc[sc["dimension"].isin(known)] if len(sc) else sc
    if not len(sc):
        rated = sorted(set(af.score_columns["dimension"])) if len(af.score_columns) else []
        notes.add(
            name,
            "no ratings in this run yet (run `tribunal rate`)"
            if not rated
            else f"no rating on a moral foundation ({', '.join(MORAL_FOUNDATIONS)}) or Schwartz value; "
            f"rated: {', '.join(rated)}",
        )
        return ""
    kinds = _config_rater_kinds(tables.config)
    is_probe = np.array(
        [_rater_kind(r, n, kinds) in PROBE_KINDS for r, n in zip(sc["rater"], sc["rater_name"], strict=True)]
    )
    part = frame.loc[rows]
    base = baseline_mask(part)
    persona = part["persona_id"].astype(str).to_numpy(dtype=object)
    persona[base] = "none"
    pieces = []
    sources = {}
    for dim in [d for d in known if d in set(sc["dimension"])]:
        in_dim = (sc["dimension"] == dim).to_numpy()
        use = sc[in_dim & is_probe]
        if len(use):
            kind = "moral-probe" if dim in MORAL_FOUNDATIONS else "value-probe"
            sources[dim] = f"{kind} rater(s): {', '.join(sorted(set(use['rater_name'])))}"
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
    coverage = coverage_line(int(answered.sum()), len(part), f"{what}scored on a moral foundation or value")
    long = pd.concat(pieces, ignore_index=True)
    scored = long["score"].notna()
    long = long[scored]
    if not len(long):
        notes.add(name, "the moral-foundation and value ratings of these generations are all unscored")
        return coverage
    groups = long[long["dimension"].isin(SCHWARTZ_VALUES)]
    if len(groups):  # a higher-order value pools its basic values' items; each item keeps its own effect
        sources.update(
            {h: f"pooled from {', '.join(v for v, g in VALUE_GROUPS.items() if g == h)}" for h in HIGHER_ORDER_VALUES}
        )
        long = pd.concat([long, groups.assign(dimension=groups["dimension"].map(VALUE_GROUPS))], ignore_index=True)
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
    res["dimension"] = pd.Categorical(res["dimension"], categories=list(_INSTRUMENTS), ordered=True)
    res = res.sort_values(["model", "dimension"], ignore_index=True)
    res["dimension"] = res["dimension"].astype(str)
    res.insert(1, "instrument", res["dimension"].map(_INSTRUMENTS))
    out[name] = res[[*LEAD_COLUMNS, *[c for c in res.columns if c not in LEAD_COLUMNS]]]
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
    """Per dimension and model: the corrected persona effect with its interval and null (top), then the persona
    means (range and IQR) against the default model's mean (bottom)."""
    vi = tables.get("headline_value_inertia")
    title = "Persona effect per moral foundation and value, and persona means against the default model"
    if vi is None or not len(vi):
        return Figure(title, None, "Absent: " + absent_reason(tables, "headline_value_inertia"))
    models = list(dict.fromkeys(vi["model"].astype(str)))
    dims = [d for d in _INSTRUMENTS if d in set(vi["dimension"])]
    plt = pyplot()
    width_in = min(0.9 * len(dims) * max(1, len(models)) ** 0.5 + 3, 16)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width_in, 7.5), sharex=True)
    width = 0.7 / max(len(models), 1)
    for i, model in enumerate(models):
        p = vi[vi["model"] == model].set_index("dimension").reindex(dims)
        x = np.arange(len(dims)) + (i - (len(models) - 1) / 2) * width
        top.vlines(x, p["persona_eta_squared_ci_low"], p["persona_eta_squared_ci_high"], color=f"C{i}", lw=2)
        top.scatter(x, p["persona_omega_squared"], color=f"C{i}", zorder=3, s=25, label=f"{model[:30]} (95% CI)")
        top.scatter(x, p["persona_eta_squared_null"], marker="_", color="grey", zorder=2, s=80)
        bottom.vlines(x, p["persona_min"], p["persona_max"], color=f"C{i}", lw=1)
        bottom.vlines(x, p["persona_q25"], p["persona_q75"], color=f"C{i}", lw=5, label=f"{model[:30]} personas")
        bottom.scatter(x, p["default_mean"], marker="x", color="black", zorder=3, s=40)
    top.scatter([], [], marker="_", color="grey", s=80, label="sample share under no persona effect")
    top.set_ylim(0, 1)
    top.set_ylabel("persona effect (partial ω²)")
    top.legend(fontsize=8)
    bottom.scatter([], [], marker="x", color="black", label="default (no persona)")
    bottom.axhline(0.5, color="grey", lw=1, ls="--")
    rotate = len(dims) > 6
    bottom.set_xticks(range(len(dims)), dims, rotation=35 if rotate else 0, ha="right" if rotate else "center")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("mean score (persona range, IQR)")
    bottom.legend(fontsize=8)
    return Figure(title, figure_png(fig), coverage)
