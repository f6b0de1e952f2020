"""The data behind the report's transcript browser and its disagreement view: what a reader audits a run in.

A headline figure is only as good as the generations and ratings under it, so the HTML report lets a reader open
them: the chat (system persona, user prompt), the reply, every rater's score or typed outcome with its rationale,
and, for a cell that went through the mitigation loop, each round (critique → rewrite → the measuring panel's
scores) with the reason the loop stopped. This module builds that data as plain JSON-able values (no ``NaN``:
``None``); the page embeds it and escapes it (the data keeps every text exactly as stored, ``<script>`` included).

:func:`transcript_data` chooses which round-0 generations to show and reads their texts. A run can hold 1.4
million generations, so it never reads every text: it picks the shown ids from the scores alone (the tables of
:func:`analysis.io.load_run`, read without text), then reads texts, messages, rationales and critiques of those
ids only, with parameterised ``IN (…)`` queries of at most :data:`ID_CHUNK` ids through the read-only connection
of :func:`graphs.tables.connect_readonly`. Up to ``limit`` generations all are shown; above it, a documented
sample: the ``extremes`` highest-scored on the toxicity dimension, the most disputed (every row of
``disagreement_table(tables, top=extremes)``: the ``extremes`` largest judge spreads of each dimension, so that a
disagreement view of up to ``extremes`` rows a dimension always has the texts it points at), and a seeded random
draw (``numpy.random.default_rng(seed)``) of the others up to ``limit``.

:func:`disagreement_table` ranks round-0 generations by the spread of the judges' scores, per dimension: the
spread is ``max − min`` over the *unframed* raters that scored the generation (at least two), and
``framed_spread`` is the same over the raters that rated it under a demographic framing, which measures how far
the framing moved a judge rather than how much judges disagree (:mod:`analysis.demographics` tests that shift
with its null; this table only points at the items to read).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.frames import jsonable, str_categorical
from analysis.io import RunTables, load_run, store_path
from analysis.studies.common import pick_toxicity_dimension
from graphs.tables import connect_readonly

__all__ = ["DISAGREEMENT_COLUMNS", "FACETS", "ID_CHUNK", "disagreement_table", "transcript_data"]

#: The filter menus of the transcript browser: facet → its values among the shown transcripts.
FACETS = ("model", "persona_id", "target_id", "template_id", "language", "outcome")
#: The columns of :func:`disagreement_table`, in order.
DISAGREEMENT_COLUMNS = [
    "generation_id", "dimension", "n_raters", "spread", "min_score", "max_score", "min_rater", "max_rater",
    "framed_spread", "model", "persona_id", "target_id", "template_id", "language",
]  # fmt: skip
#: At most this many ids go into one ``IN (…)`` query (well under SQLite's limit on bound parameters).
ID_CHUNK = 900

_DESIGN = ("model", "persona_id", "target_id", "template_id", "language")
_CELL_SHOWN = ("model", "persona_id", "persona_category", "target_id", "template_id", "language")


def transcript_data(
    run_dir: str | Path,
    *,
    limit: int = 2000,
    extremes: int = 100,
    seed: int = 0,
    dimension: str | None = None,
    tables: RunTables | None = None,
) -> dict[str, Any]:
    """The transcripts a report reader can browse, filter, search and open, as one JSON-able dict.

    Args:
        run_dir: The run directory (or its ``transcripts.sqlite``); texts are read from it for the shown ids only.
        limit: Show every round-0 generation up to this many; above it, a sample of exactly ``limit``.
        extremes: In a sample, how many of the highest-scored to include, and how many of the most disputed on
            each dimension (the highest-scored first, then the largest spreads, when they exceed ``limit``).
        seed: Seed of the random part of the sample (``numpy.random.default_rng``); the sample is deterministic.
        dimension: The dimension behind ``score``; default the first rated dimension containing "tox" (as
            :func:`analysis.studies.pick_toxicity_dimension`), else the first rated dimension.
        tables: The run's tables, if already loaded (for example with untrusted judges left out); default
            :func:`analysis.io.load_run` without text. Scores and the ratings listed come from these tables.

    Returns:
        ``n_total`` (round-0 generations), ``n_shown``, ``sampled``, ``sample_note`` (how the shown set was chosen,
        in one sentence), ``dimension``, ``facets`` (facet → sorted values among the shown transcripts, see
        :data:`FACETS`), ``disagreement`` (the rows of ``disagreement_table(tables, top=extremes)`` as
        records; within ``limit``, every one of them is among the transcripts) and ``transcripts``, one dict per
        shown generation (by ``id``): ``id, model, persona_id, persona_category, target_id, template_id,
        language, outcome, is_baseline, score`` (mean of every rater's score on ``dimension``, framed ones
        included, like the report's toxicity), ``spread`` and
        ``framed_spread`` (as in :func:`disagreement_table`; ``None`` with fewer than two scores), ``system``,
        ``user`` (the system and last user message), ``reply``, ``ratings`` (``rater, model, framing, dimension,
        score, outcome, raw, rationale``), ``rounds`` (one per rewrite: ``round, critique, critic,
        critique_outcome, text, outcome, score, ratings``; a critique that led to no rewrite is a round with
        ``text`` and ``outcome`` ``None``), ``stop_reason``, ``mitigation_rounds`` and ``why`` (``"all"``, or
        some of ``"extreme"``, ``"disputed"``, ``"sample"``).

    Raises:
        ValueError: ``dimension`` was given but no rating is on it; ``limit`` or ``extremes`` is negative.
    """
    if limit < 0 or extremes < 0:
        raise ValueError(f"limit and extremes must be ≥ 0 (got limit={limit}, extremes={extremes})")
    path = store_path(run_dir)
    if tables is None:
        tables = load_run(path)
    gens = tables.generations
    gens0 = gens[(gens["round"] == 0).to_numpy()]
    ids0 = np.sort(gens0["generation_id"].to_numpy(dtype=np.int64))
    dim = _dimension(tables, dimension)
    all_scores = _scores(tables, dim)
    score = all_scores.reindex(ids0)
    disagreement = disagreement_table(tables, top=extremes)
    why = _choose(ids0, score, disagreement["generation_id"].to_numpy(dtype=np.int64), limit, extremes, seed)
    note = _sample_note(len(ids0), why, dim, sorted(set(disagreement["dimension"])), extremes, seed)
    shown = np.array(sorted(why), dtype=np.int64)
    transcripts = _transcripts(path, tables, shown, why, dim, all_scores)
    facets = {f: sorted({t[f] for t in transcripts if t[f] is not None}, key=str) for f in FACETS}
    out = {
        "n_total": len(ids0),
        "n_shown": len(transcripts),
        "sampled": len(transcripts) < len(ids0),
        "sample_note": note,
        "dimension": dim,
        "facets": facets,
        "disagreement": disagreement.to_dict("records"),
        "transcripts": transcripts,
    }
    return jsonable(out)


def disagreement_table(tables: RunTables, *, top: int = 50, dimension: str | None = None) -> pd.DataFrame:
    """Round-0 generations ranked by how much the judges' scores on them disagree, the ``top`` per dimension.

    One row per (round-0 generation, dimension) that at least two unframed raters scored: ``spread = max − min``
    of their scores, the raters who gave the lowest and the highest (``rater_name``; ties go to the first name),
    and ``framed_spread``, ``max − min`` over the raters that scored it under a demographic framing (``NaN``, and
    ``None`` in JSON, with fewer than two framed scores). Rows are ranked by ``spread`` (largest first; ties by
    ``generation_id``) and cut to ``top`` per dimension; the design columns say which cell it is. The texts are
    in :func:`transcript_data`, joined on ``generation_id``: it always shows the rows of this table with ``top``
    up to its ``extremes`` (within its ``limit``).

    Args:
        tables: The run's tables (:func:`analysis.io.load_run`).
        top: Rows kept per dimension.
        dimension: Only this dimension; default every dimension.

    Returns:
        A DataFrame with :data:`DISAGREEMENT_COLUMNS`; empty (with those columns) when no generation has two
        unframed scores on one dimension.
    """
    r = tables.ratings
    if r.empty:
        return _empty()
    dim_codes, dim_names = _sorted_codes(r["dimension"])
    rater_codes, rater_names = _sorted_codes(r["rater_name"])
    keep = r["score"].notna().to_numpy() & (dim_codes >= 0) & (rater_codes >= 0)
    if dimension is not None:
        keep = keep & (dim_codes == (dim_names.tolist().index(dimension) if dimension in dim_names else -2))
    gens = tables.generations
    round0 = gens.loc[(gens["round"] == 0).to_numpy(), "generation_id"].to_numpy(dtype=np.int64)
    keep = keep & np.isin(r["generation_id"].to_numpy(dtype=np.int64), round0)
    # Integer codes, not strings, through the group-bys: a run's ratings can be millions of rows.
    r = pd.DataFrame(
        {
            "generation_id": r["generation_id"].to_numpy(dtype=np.int64)[keep],
            "dimension": dim_codes[keep],
            "rater": rater_codes[keep],
            "score": r["score"].to_numpy(dtype=float)[keep],
            "framed": r["framing_attribute"].notna().to_numpy()[keep],
        }
    )
    keys = ["generation_id", "dimension"]
    plain = r[~r["framed"].to_numpy()].sort_values("rater", kind="stable")  # ties of min and max: first name
    g = plain.groupby(keys, sort=False)["score"]
    out = pd.DataFrame({"n_raters": g.count(), "min_score": g.min(), "max_score": g.max()})
    out = out[out["n_raters"] >= 2]
    if out.empty:
        return _empty()
    out["spread"] = out["max_score"] - out["min_score"]
    framed = r[r["framed"].to_numpy()].groupby(keys, sort=False)["score"].agg(["count", "min", "max"])
    framed = framed[framed["count"] >= 2]
    out["framed_spread"] = (framed["max"] - framed["min"]).reindex(out.index).to_numpy(dtype=float)
    out = out.reset_index().sort_values(["spread", "generation_id", "dimension"], ascending=[False, True, True])
    out = out.groupby("dimension", sort=False).head(top).reset_index(drop=True)
    index = pd.MultiIndex.from_frame(out[keys])
    out["min_rater"] = rater_names[plain.loc[g.idxmin().reindex(index).to_numpy(), "rater"].to_numpy()]
    out["max_rater"] = rater_names[plain.loc[g.idxmax().reindex(index).to_numpy(), "rater"].to_numpy()]
    out["dimension"] = dim_names[out["dimension"].to_numpy()]
    design = _design(tables, out["generation_id"].to_numpy(dtype=np.int64))
    for c in _DESIGN:
        out[c] = design[c]
    out["n_raters"] = out["n_raters"].astype(np.int64)
    return out[DISAGREEMENT_COLUMNS]


def _sorted_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a column whose order is the values' string order (``-1`` missing), and the values."""
    cat = str_categorical(column)
    names = np.asarray(cat.cat.categories, dtype=object)
    order = np.argsort(names.astype(str), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    codes = cat.cat.codes.to_numpy().astype(np.int64)
    return np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(rank) else -1, -1), names[order]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if "score" in c or "spread" in c else object)
                         for c in DISAGREEMENT_COLUMNS})  # fmt: skip


