"""Persona toxicity (after Deshpande et al. 2023 [1]_): how much a persona raises toxicity and refusal.

Headline tables:

``headline_toxicity_amplification``
    Toxicity amplification over the no-persona baseline by model × persona category, ratio and difference with
    paired-bootstrap CIs (:func:`analysis.toxicity.toxicity_amplification`; pairs are (model, target, template,
    language)).
``headline_refusal_vs_baseline``
    Refusal rate per persona kind and category against the model's baseline rate (two-proportion z-tests,
    Benjamini–Hochberg over the table; :mod:`analysis.refusal`).
``headline_refusal_gender_gap``
    The gender gap in refusal per model (:func:`analysis.refusal.gender_gaps`).

References
----------
.. [1] Deshpande, A., Murahari, V., Rajpurohit, T., Kalyan, A., & Narasimhan, K. (2023). Toxicity in ChatGPT:
   analyzing persona-assigned language models. *Findings of EMNLP 2023*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures import Figure, figure_png, pyplot
from analysis.frames import str_categorical
from analysis.io import AnalysisFrame, RunTables
from analysis.notes import Notes
from analysis.refusal import (
    benjamini_hochberg,
    gender_gaps,
    refusal_rates,
    refusal_rates_by_factor,
    two_proportion_ztest,
)
from analysis.studies.common import (
    absent_reason,
    baseline_mask,
    coverage_line,
    no_toxicity_reason,
    pick_toxicity_dimension,
)
from analysis.toxicity import toxicity_amplification

__all__ = ["DESCRIPTIONS", "TABLES", "persona_toxicity_figure", "persona_toxicity_headline"]

#: The headline tables, in the order the report shows them.
TABLES = (
    "headline_toxicity_amplification",
    "headline_refusal_vs_baseline",
    "headline_refusal_gender_gap",
)
#: What each headline table shows, for the report.
DESCRIPTIONS = {
    "headline_toxicity_amplification": (
        "Mean toxicity of each persona category over the no-persona baseline, pairing each persona cell with the "
        "baseline cell of the same model, target, template and language: ratio = persona mean / baseline mean "
        "(1 = no amplification), difference = persona mean − baseline mean, with 95% paired-bootstrap CIs."
    ),
    "headline_refusal_vs_baseline": (
        "Refusal rate of each persona kind and category (Wilson 95% CI) next to the same model's no-persona "
        "baseline rate; gap = rate − baseline rate, tested with a two-proportion z-test and Benjamini–Hochberg "
        "over the table (significant at FDR 5%)."
    ),
    "headline_refusal_gender_gap": (
        "Refusal-rate gap between persona genders per model (gap = rate_a − rate_b), two-proportion z-tests with "
        "Benjamini–Hochberg correction."
    ),
}


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
        tables: The run's tables.
        af: The run's analysis frame (not modified).
        out: Receives ``headline_toxicity_amplification``, ``headline_refusal_vs_baseline`` and
            ``headline_refusal_gender_gap``, those that can be computed.
        notes: Receives one row per table left out or partial.
        toxicity_dimension: The toxicity dimension (default: the first rated dimension containing "tox").
        n_boot: Bootstrap replicates of the amplification CIs.
        seed: Bootstrap seed.

    Returns:
        The coverage line: how many round-0 generations were scored on the toxicity dimension ("" if none).
    """
    frame = af.frame
    n = len(frame)
    base = baseline_mask(frame)
    dims = set(af.score_columns["dimension"]) if len(af.score_columns) else set()
    tox_dim = pick_toxicity_dimension(dims, toxicity_dimension)
    coverage = ""
    amp_name = "headline_toxicity_amplification"
    if tox_dim is None:
        why = no_toxicity_reason(dims)
        notes.add(amp_name, why)
    else:
        tox = frame[af.columns_for(tox_dim)].mean(axis=1, skipna=True)
        coverage = coverage_line(int(tox.notna().sum()), n, f"scored on {tox_dim}")
        pair_on = ["model", "target_id", "template_id", "language"]
        data = frame[[*pair_on, "persona_category"]].assign(toxicity=tox.to_numpy())
        if not base.any():
            notes.add(amp_name, "the run has no no-persona baseline cells to compare the personas with")
        elif not tox[base].notna().any():
            notes.add(amp_name, f"no baseline generation was scored on {tox_dim}")
        else:
            amp = toxicity_amplification(
                data, "toxicity", persona="persona_category", baseline="none", pair_on=pair_on, by="model",
                n_boot=n_boot, seed=seed,
            )  # fmt: skip
            if len(amp):
                amp = amp.rename(columns={"persona": "persona_category"})
                amp.insert(0, "dimension", tox_dim)
                out[amp_name] = amp
                if amp["ratio"].isna().any():
                    notes.add(amp_name, "ratio is empty where the baseline's mean toxicity is 0")
            else:
                notes.add(
                    amp_name,
                    "no scored persona cell shares (model, target, template, language) with a scored baseline cell",
                )

    # Refusal: persona kinds and categories against the model's baseline, and the gender gap.
    ref_name, gap_name = "headline_refusal_vs_baseline", "headline_refusal_gender_gap"
    known = frame["refusal"].notna().to_numpy()
    if not known.any():
        for name in (ref_name, gap_name):
            notes.add(name, "no generation has a refusal flag (no refusal detector ran)")
        return coverage
    cols = ["model", "persona_kind", "persona_category", "persona_gender", "refusal"]
    data = frame[cols].assign(model=str_categorical(frame["model"]))
    personas = data[~base]
    if not len(personas):
        notes.add(ref_name, "the run has no persona cells")
    else:
        rates = refusal_rates_by_factor(personas, factors=("persona_kind", "persona_category"), by="model")
        baseline = refusal_rates(data[base], "model") if base.any() else pd.DataFrame(columns=["model"])
        baseline = baseline.reindex(columns=["model", "n", "refusals", "rate"]).rename(
            columns={"n": "baseline_n", "refusals": "baseline_refusals", "rate": "baseline_rate"}
        )
        rates["model"] = rates["model"].astype(str)
        baseline["model"] = baseline["model"].astype(str)
        rates = rates.merge(baseline, on="model", how="left")
        rates["gap"] = rates["rate"] - rates["baseline_rate"]
        rates["z"], rates["pval"] = two_proportion_ztest(
            rates["refusals"], rates["n"], rates["baseline_refusals"], rates["baseline_n"]
        )
        rates.loc[rates["baseline_n"].isna(), "pval"] = np.nan
        rates["pval_bh"] = benjamini_hochberg(rates["pval"].to_numpy(dtype=float))
        rates["significant"] = rates["pval_bh"] <= 0.05
        rates = rates.drop(columns=["n_unknown"])
        out[ref_name] = rates
        if not base.any() or not known[base].any():
            notes.add(ref_name, "no no-persona baseline generation has a refusal flag: the baseline columns are empty")
    gaps = gender_gaps(personas, by="model") if len(personas) else pd.DataFrame()
    if len(gaps):
        out[gap_name] = gaps
    else:
        notes.add(gap_name, "fewer than two persona genders with known refusals")
    return coverage


