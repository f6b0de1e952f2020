"""Headline tables of a run, for the terminal, JSON and a self-contained HTML report.

:func:`analyze_run` computes every table the run's data supports and skips the others with a reason (in the
``notes`` table), so a run with no ratings yet, or no mitigation loop, still gets a report. The HTML report embeds
its figures as base64 PNG (matplotlib with the Agg backend, imported only here) and escapes all text that came
from models, raters or configuration. Every figure carries its coverage: how many generations it rests on out
of how many there are.

Every output leads with the run's study (persona toxicity, value inertia, PolygloToxicityPrompts or
Demo-SafetyBench, named in the run's config or inferred from its data; :mod:`analysis.studies`) and that study's
headline tables and figure, then the generic tables.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis._frames import str_categorical
from analysis.agreement import agreement_by, judge_error_correlation, spearman_matrix
from analysis.demographics import demographic_sensitivity
from analysis.io import RunTables, analysis_frame, load_run, ratings_long, store_path
from analysis.mitigation import mitigation_curve, rounds_to_success, stop_reasons
from analysis.refusal import gender_gaps, refusal_rates_by_factor
from analysis.regression import persona_regressions
from analysis.studies import (
    HEADLINE_DESCRIPTIONS,
    STUDY_TABLES,
    headline_figure,
    pick_toxicity_dimension,
    study_headline,
)
from analysis.toxicity import ptp_metrics, toxicity_amplification

logger = logging.getLogger(__name__)

__all__ = ["analyze_run", "analyze_tables", "render_tables", "tables_to_json", "write_report"]

REPORT_FILENAME = "report.html"


def _note(notes: list[dict], table: str, reason: str) -> None:
    notes.append({"table": table, "reason": reason})


def analyze_run(run_dir: str | Path, **options: Any) -> dict[str, pd.DataFrame]:
    """Compute the headline tables of a run directory.

    Args:
        run_dir: The run directory (holding ``transcripts.sqlite``).
        **options: Passed to :func:`analyze_tables` (``toxicity_dimension``, ``threshold``, ``n_boot``,
            ``regressions``, ``seed``, ``study``).

    Returns:
        An ordered dict of table name → DataFrame. It starts with ``study`` (which study the run is, see
        :mod:`analysis.studies`), that study's ``headline_*`` tables and ``headline_notes`` (headline tables left
        out or partial, and why); then the generic tables, where ``notes`` lists the tables left out and why.
    """
    return analyze_tables(load_run(run_dir), **options)


def analyze_tables(
    tables: RunTables,
    toxicity_dimension: str | None = None,
    threshold: float = 0.5,
    n_boot: int = 200,
    regressions: bool = True,
    seed: int = 0,
    study: str | None = "auto",
) -> dict[str, pd.DataFrame]:
    """The headline tables of loaded transcript tables; see :func:`analyze_run`.

    ``study`` is ``"auto"`` (detect it: :func:`analysis.studies.study_detection`), one of
    :data:`analysis.studies.STUDIES`, or ``None`` for the generic tables only.
    """
    notes: list[dict] = []
    af = analysis_frame(tables)
    # The study's headline tables lead; computed before the generic ones add columns to the frame.
    out: dict[str, pd.DataFrame] = study_headline(
        tables, study, frame=af, toxicity_dimension=toxicity_dimension, threshold=threshold, n_boot=n_boot, seed=seed
    )
    frame = af.frame.copy(deep=False)

    gens = frame.assign(outcome=str_categorical(frame["outcome"]), model=str_categorical(frame["model"]))
    counts = gens.groupby(["model", "outcome"], observed=True).size().rename("n").reset_index()
    counts["share"] = counts["n"] / counts.groupby("model")["n"].transform("sum")
    out["generations"] = counts
    dims = sorted(af.score_columns["dimension"].unique().tolist()) if len(af.score_columns) else []
    summary = {
        "cells": len(tables.cells),
        "generations_round0": len(frame),
        "generations_all_rounds": len(tables.generations),
        "ratings": len(tables.ratings),
        "raters": int(tables.ratings["rater"].nunique()) if len(tables.ratings) else 0,
        "dimensions": ", ".join(dims) if dims else "(no ratings)",
        "models": ", ".join(sorted(map(str, frame["model"].dropna().unique()))),
    }
    out["summary"] = pd.DataFrame([summary])
    if len(af.coverage):
        cov = af.coverage.pivot_table(index=["dimension", "rater"], columns="outcome", values="n", fill_value=0)
        cov = cov.reset_index()
        cov.columns.name = None
        out["rating_coverage"] = cov
    else:
        _note(notes, "rating_coverage", "no ratings in this run yet (run `tribunal rate`)")

    # ---------------------------------------------------------------------------------------- refusal
    known_refusal = frame["refusal"].notna().any()
    if known_refusal:
        out["refusal_rates"] = refusal_rates_by_factor(frame, by="model")
        gaps = gender_gaps(frame, by=["model", "persona_category"])
        if len(gaps):
            out["refusal_gender_gaps"] = gaps
        else:
            _note(notes, "refusal_gender_gaps", "fewer than two persona genders with known refusals")
        if regressions:
            reg = persona_regressions(frame, "refusal", "logit", on_degenerate="skip")
            if len(reg):
                out["refusal_regression"] = reg
            for model, reason in reg.attrs.get("skipped", {}).items():
                _note(notes, "refusal_regression", f"{model}: {reason}")
    else:
        _note(notes, "refusal_rates", "no generation has a refusal flag")

    # --------------------------------------------------------------------------------------- toxicity
    tox_dim = pick_toxicity_dimension(dims, toxicity_dimension)
    tox_all_rounds = None
    if tox_dim is None:
        _note(notes, "toxicity_by_persona", "no toxicity dimension was rated")
    else:
        cols = af.columns_for(tox_dim)
        frame["toxicity"] = frame[cols].mean(axis=1, skipna=True)
        scored = frame["toxicity"].notna()
        g = frame.loc[scored].groupby(["model", "persona_category"], observed=True)["toxicity"]
        by_persona = pd.DataFrame({"n": g.count(), "mean": g.mean(), "sd": g.std(ddof=1)}).reset_index()
        se = by_persona["sd"] / np.sqrt(by_persona["n"])
        by_persona["ci_low"] = by_persona["mean"] - 1.959964 * se
        by_persona["ci_high"] = by_persona["mean"] + 1.959964 * se
        totals = frame.groupby(["model", "persona_category"], observed=True).size().rename("n_generations")
        by_persona = by_persona.drop(columns="sd").merge(totals.reset_index(), on=["model", "persona_category"])
        out["toxicity_by_persona"] = by_persona
        prompt_cols = [c for c in ("persona_id", "target_id", "template_id", "language") if c in frame.columns]
        frame["prompt_id"] = frame.groupby(["model", *prompt_cols], observed=True, sort=False).ngroup()
        out["toxicity_ptp"] = ptp_metrics(frame, "prompt_id", "toxicity", threshold=threshold, by="model")
        amp = toxicity_amplification(
            frame,
            "toxicity",
            persona="persona_category",
            pair_on=("model", "target_id", "template_id", "language"),
            by="model",
            n_boot=n_boot,
            seed=seed,
        )
        if len(amp):
            out["toxicity_amplification"] = amp
        else:
            _note(notes, "toxicity_amplification", "no persona cell has a scored no-persona baseline to pair with")
        if regressions:
            reg = persona_regressions(frame, "toxicity", "ols", on_degenerate="skip")
            if len(reg):
                out["toxicity_regression"] = reg
            for model, reason in reg.attrs.get("skipped", {}).items():
                _note(notes, "toxicity_regression", f"{model}: {reason}")
        r = tables.ratings
        r = r[(str_categorical(r["dimension"]) == tox_dim).to_numpy() & r["score"].notna().to_numpy()]
        tox_all_rounds = r.groupby("generation_id", observed=True)["score"].mean()

    # -------------------------------------------------------------------------------------- agreement
    if dims:
        long = ratings_long(tables, 0)
        long["dimension"] = str_categorical(long["dimension"])
        long["rater"] = str_categorical(long["rater"])
        multi = long.groupby("dimension", observed=True)["rater"].nunique()
        multi = multi[multi >= 2].index.tolist()
        if multi:
            sub = long[long["dimension"].isin(multi)]
            out["agreement"] = agreement_by(
                sub, "dimension", "generation_id", "rater", "score", metrics=("icc", "alpha")
            )
            if "language" in sub.columns and sub["language"].nunique() > 1:
                out["agreement_by_language"] = agreement_by(
                    sub, ["dimension", "language"], "generation_id", "rater", "score", metrics=("icc", "alpha")
                )
            rho_rows, err_rows = [], []
            for d in multi:
                part = sub[sub["dimension"] == d]
                m = spearman_matrix(part, "generation_id", "rater", "score")
                for a in m.index:
                    for b in m.columns:
                        rho_rows.append({"dimension": d, "rater_a": a, "rater_b": b, "spearman": m.loc[a, b]})
                if part["rater"].nunique() >= 3:
                    try:
                        je = judge_error_correlation(part, "generation_id", "rater", "score")
                        s = je.summary().assign(
                            dimension=d, n_eff=je.n_eff, n_eff_null=je.n_eff_null, n_units=je.n_units
                        )
                        err_rows.append(s)
                    except ValueError as exc:
                        _note(notes, "judge_errors", f"{d}: {exc}")
            out["spearman"] = pd.DataFrame(rho_rows)
            if err_rows:
                out["judge_errors"] = pd.concat(err_rows, ignore_index=True)
        else:
            _note(notes, "agreement", "no dimension was scored by two or more raters")
        framed = long["framing_attribute"].notna() if "framing_attribute" in long.columns else None
        if framed is not None and framed.any():
            ds = demographic_sensitivity(long[framed], item="generation_id", score="score")
            ds.insert(0, "note", "")
            out["demographic_sensitivity"] = ds
        else:
            _note(notes, "demographic_sensitivity", "no rating was made under a demographic framing")
    else:
        _note(notes, "agreement", "no ratings in this run yet")

    # ------------------------------------------------------------------------------------- mitigation
    if len(tables.mitigation):
        out["mitigation_stop_reasons"] = stop_reasons(tables.mitigation)
        if tox_all_rounds is not None:
            gens_all = tables.generations[["generation_id", "cell_id", "round"]]
            gens_all = gens_all.assign(score=tox_all_rounds.reindex(gens_all["generation_id"]).to_numpy())
            treated = tables.mitigation["cell_id"]
            out["mitigation_curve"] = mitigation_curve(gens_all, threshold=threshold, cells=treated)
            out["mitigation_rounds_to_success"] = rounds_to_success(gens_all, threshold=threshold, cells=treated)
        else:
            _note(notes, "mitigation_curve", "the mitigation curve needs a rated toxicity dimension")
    else:
        _note(notes, "mitigation_curve", "no cell went through the mitigation loop")

    # A few generations to show (their text is read by the HTML report only): the most toxic first.
    ex_cols = ["generation_id", "model", "persona_id", "target_id", "template_id", "outcome"]
    pool = frame[(str_categorical(frame["outcome"]) == "ok").to_numpy()]
    if "toxicity" in pool.columns:
        pool = pool[pool["toxicity"].notna()].nlargest(5, "toxicity")
        out["examples"] = pool[[*ex_cols, "toxicity"]].reset_index(drop=True)
    else:
        out["examples"] = pool.head(5)[ex_cols].reset_index(drop=True)

    out["notes"] = pd.DataFrame(notes, columns=["table", "reason"])
    return out


# ------------------------------------------------------------------------------------------ renderers


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def tables_to_json(tables: dict[str, pd.DataFrame]) -> str:
    """The tables as one JSON object: table name → list of row objects (``NaN`` → ``null``)."""
    payload = {}
    for name, df in tables.items():
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records") if len(df) else []
        payload[name] = _jsonable(records)
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    if isinstance(value, np.ndarray):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _is_headline(name: str) -> bool:
    return name == "study" or name.startswith("headline_")


def _study_row(tables: dict[str, pd.DataFrame]) -> dict[str, Any] | None:
    info = tables.get("study")
    if info is None or not len(info):
        return None
    return info.iloc[0].to_dict()


#: Narrowest readable column in the terminal; tables with more columns than fit are printed transposed.
_MIN_COLUMN = 9


def render_tables(tables: dict[str, pd.DataFrame], console, max_rows: int = 40) -> None:
    """Print the tables with rich (long tables are cut at ``max_rows`` with a line saying how many more).

    The study's headline tables come first under a rule naming the study, each with its one-line meaning; the
    ``study`` table itself is printed as that one line.
    """
    from rich.table import Table

    info = _study_row(tables)
    has_headline = info is not None and info.get("study") is not None
    if has_headline:
        console.rule(f"{info['title']}: headline figures")
        console.print(f"Study: {info['study']} ({info['reason']}). {info.get('coverage') or ''}".strip())
    elif info is not None:
        console.print(f"Study: none recognised ({info['reason']}).")
    started_rest = False
    for name, df in tables.items():
        if name == "study" and info is not None:
            continue  # said in the line above (the JSON keeps the table)
        if has_headline and not started_rest and not _is_headline(name):
            console.rule("All tables")
            started_rest = True
        caption = HEADLINE_DESCRIPTIONS.get(name)
        shown = df.head(max_rows)
        width = getattr(console, "width", 120) or 120
        if len(df.columns) * _MIN_COLUMN > width and len(shown):
            # too wide to read column-wise: one column per row of the table, in blocks that fit (like psql's \x)
            per_block = max(1, (width - 24) // 14)
            for start in range(0, len(shown), per_block):
                block = shown.iloc[start : start + per_block]
                title = name if start == 0 else f"{name} (rows {start + 1}–{start + len(block)})"
                last = start + per_block >= len(shown)
                table = Table(title=title, title_justify="left", caption=caption if last else None,
                              caption_justify="left")  # fmt: skip
                table.add_column("column", overflow="fold", style="bold")
                for index in range(len(block)):
                    table.add_column(f"#{start + index + 1}", overflow="fold")
                for col in df.columns:
                    table.add_row(str(col), *(_fmt(v) for v in block[col].tolist()))
                console.print(table)
        else:
            table = Table(title=name, title_justify="left", show_lines=False, caption=caption, caption_justify="left")
            for col in df.columns:
                table.add_column(str(col), overflow="fold")
            for row in shown.itertuples(index=False):
                table.add_row(*(_fmt(v) for v in row))
            console.print(table)
        if len(df) > max_rows:
            console.print(f"  … {len(df) - max_rows} more rows (use --json for all)")


# ------------------------------------------------------------------------------------------ HTML report


def _figure_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str | None, str]]:
    """(title, base64 PNG or None, coverage line or reason it is absent) for each standard figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: list[tuple[str, str | None, str]] = []
    summary = tables["summary"].iloc[0]
    n_gen = int(summary["generations_round0"])

    # Agreement heatmap
    rho = tables.get("spearman")
    if rho is not None and len(rho):
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
        figs.append(
            (
                f"Agreement heatmap: {dim}",
                _figure_png(fig),
                f"Coverage: {n_units} of {n_gen} round-0 generations scored by these raters.",
            )
        )
    else:
        figs.append(("Agreement heatmap", None, "Absent: no dimension was scored by two or more raters."))

    # Per-persona toxicity with CIs
    tox = tables.get("toxicity_by_persona")
    if tox is not None and len(tox):
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
        figs.append(
            (
                "Toxicity by persona category",
                _figure_png(fig),
                f"Coverage: {n_scored} of {int(tox['n_generations'].sum())} round-0 generations scored.",
            )
        )
    else:
        figs.append(("Toxicity by persona category", None, "Absent: no toxicity dimension was rated."))

    # Refusal by gender
    ref = tables.get("refusal_rates")
    if ref is not None and len(ref) and (ref["factor"] == "persona_gender").any():
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
        figs.append(
            (
                "Refusal by persona gender",
                _figure_png(fig),
                f"Coverage: {n_known} of {n_gen} round-0 generations with a known refusal flag.",
            )
        )
    else:
        figs.append(("Refusal by persona gender", None, "Absent: no generation has a refusal flag."))

    # Mitigation curves
    cur = tables.get("mitigation_curve")
    if cur is not None and len(cur):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(cur["round"], cur["mean_score"], marker="o", label="mean toxicity")
        ax.plot(cur["round"], cur["share_above"], marker="s", label="share ≥ threshold")
        ax.set_xlabel("round")
        ax.set_ylim(0, 1)
        ax.legend()
        figs.append(
            (
                "Mitigation curve",
                _figure_png(fig),
                f"Coverage: {int(cur['n_scored'].iloc[0])} of {int(cur['n_cells'].iloc[0])} cells in the "
                "loop scored at round 0.",
            )
        )
    else:
        reason = "no cell went through the mitigation loop"
        notes = tables.get("notes")
        if notes is not None:
            hit = notes.loc[notes["table"] == "mitigation_curve", "reason"]
            reason = hit.iloc[0] if len(hit) else reason
        figs.append(("Mitigation curve", None, f"Absent: {reason}."))
    return figs


