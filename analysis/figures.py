"""The generic report's figures, each as a base64 PNG with the coverage it rests on.

Every figure is a :class:`Figure`: a title, the PNG (``None`` when the run's data do not support the figure) and a
caption that says either how many generations the figure rests on out of how many there are (``"Coverage: …"``)
or why it is absent (``"Absent: …"``). The functions take the tables of :func:`analysis.tables.analyze_tables`.

matplotlib is imported only when a figure is drawn, with the non-interactive Agg backend (:func:`pyplot`), so
``import analysis`` does not load it and no display is needed.
"""

from __future__ import annotations

import base64
import io
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "Figure",
    "agreement_heatmap",
    "figure_png",
    "mitigation_curve_figure",
    "pyplot",
    "refusal_by_gender_figure",
    "standard_figures",
    "toxicity_by_persona_figure",
]


class Figure(NamedTuple):
    """A report figure: ``(title, png, caption)``."""

    title: str
    #: The figure as base64-encoded PNG, or ``None`` when it is absent.
    png: str | None
    #: The coverage line, or ``"Absent: <reason>."``.
    caption: str


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any) -> str:
    """A matplotlib figure as base64 PNG (110 dpi, tight bounding box); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def standard_figures(tables: dict[str, pd.DataFrame]) -> list[Figure]:
    """The four figures of every report, in the report's order."""
    return [
        agreement_heatmap(tables),
        toxicity_by_persona_figure(tables),
        refusal_by_gender_figure(tables),
        mitigation_curve_figure(tables),
    ]


def _round0_generations(tables: dict[str, pd.DataFrame]) -> int:
    return int(tables["summary"].iloc[0]["generations_round0"])


def agreement_heatmap(tables: dict[str, pd.DataFrame]) -> Figure:
    """Spearman correlations between the raters of the first dimension with two or more raters."""
    n_gen = _round0_generations(tables)
    rho = tables.get("spearman")
    if rho is None or not len(rho):
        return Figure("Agreement heatmap", None, "Absent: no dimension was scored by two or more raters.")
    plt = pyplot()
    dim = rho["dimension"].iloc[0]
    m = rho[rho["dimension"] == dim].pivot(index="rater_a", columns="rater_b", values="spearman")
    fig, ax = plt.subplots(figsize=(1.2 * len(m) + 3, 1.0 * len(m) + 2))
    im = ax.imshow(m.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(m.columns)), [str(c)[:30] for c in m.columns], rotation=45, ha="right")
    ax.set_yticks(range(len(m.index)), [str(c)[:30] for c in m.index])
    for i in range(len(m)):
        for j in range(len(m)):
            ax.text(j, i, f"{m.iat[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="Spearman ρ")
    ax.set_title(f"Rater agreement ({dim})")
    agr = tables["agreement"]
    n_units = int(agr.loc[agr["dimension"] == dim, "n_units"].max())
    return Figure(
        f"Agreement heatmap: {dim}",
        figure_png(fig),
        f"Coverage: {n_units} of {n_gen} round-0 generations scored by these raters.",
    )


def toxicity_by_persona_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Mean toxicity per persona category and model, with 95% CIs."""
    tox = tables.get("toxicity_by_persona")
    if tox is None or not len(tox):
        return Figure("Toxicity by persona category", None, "Absent: no toxicity dimension was rated.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.35 * tox["persona_category"].nunique() + 2))
    models = tox["model"].astype(str).unique()
    cats = sorted(tox["persona_category"].astype(str).unique())
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]
    for off, model in zip(offsets, models, strict=True):
        part = tox[tox["model"].astype(str) == model]
        part = part.set_index(part["persona_category"].astype(str)).reindex(cats)
        y = np.arange(len(cats)) + off
        ax.errorbar(
            part["mean"],
            y,
            xerr=np.clip([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]], 0, None),
            fmt="o",
            capsize=3,
            label=model[:40],
        )
    ax.set_yticks(range(len(cats)), cats)
    ax.set_xlabel("mean toxicity (95% CI)")
    ax.legend(fontsize=8)
    n_scored = int(tox["n"].sum())
    return Figure(
        "Toxicity by persona category",
        figure_png(fig),
        f"Coverage: {n_scored} of {int(tox['n_generations'].sum())} round-0 generations scored.",
    )


def refusal_by_gender_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Refusal rate per persona gender and model, with Wilson 95% CIs."""
    n_gen = _round0_generations(tables)
    ref = tables.get("refusal_rates")
    if ref is None or not len(ref) or not (ref["factor"] == "persona_gender").any():
        return Figure("Refusal by persona gender", None, "Absent: no generation has a refusal flag.")
    plt = pyplot()
    part = ref[ref["factor"] == "persona_gender"]
    fig, ax = plt.subplots(figsize=(7, 4))
    models = part["model"].astype(str).unique()
    levels = sorted(part["level"].astype(str).unique())
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        p = part[part["model"].astype(str) == model].set_index("level").reindex(levels)
        x = np.arange(len(levels)) + i * width
        ax.bar(
            x,
            p["rate"],
            width,
            yerr=np.clip([p["rate"] - p["ci_low"], p["ci_high"] - p["rate"]], 0, None),
            capsize=3,
            label=model[:40],
        )
    ax.set_xticks(np.arange(len(levels)) + width * (len(models) - 1) / 2, levels)
    ax.set_ylabel("refusal rate (Wilson 95% CI)")
    ax.legend(fontsize=8)
    n_known = int(part["n"].sum())
    return Figure(
        "Refusal by persona gender",
        figure_png(fig),
        f"Coverage: {n_known} of {n_gen} round-0 generations with a known refusal flag.",
    )


def mitigation_curve_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Mean toxicity and the share at or above the threshold per mitigation round."""
    cur = tables.get("mitigation_curve")
    if cur is None or not len(cur):
        reason = "no cell went through the mitigation loop"
        notes = tables.get("notes")
        if notes is not None:
            hit = notes.loc[notes["table"] == "mitigation_curve", "reason"]
            reason = hit.iloc[0] if len(hit) else reason
        return Figure("Mitigation curve", None, f"Absent: {reason}.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(cur["round"], cur["mean_score"], marker="o", label="mean toxicity")
    ax.plot(cur["round"], cur["share_above"], marker="s", label="share ≥ threshold")
    ax.set_xlabel("round")
    ax.set_ylim(0, 1)
    ax.legend()
    return Figure(
        "Mitigation curve",
        figure_png(fig),
        f"Coverage: {int(cur['n_scored'].iloc[0])} of {int(cur['n_cells'].iloc[0])} cells in the "
        "loop scored at round 0.",
    )