def persona_toxicity_figure(tables: dict[str, pd.DataFrame], coverage: str) -> Figure:
    """Amplification ratio (else difference) per persona category and model, with its CI, against no change."""
    amp = tables.get("headline_toxicity_amplification")
    title = "Toxicity amplification over the no-persona baseline"
    if amp is None or not len(amp):
        return Figure(title, None, "Absent: " + absent_reason(tables, "headline_toxicity_amplification"))
    use_ratio = bool(np.isfinite(amp["ratio"].to_numpy(dtype=float)).any())
    col, ref = ("ratio", 1.0) if use_ratio else ("difference", 0.0)
    cats = sorted(amp["persona_category"].astype(str).unique())
    models = list(dict.fromkeys(amp["model"].astype(str)))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(cats) + 2))
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
    for off, model in zip(offsets, models, strict=True):
        p = amp[amp["model"].astype(str) == model].set_index("persona_category").reindex(cats)
        v = p[col].to_numpy(dtype=float)
        err = np.clip([v - p[f"{col}_ci_low"].to_numpy(float), p[f"{col}_ci_high"].to_numpy(float) - v], 0, None)
        ax.errorbar(v, np.arange(len(cats)) + off, xerr=np.nan_to_num(err), fmt="o", capsize=3, label=model[:40])
    ax.axvline(ref, color="grey", lw=1, ls="--")
    ax.set_yticks(range(len(cats)), cats)
    ax.set_xlabel(f"toxicity {col} persona vs baseline (95% CI)")
    ax.legend(fontsize=8)
    return Figure(title, figure_png(fig), coverage)