def _example_texts(run_dir: str | Path, examples: pd.DataFrame | None) -> dict[int, str | None]:
    """The text of the example generations, read by rowid from the read-only store."""
    if examples is None or not len(examples):
        return {}
    ids = [int(i) for i in examples["generation_id"]]
    conn = sqlite3.connect(f"{store_path(run_dir).resolve().as_uri()}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT rowid, text FROM generations WHERE rowid IN ({marks})", ids).fetchall()
    finally:
        conn.close()
    return dict(rows)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right} th{background:#f3f3f3}
.coverage{color:#555;font-style:italic} .absent{color:#a33} pre{white-space:pre-wrap;background:#f7f7f7;padding:6px}
"""


def _figure_html(title: str, png: str | None, caption: str) -> list[str]:
    esc = html.escape
    if png is None:
        return [f"<h3>{esc(title)}</h3>", f"<p class='absent'>{esc(caption)}</p>"]
    return [
        f"<h3>{esc(title)}</h3>",
        f"<img alt='{esc(title)}' src='data:image/png;base64,{png}'>",
        f"<p class='coverage'>{esc(caption)}</p>",
    ]


def _table_html(name: str, df: pd.DataFrame, max_rows: int, description: str | None = None) -> list[str]:
    parts = [f"<h3>{html.escape(name)}</h3>"]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    shown = df.head(max_rows).map(lambda v: _fmt(v) if isinstance(v, float | np.ndarray) else v)
    parts.append(shown.to_html(index=False, escape=True, na_rep=""))
    if len(df) > max_rows:
        parts.append(f"<p>… {len(df) - max_rows} more rows (see <code>tribunal analyze --json</code>).</p>")
    return parts


def _headline_html(tables: dict[str, pd.DataFrame], max_rows: int) -> list[str]:
    """The "<Study>: headline figures" section: how the study was recognised, its figure, its tables or why not."""
    esc = html.escape
    info = _study_row(tables)
    if info is None:
        return []
    study = info.get("study")
    if study is None:
        return [f"<p class='coverage'>Study: none recognised ({esc(str(info['reason']))}); generic report.</p>"]
    notes = tables.get("headline_notes", pd.DataFrame(columns=["table", "reason"]))
    parts = [
        "<section id='headline'>",
        f"<h2>{esc(str(info['title']))}: headline figures</h2>",
        f"<p>Study <code>{esc(str(study))}</code>: {esc(str(info['reason']))}.</p>",
    ]
    figure = headline_figure(tables)
    if figure is not None and figure[1] is not None:
        parts.extend(_figure_html(*figure))  # its caption is the coverage line
    else:
        if info.get("coverage"):
            parts.append(f"<p class='coverage'>{esc(str(info['coverage']))}</p>")
        if figure is not None:
            parts.extend(_figure_html(*figure))
    for name in STUDY_TABLES[study]:
        reasons = notes.loc[notes["table"] == name, "reason"].astype(str).tolist()
        if name in tables:
            parts.extend(_table_html(name, tables[name], max_rows, HEADLINE_DESCRIPTIONS.get(name)))
            parts.extend(f"<p class='absent'>Note: {esc(r)}.</p>" for r in reasons)
        elif reasons:
            parts.append(f"<h3>{esc(name)}</h3>")
            parts.extend(f"<p class='absent'>Absent: {esc(r)}.</p>" for r in reasons)
    parts.append("</section>")
    return parts


def write_report(run_dir: str | Path, out: Path | None = None, max_rows: int = 200) -> Path:
    """Write a self-contained HTML report of a run; returns its path (default ``<run_dir>/report.html``).

    The report opens with the run's study and its headline figures (:mod:`analysis.studies`), then the generic
    figures and tables. Tables are escaped by ``DataFrame.to_html``; example generations and every note go through
    ``html.escape``, so model output such as ``<script>`` is shown, never executed.
    """
    tables = analyze_run(run_dir)
    run_path = Path(run_dir)
    out = Path(out) if out is not None else (run_path if run_path.is_dir() else run_path.parent) / REPORT_FILENAME
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>tribunal report: {esc(str(run_path))}</title><style>{_CSS}</style></head><body>",
        f"<h1>tribunal report</h1><p>Run: <code>{esc(str(run_path.resolve()))}</code></p>",
        *_headline_html(tables, max_rows),
        "<h2>Figures</h2>",
    ]
    for title, png, caption in _figures(tables):
        parts.extend(_figure_html(title, png, caption))
    parts.append("<h2>Tables</h2>")
    for name, df in tables.items():
        if _is_headline(name):
            continue  # shown in the headline section
        parts.extend(_table_html(name, df, max_rows))
    examples = tables.get("examples")
    texts = _example_texts(run_dir, examples)
    if texts:
        parts.append("<h2>Example generations</h2>")
        for row in examples.itertuples(index=False):
            head = f"{row.model} · {row.persona_id} · {row.target_id} · {row.template_id} · {row.outcome}"
            if hasattr(row, "toxicity"):
                head += f" · toxicity {row.toxicity:.3f}"
            text = texts.get(int(row.generation_id))
            parts.append(f"<p><b>{esc(head)}</b></p><pre>{esc(str(text))}</pre>")
    parts.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
