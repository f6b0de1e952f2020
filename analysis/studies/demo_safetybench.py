"""Demo-SafetyBench: do demographically framed judges agree, and how much does the framing move their scores?

A run of the seed's design (stage I samples from DICES, each rated as given by judges with ``framing: profile``)
gets the prompt-level tables of :mod:`analysis.studies.demo_profiles`: ICC across the profile-framed judges and
DS per judge and profile attribute, both with intervals and DS with its permutation null, the humans' own
between-group spread beside each judge's DS, each framed judge against the humans of its profile, and the (δ, τ)
threshold sweep. A run whose judges are framed by fixed attribute values (``framing: {attribute, value}``) on
generated replies gets the tables below, as before.

Headline tables of attribute-framed runs:

``headline_agreement``
    ICC and Krippendorff's alpha across the framed raters per dimension (:func:`analysis.agreement.agreement_by`).
``headline_demographic_sensitivity``
    Demographic sensitivity per judge and framing attribute (:func:`analysis.demographics.demographic_sensitivity`,
    tribunal's definition, given there), next to its noise floor, its permutation null (``ds_null``, ``p_value``)
    and the shared framing effect with its own null (``shift``, ``shift_null``, ``shift_p``): a DS means something
    only against what shuffling the framings within a generation gives.
``headline_agreement_by_domain``, ``headline_ds_by_domain``
    Both again per harm domain (``target_category``) when there are several.

The statistics, formulas and references are in :mod:`analysis.agreement` and :mod:`analysis.demographics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.agreement import agreement_by
from analysis.demographics import demographic_sensitivity
from analysis.figures import Figure, figure_png, pyplot
from analysis.frames import str_categorical
from analysis.io import AnalysisFrame, RunTables, ratings_long
from analysis.notes import Notes
from analysis.studies.common import absent_reason, coverage_line
from analysis.studies.demo_profiles import PROFILE_FRAMING, profile_headline, read_stage1

__all__ = ["DESCRIPTIONS", "TABLES", "demo_safetybench_figure", "demo_safetybench_headline"]

#: The headline tables, in the order the report shows them.
TABLES = (
    "headline_agreement",
    "headline_demographic_sensitivity",
    "headline_ds_llm_vs_humans",
    "headline_llm_vs_humans",
    "headline_threshold_sweep",
    "headline_sweep_counts",
    "headline_agreement_by_domain",
    "headline_ds_by_domain",
)
#: What each headline table shows, for the report.
DESCRIPTIONS = {
    "headline_agreement": (
        "Agreement between the demographically framed raters on the same generations, per dimension: ICC2 / "
        "ICC2k (absolute agreement, single / mean of raters), ICC3 (consistency) and Krippendorff's interval alpha."
    ),
    "headline_demographic_sensitivity": (
        "Demographic sensitivity (tribunal's definition): for each judge and framing attribute, the mean over "
        "generations of the spread (max − min) of the judge's score across the attribute's framed values; 0 = the "
        "framing never changes the score, 1 = at most. It grows with the judge's noise, so read it against "
        "ds_null (the mean DS with the framings shuffled within each generation, 1,000 times) and p_value "
        "((1 + #null ≥ DS) / 1,001), and noise_floor (the spread of repeated scores under one framing); with one "
        "score per generation and framing DS has no such null, and shift (the framing effect the generations "
        "share, max − min over values) with shift_p is the test. Row ALL: the mean over attributes."
    ),
    "headline_ds_llm_vs_humans": (
        "Each profile-framed judge's DS next to the DICES humans' between-group spread on the same conversations "
        "(the same statistic on their per-profile mean Q_overall), each with its bootstrap interval and its "
        "permutation null: a judge far below the humans flattens their differences, far above invents some."
    ),
    "headline_llm_vs_humans": (
        "For each framing (attribute value; ALL = every sample), the framed judge against the humans of that "
        "profile: Spearman's rho with a 95% interval that resamples conversations, the mean scores (0–1; humans: "
        "Q_overall Yes = 1, Unsure = 0.5, No = 0) and their mean absolute gap, over samples with a human rating."
    ),
    "headline_threshold_sweep": (
        "The balanced-thresholds sweep: for each classifier threshold δ and SimHash distance τ, the samples stage I "
        "would keep, how many stage II rated (the built pair: all), ICC2 of the profile-framed judges with its "
        "interval and each judge's DS (ALL) with its null (200 permutations) on the rated ones."
    ),
    "headline_sweep_counts": "Samples per harm domain at each (δ, τ) pair of the sweep.",
    "headline_agreement_by_domain": "ICC2 and Krippendorff's alpha of the framed raters per harm domain.",
    "headline_ds_by_domain": "Demographic sensitivity per harm domain, with the same nulls.",
}
_ICC_HEADLINE = ("ICC2", "ICC2k", "ICC3", "alpha_interval")


def demo_safetybench_headline(tables: RunTables, af: AnalysisFrame, out: dict[str, pd.DataFrame], notes: Notes) -> str:
    """Add the Demo-SafetyBench headline tables to ``out`` (reasons for missing ones to ``notes``).

    Args:
        tables: The run's tables.
        af: The run's analysis frame (not modified).
        out: Receives ``headline_agreement``, ``headline_demographic_sensitivity``, ``headline_agreement_by_domain`` and
            ``headline_ds_by_domain``, those that can be computed.
        notes: Receives one row per table left out or partial.

    Returns:
        The coverage line: how many round-0 generations a framed rater scored ("" without ratings).
    """
    agr_name, ds_name = "headline_agreement", "headline_demographic_sensitivity"
    n = len(af.frame)
    if tables.ratings.empty:
        for name in (agr_name, ds_name):
            notes.add(name, "no ratings in this run yet (run `tribunal rate`)")
        return ""
    long = ratings_long(tables, 0)
    framed = long[long["framing_attribute"].notna().to_numpy()]
    if (framed["framing_attribute"].astype(object) == PROFILE_FRAMING).any():
        files = read_stage1(tables.path.parent)
        if files is None:
            for name in (agr_name, ds_name):
                notes.add(name, "the ratings are framed by sample profiles, but the run has no stage1/benchmark.jsonl")
            return ""
        scored, _ = profile_headline(long, files, out, notes, n)
        return coverage_line(scored, n, "scored by a profile-framed judge")
    if not len(framed):
        r = tables.ratings
        unscored = r[r["framing_attribute"].notna().to_numpy()]
        if len(unscored):
            counts = str_categorical(unscored["outcome"]).value_counts()
            outcomes = ", ".join(f"{k}: {v}" for k, v in counts[counts > 0].items())
            why = f"{len(unscored)} ratings were made under demographic framings, none scored ({outcomes})"
        else:
            why = "no rating was made under a demographic framing"
        for name in (agr_name, ds_name):
            notes.add(name, why)
        return coverage_line(0, n, "scored by a framed rater")
    text_cols = ["rater", "rater_name", "dimension", "framing_attribute", "framing_value"]
    data = pd.DataFrame({c: framed[c].astype(str).to_numpy() for c in text_cols})
    data["generation_id"] = framed["generation_id"].to_numpy()
    data["score"] = framed["score"].to_numpy(dtype=float)
    model = framed["rater_model"].astype(object).to_numpy()
    data["judge"] = np.where(pd.isna(model), data["rater_name"].to_numpy(dtype=object), model).astype(str)
    data["domain"] = framed["target_category"].astype(str).to_numpy()
    coverage = coverage_line(int(data["generation_id"].nunique()), n, "scored by a framed rater")

    # Agreement across the framed raters, per dimension (and per domain).
    n_raters = data.groupby("dimension")["rater"].nunique()
    for dim in n_raters[n_raters < 2].index:
        notes.add(agr_name, f"{dim}: only one framed rater scored it, so there is no inter-rater agreement")
    multi = data[data["dimension"].isin(n_raters[n_raters >= 2].index)]
    if len(multi):
        agr = agreement_by(multi, "dimension", "generation_id", "rater", "score", metrics=("icc", "alpha"))
        out[agr_name] = agr[agr["metric"].isin(_ICC_HEADLINE)].reset_index(drop=True)
        for row in out[agr_name].itertuples(index=False):
            if row.note:
                notes.add(agr_name, f"{row.dimension} {row.metric}: {row.note}")
        if multi["domain"].nunique() > 1:
            dom = agreement_by(
                multi, ["dimension", "domain"], "generation_id", "rater", "score", metrics=("icc", "alpha")
            )
            out["headline_agreement_by_domain"] = dom[dom["metric"].isin(("ICC2", "alpha_interval"))].reset_index(
                drop=True
            )
    elif not len(n_raters[n_raters < 2]):
        notes.add(agr_name, "no dimension was scored by two or more framed raters")

    # Demographic sensitivity per dimension, judge and attribute (and per domain).
    ds = _sensitivity(data, ["dimension"], notes, ds_name)
    if len(ds):
        out[ds_name] = ds
    if data["domain"].nunique() > 1:
        ds_dom = _sensitivity(data, ["dimension", "domain"], Notes(), "headline_ds_by_domain")
        if len(ds_dom):
            out["headline_ds_by_domain"] = ds_dom
    return coverage


def _sensitivity(data: pd.DataFrame, by: list[str], notes: Notes, table: str) -> pd.DataFrame:
    """DS per ``by`` group, judge and attribute; a group where no judge saw two framings of an attribute on one
    generation is pooled over its judges (noted), so that differently named framed raters still compare."""
    parts = []
    for key, part in data.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        label = " / ".join(map(str, key))
        ds = demographic_sensitivity(part, item="generation_id", score="score", rater="judge")
        if not len(ds):
            pooled = demographic_sensitivity(part, item="generation_id", score="score", rater=None)
            if len(pooled):
                ds = pooled.assign(rater="all framed raters (pooled)")
                notes.add(
                    table,
                    f"{label}: no judge scored a generation under two values of one attribute, so the framed raters "
                    "are pooled: differences between their models count as framing sensitivity here",
                )
            else:
                notes.add(table, f"{label}: no generation was scored under two values of one framing attribute")
                continue
        values = part.groupby(["judge", "framing_attribute"])["framing_value"].agg(lambda v: ", ".join(sorted(set(v))))
        ds = ds.rename(columns={"rater": "judge"})
        ds["values"] = [values.get((j, a), "") for j, a in zip(ds["judge"], ds["attribute"], strict=True)]
        if (ds["judge"] == "all framed raters (pooled)").any():
            pooled_values = part.groupby("framing_attribute")["framing_value"].agg(lambda v: ", ".join(sorted(set(v))))
            ds["values"] = ds["attribute"].map(pooled_values).fillna("")
        for col, value in zip(by, key, strict=True):
            ds.insert(by.index(col), col, value)
        for note in dict.fromkeys(ds.loc[ds["attribute"] != "ALL", "note"]):
            if note:
                notes.add(table, f"{label}: {note}")
        parts.append(ds)
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)


def demo_safetybench_figure(tables: dict[str, pd.DataFrame], coverage: str) -> Figure:
    """Demographic sensitivity per judge and (dimension, framing attribute)."""
    ds = tables.get("headline_demographic_sensitivity")
    title = "Demographic sensitivity of the framed raters"
    if ds is None or not len(ds):
        return Figure(title, None, "Absent: " + absent_reason(tables, "headline_demographic_sensitivity"))
    ds = ds[ds["attribute"] != "ALL"]
    groups = (ds["dimension"].astype(str) + " / " + ds["attribute"].astype(str)).tolist()
    labels = list(dict.fromkeys(groups))
    judges = list(dict.fromkeys(ds["judge"].astype(str)))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(labels) * len(judges) + 3), 4.5))
    width = 0.8 / len(judges)
    for i, judge in enumerate(judges):
        p = ds.assign(_g=groups)[ds["judge"].astype(str) == judge].set_index("_g").reindex(labels)
        x = np.arange(len(labels)) + i * width
        ax.bar(x, p["ds"], width, label=judge[:40], color=f"C{i}")
        ax.scatter(x, p["ds_null"], marker="_", s=300, color="black", zorder=3)
        ax.scatter(x, p["shift"], marker="o", s=25, facecolor="white", edgecolor="black", zorder=3)
    ax.scatter([], [], marker="_", s=300, color="black", label="DS null (framings shuffled; mean)")
    ax.scatter([], [], marker="o", s=25, facecolor="white", edgecolor="black", label="shift (shared framing effect)")
    ax.set_xticks(np.arange(len(labels)) + width * (len(judges) - 1) / 2, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("demographic sensitivity (mean max − min)")
    ax.set_title("DS against its permutation null; see p_value and shift_p in the table", fontsize=9)
    ax.legend(fontsize=8)
    return Figure(title, figure_png(fig), coverage)