def _dimension(tables: RunTables, requested: str | None) -> str | None:
    """The dimension behind ``score``: ``requested``, the first with "tox", else the first rated; ``None`` unrated."""
    if tables.ratings.empty:
        if requested is not None:
            raise ValueError(f"dimension {requested!r} was not rated: this run has no ratings yet")
        return None
    dims = sorted(str(d) for d in pd.unique(str_categorical(tables.ratings["dimension"]).dropna()))
    picked = pick_toxicity_dimension(dims, requested)
    if requested is not None and picked is None:
        raise ValueError(f"dimension {requested!r} was not rated (rated: {', '.join(dims)})")
    return picked if picked is not None else (dims[0] if dims else None)


def _scores(tables: RunTables, dim: str | None) -> pd.Series:
    """Mean score on ``dim`` per generation of any round (indexed by ``generation_id``)."""
    r = tables.ratings
    if dim is None or r.empty:
        return pd.Series(dtype=float)
    r = r[(str_categorical(r["dimension"]) == dim).to_numpy() & r["score"].notna().to_numpy()]
    return r.groupby(r["generation_id"].to_numpy(dtype=np.int64))["score"].mean()


def _choose(
    ids: np.ndarray, score: pd.Series, disputed: np.ndarray, limit: int, extremes: int, seed: int
) -> dict[int, list[str]]:
    """Shown generation id → why it is shown: all of them up to ``limit``, else extremes, disputed and a sample."""
    if len(ids) <= limit:
        return {int(i): ["all"] for i in ids}
    why: dict[int, list[str]] = {}
    scored = score.dropna()
    # Highest first; ties by generation id, so the choice does not depend on the order rows were read in.
    order = np.lexsort((scored.index.to_numpy(), -scored.to_numpy()))
    for i in scored.index.to_numpy()[order][:extremes]:
        if len(why) < limit:
            why.setdefault(int(i), []).append("extreme")
    for i in disputed:  # ranked by spread over every dimension
        if int(i) in why:
            why[int(i)].append("disputed")
        elif len(why) < limit:
            why[int(i)] = ["disputed"]
    rest = ids[~np.isin(ids, np.fromiter(why, dtype=np.int64, count=len(why)))]
    n_draw = min(limit - len(why), len(rest))
    if n_draw > 0:
        for i in np.sort(np.random.default_rng(seed).choice(rest, size=n_draw, replace=False)):
            why[int(i)] = ["sample"]
    return why


