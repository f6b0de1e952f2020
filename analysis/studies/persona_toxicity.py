"""Persona toxicity (after Deshpande et al. 2023 [1]_): how much a persona raises toxicity and refusal.

Headline tables:

``headline_toxicity_amplification``
    Toxicity amplification over the no-persona baseline by model × persona category, ratio and difference with
    paired-bootstrap CIs (:func:`analysis.toxicity.toxicity_amplification`; pairs are (model, target, template,
    language)). The personas of a category are a sample of it: they weigh the same and the bootstrap resamples
    them with the pairs, so the interval speaks for the category.
``headline_toxicity_amplification_by_persona``
    Amplification of each persona on its own, with its category and valence, the most amplifying first per model.
``headline_refusal_vs_baseline``
    Refusal rate per persona kind and category against the model's baseline rate, tested over personas (Welch's
    t on persona rates, Benjamini–Hochberg over the table; :func:`analysis.refusal.refusal_vs_baseline`).
``headline_refusal_gender_gap``
    The gender gap in refusal per model, tested over personas (:func:`analysis.refusal.gender_gaps`).
``headline_toxicity_amplification_by_valence``
    The same amplification by model × category × valence, so that the "basic" category's good, kind and honest
    personas no longer pool with its bad, nasty and rude ones. The valence (``positive``, ``negative``,
    ``neutral``) comes from the persona catalog through the run's config snapshot (:func:`persona_valences`);
    personas without one are ``unknown``, and a note says so.
``headline_mitigation_success``
    The seed's case study: what the critique-rewrite loop did to the replies the gate panel sent to the critic,
    round 0 against the last round, one row per panel. The held-out ``measure`` panel's row leads (``headline``)
    when the run has one: the gate's own curve falls whenever the rewrites please it, so only the held-out panel
    can say that the text got less toxic (:func:`analysis.mitigation.mitigation_tables`).
``headline_mitigation_curve``
    Both panels' mean score and share at or above the threshold by round over those cells, with 95% CIs and
    coverage (``n_scored`` of ``n_cells``); ``panel`` says which is which.

Judges that also generated (:mod:`analysis.self_judging`) are named in a note on the amplification tables.

References
----------
.. [1] Deshpande, A., Murahari, V., Rajpurohit, T., Kalyan, A., & Narasimhan, K. (2023). Toxicity in ChatGPT:
   analyzing persona-assigned language models. *Findings of EMNLP 2023*.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures import Figure, figure_png, pyplot
from analysis.frames import str_categorical, values_as_strings
from analysis.io import AnalysisFrame, RunTables
from analysis.mitigation import (
    MEASURE,
    mitigation_by_panel,
    mitigation_panels,
    panel_notes,
    raters_scoring,
    success_rows,
    treated_cells,
)
from analysis.notes import Notes
from analysis.refusal import gender_gaps, refusal_vs_baseline
from analysis.self_judging import self_judging_notes
from analysis.studies.common import (
    absent_reason,
    baseline_mask,
    coverage_line,
    no_toxicity_reason,
    pick_toxicity_dimension,
)
from analysis.toxicity import toxicity_amplification
from graphs.tables import CONFIG_FILENAME

__all__ = [
    "DESCRIPTIONS",
    "TABLES",
    "UNKNOWN_VALENCE",
    "VALENCES",
    "persona_toxicity_figure",
    "persona_toxicity_headline",
    "persona_valences",
    "valence_column",
]

#: The persona valences of the catalogs (``configs.schema.Persona.valence``; not imported: analysis does not
#: import configs).
VALENCES = ("positive", "negative", "neutral")
#: The valence of a persona whose catalog entry gives none.
UNKNOWN_VALENCE = "unknown"

#: The headline tables, in the order the report shows them.
TABLES = (
    "headline_toxicity_amplification",
    "headline_toxicity_amplification_by_persona",
    "headline_refusal_vs_baseline",
    "headline_refusal_gender_gap",
    "headline_toxicity_amplification_by_valence",
    "headline_mitigation_success",
    "headline_mitigation_curve",
)
AMPLIFICATION, BY_PERSONA, REFUSAL, GENDER_GAP, BY_VALENCE, MITIGATION_SUCCESS, MITIGATION_CURVE = TABLES
_AMPLIFICATION = (
    "pairing each persona cell with the baseline cell of the same model, target, template and language: ratio = "
    "persona mean / baseline mean (1 = no amplification), difference = persona mean − baseline mean"
)
#: What each headline table shows, for the report.
DESCRIPTIONS = {
    "headline_toxicity_amplification": (
        f"Mean toxicity of each persona category over the no-persona baseline, {_AMPLIFICATION}. Personas weigh "
        "the same within a category, and the 95% bootstrap CIs resample personas and pairs (n_clusters personas), "
        "so they speak for the category, not only for the personas drawn."
    ),
    "headline_refusal_vs_baseline": (
        "Refusal rate of each persona kind and category next to the same model's no-persona baseline rate. With "
        "persona ids, rate is the mean of the personas' rates (each persona one observation, t interval) and "
        "gap = rate − baseline rate is tested with Welch's t over personas; Benjamini–Hochberg over the table "
        "(significant at FDR 5%). The note says when there are too few personas to test."
    ),
    "headline_refusal_gender_gap": (
        "Refusal-rate gap between persona genders per model (gap = rate_a − rate_b, rates averaged over each "
        "gender's personas), Welch's t over personas with Benjamini–Hochberg correction; the personas, not the "
        "generations, are the sample."
    ),
    "headline_toxicity_amplification_by_valence": (
        f"The amplification by persona category × valence (positive, negative, neutral, from the persona "
        f"catalog), {_AMPLIFICATION}; CIs resample personas and pairs."
    ),
    "headline_toxicity_amplification_by_persona": (
        f"The amplification of each persona, {_AMPLIFICATION}; CIs resample the pairs. Sorted by ratio within "
        "each model, the most amplifying persona first."
    ),
    "headline_mitigation_success": (
        "The critique-rewrite loop on the replies the gate panel sent to the critic: mean score and share at or "
        "above the loop's threshold at round 0 and after the last round, reduction with its 95% t interval over "
        "cells (paired), one row per panel. The gate decides whether to rewrite again and the critic reads its "
        "scores, so its row falls by construction; the held-out measure panel never steers the loop, and its row, "
        "when there is one, is the headline."
    ),
    "headline_mitigation_curve": (
        "Mean score (95% t CI over cells) and share at or above the threshold (Wilson CI) per round, for the gate "
        "and the held-out measure panel, over the cells the gate sent to the critic; a cell that stopped keeps its "
        "last score. Coverage: n_scored of n_cells."
    ),
}


def persona_valences(tables: RunTables) -> dict[str, str] | None:
    """Persona id → valence from the run directory's config snapshot (``config.yaml``, written by ``tribunal run``).

    Returns:
        The valence of every persona in the snapshot (:data:`UNKNOWN_VALENCE` for those whose catalog entry has
        none), or ``None`` when the run directory has no readable snapshot with personas.
    """
    import yaml

    path = Path(tables.path).parent / CONFIG_FILENAME
    try:
        snapshot = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    personas = snapshot.get("personas") if isinstance(snapshot, dict) else None
    if not isinstance(personas, list):
        return None
    out = {}
    for entry in personas:
        if isinstance(entry, dict) and entry.get("id") is not None:
            valence = entry.get("valence")
            out[str(entry["id"])] = str(valence) if valence in VALENCES else UNKNOWN_VALENCE
    return out


def valence_column(persona_ids: pd.Series, valences: dict[str, str] | None, baseline: np.ndarray) -> pd.Series:
    """Each row's persona valence: ``"none"`` for the baseline, :data:`UNKNOWN_VALENCE` where not known."""
    codes, uniques = pd.factorize(persona_ids)
    known = valences or {}
    per_id = np.array([known.get(str(u), UNKNOWN_VALENCE) for u in uniques] + [UNKNOWN_VALENCE], dtype=object)
    mapped = per_id[codes]  # code -1 (a missing id) takes the last entry
    mapped[baseline] = "none"
    return pd.Series(mapped, index=persona_ids.index, name="persona_valence")


def persona_toxicity_headline(
    tables: RunTables,
    af: AnalysisFrame,
    out: dict[str, pd.DataFrame],
    notes: Notes,
    toxicity_dimension: str | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> str:
    """Add the persona-toxicity headline tables to ``out`` (reasons for missing ones to ``notes``).

    Args:
        tables: The run's tables (its run directory's ``config.yaml`` gives the personas' valences).
        af: The run's analysis frame (not modified).
        out: Receives the tables of :data:`TABLES` that can be computed.
        notes: Receives one row per table left out or partial.
        toxicity_dimension: The toxicity dimension (default: the first rated dimension containing "tox").
        n_boot: Bootstrap replicates of the amplification CIs.
        seed: Bootstrap seed.

    Returns:
        The coverage line: how many round-0 generations were scored on the toxicity dimension ("" if none).
    """
    frame = af.frame
    base = baseline_mask(frame)
    dims = set(af.score_columns["dimension"]) if len(af.score_columns) else set()
    tox_dim = pick_toxicity_dimension(dims, toxicity_dimension)
    coverage = ""
    if tox_dim is None:
        notes.add(AMPLIFICATION, no_toxicity_reason(dims))
    else:
        tox = frame[af.columns_for(tox_dim)].mean(axis=1, skipna=True)
        coverage = coverage_line(int(tox.notna().sum()), len(frame), f"scored on {tox_dim}")
        if not base.any():
            notes.add(AMPLIFICATION, "the run has no no-persona baseline cells to compare the personas with")
        elif not tox[base].notna().any():
            notes.add(AMPLIFICATION, f"no baseline generation was scored on {tox_dim}")
        else:
            _amplification(tables, frame, base, tox, tox_dim, out, notes, n_boot, seed)
            for reason in self_judging_notes(tables.config, raters_scoring(tables.ratings, tox_dim)):
                notes.add(AMPLIFICATION, reason)
    _refusal(frame, base, out, notes)
    _mitigation(tables, tox_dim, out, notes)
    return coverage


def _mitigation(tables: RunTables, tox_dim: str | None, out: dict[str, pd.DataFrame], notes: Notes) -> None:
    """The loop's success and both panels' curves over the cells the gate sent to the critic."""
    success_name, curve_name = MITIGATION_SUCCESS, MITIGATION_CURVE
    if tables.config is not None and not (tables.config.get("mitigation") or {}).get("enabled", True):
        return
    if not len(tables.mitigation):
        if (tables.config or {}).get("mitigation"):
            notes.add(success_name, "no cell went through the mitigation loop yet")
        return
    raters = values_as_strings(tables.ratings["rater_name"])
    panels = mitigation_panels(tables.config, raters)
    scored = values_as_strings(tables.ratings["dimension"])
    dimension = panels.dimension if panels.dimension in scored else tox_dim
    treated = treated_cells(tables.mitigation)
    if dimension is None:
        notes.add(success_name, "no rater scored the loop's dimension")
        return
    if not len(treated):
        notes.add(success_name, "no reply was at or above the gate's threshold: the loop rewrote nothing")
        return
    threshold = panels.threshold if panels.threshold is not None else 0.5
    curves = mitigation_by_panel(tables, dimension, threshold, panels, cells=treated)
    success = success_rows(curves, panels)
    if not len(success):
        notes.add(success_name, f"no gate or measure rater scored {dimension} on the rewritten cells")
        return
    success.insert(0, "dimension", dimension)
    out[success_name] = success
    order = sorted(curves, key=lambda label: label != MEASURE)
    out[curve_name] = pd.concat([curves[label].assign(panel=label) for label in order], ignore_index=True)
    out[curve_name] = out[curve_name][["panel", *[c for c in out[curve_name].columns if c != "panel"]]]
    for reason in panel_notes(panels, curves, tables.config):
        notes.add(success_name, reason)


def _amplification(
    tables: RunTables,
    frame: pd.DataFrame,
    base: np.ndarray,
    tox: pd.Series,
    tox_dim: str,
    out: dict[str, pd.DataFrame],
    notes: Notes,
    n_boot: int,
    seed: int,
) -> None:
    """The three amplification tables: by category, by category × valence and by persona."""
    pair_on = ["model", "target_id", "template_id", "language"]
    valences = persona_valences(tables)
    data = frame[[*pair_on, "persona_id", "persona_category"]].assign(
        toxicity=tox.to_numpy(), persona_valence=valence_column(frame["persona_id"], valences, base).to_numpy()
    )
    amp_name, val_name, per_name = AMPLIFICATION, BY_VALENCE, BY_PERSONA
    options = {"pair_on": pair_on, "by": "model", "baseline": "none", "n_boot": n_boot, "seed": seed}
    views = (
        (amp_name, "persona_category", "persona_id"),
        (val_name, ["persona_category", "persona_valence"], "persona_id"),
        (per_name, ["persona_category", "persona_valence", "persona_id"], None),
    )
    for name, persona, cluster in views:
        amp = toxicity_amplification(data, "toxicity", persona=persona, cluster=cluster, **options)
        if not len(amp):
            notes.add(name, "no scored persona cell shares (model, target, template, language) with a scored baseline")
            continue
        amp = amp.rename(columns={"persona": "persona_category"})
        amp.insert(0, "dimension", tox_dim)
        if name == per_name:
            amp = amp.sort_values(["model", "ratio", "difference"], ascending=[True, False, False], kind="stable")
            amp = amp.reset_index(drop=True)
        out[name] = amp
        if amp["ratio"].isna().any():
            notes.add(name, "ratio is empty where the baseline's mean toxicity is 0")
    if val_name in out:
        personas = data.loc[~base, ["persona_id", "persona_valence"]].drop_duplicates("persona_id")
        unknown = sorted(personas.loc[personas["persona_valence"] == UNKNOWN_VALENCE, "persona_id"].astype(str))
        if valences is None:
            notes.add(val_name, f"the run directory has no {CONFIG_FILENAME} with personas: every valence is unknown")
        elif unknown:
            shown = ", ".join(unknown[:5]) + (", …" if len(unknown) > 5 else "")
            notes.add(
                val_name,
                f"{len(unknown)} of {len(personas)} personas have no valence in the catalog ({shown}): "
                f"listed as {UNKNOWN_VALENCE}",
            )


def _refusal(frame: pd.DataFrame, base: np.ndarray, out: dict[str, pd.DataFrame], notes: Notes) -> None:
    """Refusal against the baseline and the gender gap, both tested over personas."""
    ref_name, gap_name = REFUSAL, GENDER_GAP
    known = frame["refusal"].notna().to_numpy()
    if not known.any():
        for name in (ref_name, gap_name):
            notes.add(name, "no generation has a refusal flag (no refusal detector ran)")
        return
    cols = ["model", "persona_id", "persona_kind", "persona_category", "persona_gender", "is_baseline", "refusal"]
    data = frame[cols].assign(model=str_categorical(frame["model"]))
    personas = data[~base]
    if not len(personas):
        notes.add(ref_name, "the run has no persona cells")
    else:
        out[ref_name] = refusal_vs_baseline(data, factors=("persona_kind", "persona_category"), by="model")
        if not base.any() or not known[base].any():
            notes.add(ref_name, "no no-persona baseline generation has a refusal flag: the baseline columns are empty")
        _note_untested(out[ref_name], ref_name, notes)
    gaps = gender_gaps(personas, by="model") if len(personas) else pd.DataFrame()
    if len(gaps):
        out[gap_name] = gaps
        _note_untested(gaps, gap_name, notes)
    else:
        notes.add(gap_name, "fewer than two persona genders with known refusals")


def _note_untested(table: pd.DataFrame, name: str, notes: Notes) -> None:
    """One note for the rows a persona-level test could not be run on."""
    untested = table["pval"].isna() & (table["note"] != "")
    if untested.any():
        notes.add(name, f"{int(untested.sum())} of {len(table)} rows have no test (see their note)")


def persona_toxicity_figure(tables: dict[str, pd.DataFrame], coverage: str) -> Figure:
    """Amplification ratio (else difference) per persona category (× valence, where known) and model, with its
    CI, against no change."""
    amp = tables.get(AMPLIFICATION)
    title = "Toxicity amplification over the no-persona baseline"
    if amp is None or not len(amp):
        return Figure(title, None, "Absent: " + absent_reason(tables, AMPLIFICATION))
    amp = amp.assign(group=amp["persona_category"].astype(str))
    by_valence = tables.get(BY_VALENCE)
    if by_valence is not None and (by_valence["persona_valence"].astype(str) != UNKNOWN_VALENCE).any():
        amp = by_valence.assign(
            group=by_valence["persona_category"].astype(str) + " · " + by_valence["persona_valence"].astype(str)
        )
    use_ratio = bool(np.isfinite(amp["ratio"].to_numpy(dtype=float)).any())
    col, ref = ("ratio", 1.0) if use_ratio else ("difference", 0.0)
    groups = sorted(amp["group"].unique())
    models = list(dict.fromkeys(amp["model"].astype(str)))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(groups) + 2))
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
    for off, model in zip(offsets, models, strict=True):
        p = amp[amp["model"].astype(str) == model].set_index("group").reindex(groups)
        v = p[col].to_numpy(dtype=float)
        err = np.clip([v - p[f"{col}_ci_low"].to_numpy(float), p[f"{col}_ci_high"].to_numpy(float) - v], 0, None)
        ax.errorbar(v, np.arange(len(groups)) + off, xerr=np.nan_to_num(err), fmt="o", capsize=3, label=model[:40])
    ax.axvline(ref, color="grey", lw=1, ls="--")
    ax.set_yticks(range(len(groups)), groups)
    ax.set_xlabel(f"toxicity {col} persona vs baseline (95% CI over personas and prompts)")
    ax.legend(fontsize=8)
    return Figure(title, figure_png(fig), coverage)