def _sample_note(
    n_total: int, why: dict[int, list[str]], dim: str | None, disputed_on: list[str], extremes: int, seed: int
) -> str:
    """One sentence on how the shown transcripts were chosen."""
    if n_total == 0:
        return "no generations in this run yet"
    if not why:
        return f"none of {n_total:,} generations (a limit of 0)"
    if len(why) == n_total:
        return f"all {n_total:,} generation{'s' if n_total != 1 else ''}"
    n_ext = sum("extreme" in w for w in why.values())
    n_disp = sum("disputed" in w for w in why.values())
    n_both = sum("extreme" in w and "disputed" in w for w in why.values())
    n_rand = sum(w == ["sample"] for w in why.values())
    highest = "most toxic" if dim is not None and "tox" in dim.lower() else f"highest-scored on {dim}"
    parts = []
    if n_ext:
        parts.append(f"the {n_ext:,} {highest}")
    if n_disp:
        asides = [f"up to {extremes:,} each"] if len(disputed_on) > 1 else []
        asides += [f"{n_both:,} of them also among the {highest}"] if n_both else []
        aside = f" ({'; '.join(asides)})" if asides else ""
        parts.append(f"the {n_disp:,} most disputed on {', '.join(disputed_on)}{aside}")
    if n_rand:
        parts.append(f"{n_rand:,} drawn at random (seed {seed})")
    chosen = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
    return f"{len(why):,} of {n_total:,} generations: {chosen}"


def _design(tables: RunTables, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The cell columns of generations (by id) as object arrays; ``None`` where the cell is unknown."""
    gens = tables.generations
    pos = pd.Index(gens["generation_id"].to_numpy(dtype=np.int64)).get_indexer(ids)
    cell_ids = np.where(pos >= 0, gens["cell_id"].to_numpy(dtype=float)[np.maximum(pos, 0)], np.nan)
    cells = tables.cells
    cpos = pd.Index(cells["cell_id"].to_numpy(dtype=float)).get_indexer(cell_ids)
    cpos[np.isnan(cell_ids)] = -1
    out = {}
    for c in (*_CELL_SHOWN, "is_baseline"):
        values = cells[c].astype(object).to_numpy() if c in cells.columns else np.full(len(cells), None, object)
        picked = values[np.maximum(cpos, 0)] if len(values) else np.full(len(ids), None, object)
        out[c] = np.where(cpos >= 0, picked, None)
    return out


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


def _query(conn: Any, sql: str, ids: Iterable[int]) -> list[tuple]:
    """``sql`` (with one ``{marks}`` placeholder for an ``IN`` list) run over ``ids`` in chunks."""
    rows: list[tuple] = []
    for chunk in _chunks(ids):
        rows.extend(conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
    return rows


def _chat(messages: str | None) -> tuple[str | None, str | None]:
    """The system message and the last user message of a stored ``messages`` JSON list."""
    try:
        parsed = json.loads(messages) if messages else []
    except (TypeError, ValueError):
        return None, None
    if not isinstance(parsed, list):
        return None, None
    turns = [m for m in parsed if isinstance(m, dict)]
    system = next((m.get("content") for m in turns if m.get("role") == "system"), None)
    user = next((m.get("content") for m in reversed(turns) if m.get("role") == "user"), None)
    return system, user


def _descendants(tables: RunTables, roots: np.ndarray) -> dict[int, list[int]]:
    """Rewrites of each root generation, following ``parent_id`` (in round order)."""
    gens = tables.generations
    later = gens[(gens["round"] > 0).to_numpy() & gens["parent_id"].notna().to_numpy()]
    parent = later["parent_id"].to_numpy(dtype=np.int64)
    child = later["generation_id"].to_numpy(dtype=np.int64)
    round_ = later["round"].to_numpy(dtype=np.int64)
    out: dict[int, list[tuple[int, int]]] = {int(r): [] for r in roots}
    root_of = {r: r for r in out}
    frontier = roots
    while len(frontier) and len(parent):
        hit = np.isin(parent, frontier)
        for p, c, k in zip(parent[hit].tolist(), child[hit].tolist(), round_[hit].tolist(), strict=True):
            root_of[c] = root_of[p]
            out[root_of[p]].append((k, c))
        frontier = child[hit]
        # each rewrite is placed once, so a malformed chain cannot loop
        parent, child, round_ = parent[~hit], child[~hit], round_[~hit]
    return {r: [c for _, c in sorted(cs)] for r, cs in out.items()}


def _transcripts(
    path: Path, tables: RunTables, shown: np.ndarray, why: dict[int, list[str]], dim: str | None, scores: pd.Series
) -> list[dict[str, Any]]:
    """One dict per shown round-0 generation, with texts read for these ids (and their rewrites) only."""
    if not len(shown):
        return []
    chains = _descendants(tables, shown)
    every = np.concatenate([shown, np.array([c for cs in chains.values() for c in cs], dtype=np.int64)])
    ids = tables.generations["generation_id"].to_numpy(dtype=np.int64)
    gens = tables.generations.iloc[pd.Index(ids).get_indexer(every)]  # the shown ids and their rewrites only
    gens = gens[["round", "outcome", "cell_id"]].set_index(every)
    raters = {str(v) for v in pd.unique(str_categorical(tables.ratings["rater"]).dropna())}
    conn = connect_readonly(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        texts = {
            row[0]: row[1:]
            for row in _query(
                conn,
                "SELECT g.rowid, g.text, g.messages, c.messages FROM generations g "
                "LEFT JOIN cells c ON c.cell_key = g.cell_key WHERE g.rowid IN ({marks})",
                every,
            )
        }
        ratings: dict[int, list[dict[str, Any]]] = {}
        for row in _query(
            conn,
            "SELECT g.rowid, r.rater, r.rater_name, r.rater_model, r.framing_attribute, r.framing_value, "
            "r.dimension, r.score, r.outcome, r.raw, r.rationale FROM ratings r JOIN generations g "
            "ON g.generation_key = r.generation_key WHERE g.rowid IN ({marks}) ORDER BY r.rater_name, r.rater, "
            "r.dimension",
            every,
        ):
            gid, rater, name, model, attribute, value, dimension, value_score, outcome, raw, rationale = row
            if rater not in raters:
                continue  # a judge the caller's tables leave out (for example an untrusted one)
            ratings.setdefault(gid, []).append(
                {
                    "rater": name,
                    "model": model,
                    "framing": f"{attribute}={value}" if attribute is not None else None,
                    "dimension": dimension,
                    "score": value_score,
                    "outcome": outcome,
                    "raw": raw,
                    "rationale": rationale,
                }
            )
        critiques: dict[tuple[int, int], tuple] = {}
        if "critiques" in names:
            rows = _query(
                conn,
                "SELECT g.rowid, k.round, k.critic, k.text, k.outcome FROM critiques k JOIN generations g "
                "ON g.generation_key = k.generation_key WHERE g.rowid IN ({marks}) ORDER BY k.critic",
                every,
            )
            for gid, round_, critic, text, outcome in rows:
                key = (gid, round_)
                if key not in critiques or (critiques[key][2] != "ok" and outcome == "ok"):
                    critiques[key] = (critic, text, outcome)
    finally:
        conn.close()

    def scored(gid: int) -> float | None:
        value = scores.get(gid)
        return None if value is None or np.isnan(value) else float(value)

    design = _design(tables, shown)
    spreads = _spreads(tables, shown, dim)
    mitigation = {
        int(c): (int(n), str(reason))
        for c, n, reason in zip(
            tables.mitigation["cell_id"], tables.mitigation["rounds"], tables.mitigation["stop_reason"], strict=True
        )
    }
    out = []
    for k, gid in enumerate(shown.tolist()):
        text, messages, cell_messages = texts.get(gid, (None, None, None))
        system, user = _chat(messages)
        if system is None and user is None:
            system, user = _chat(cell_messages)
        row = gens.loc[gid]
        rounds, previous = [], gid
        # each rewrite follows the critique of its parent for its round; a last critique that led to no rewrite
        # (a failed critic, say) is a round without text: it says why the loop stopped
        steps = [(c, int(gens.loc[c, "round"])) for c in chains[gid]]
        for c, round_ in [*steps, (None, (steps[-1][1] if steps else 0) + 1)]:
            if c is None and (previous, round_) not in critiques:
                break
            critic, critique, critique_outcome = critiques.get((previous, round_), (None, None, None))
            rounds.append(
                {"round": round_, "critique": critique, "critic": critic, "critique_outcome": critique_outcome,
                 "text": texts.get(c, (None,))[0], "outcome": None if c is None else str(gens.loc[c, "outcome"]),
                 "score": None if c is None else scored(c), "ratings": ratings.get(c, [])}
            )  # fmt: skip
            previous = c
        stop = mitigation.get(int(row["cell_id"])) if pd.notna(row["cell_id"]) else None
        is_baseline = design["is_baseline"][k]
        out.append(
            {
                "id": gid,
                **{c: None if design[c][k] is None else str(design[c][k]) for c in _CELL_SHOWN},
                "outcome": str(row["outcome"]),
                "is_baseline": bool(is_baseline) if is_baseline is not None else False,
                "score": scored(gid),
                "spread": spreads[0][k],
                "framed_spread": spreads[1][k],
                "system": system,
                "user": user,
                "reply": text,
                "ratings": ratings.get(gid, []),
                "rounds": rounds,
                "stop_reason": None if stop is None else stop[1],
                "mitigation_rounds": None if stop is None else stop[0],
                "why": why[gid],
            }
        )
    return out


def _spreads(tables: RunTables, ids: np.ndarray, dim: str | None) -> tuple[list, list]:
    """``spread`` and ``framed_spread`` on ``dim`` of each id (``None`` with fewer than two scores)."""
    none = [None] * len(ids)
    if dim is None or tables.ratings.empty:
        return none, list(none)
    r = tables.ratings
    keep = (str_categorical(r["dimension"]) == dim).to_numpy() & r["score"].notna().to_numpy()
    keep = keep & r["generation_id"].isin(ids).to_numpy()
    r = r[keep]
    framed = r["framing_attribute"].notna().to_numpy()
    out = []
    for part in (r[~framed], r[framed]):
        g = part.groupby(part["generation_id"].to_numpy(dtype=np.int64))["score"].agg(["count", "min", "max"])
        spread = (g["max"] - g["min"]).where(g["count"] >= 2).reindex(ids)
        out.append([None if pd.isna(v) else float(v) for v in spread])
    return out[0], out[1]
