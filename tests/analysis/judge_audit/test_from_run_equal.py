"""The judge card from the run, computed on integer codes (:mod:`analysis.judge_audit.from_run`), equals the
DataFrame implementation it replaced (kept here as the reference, verbatim but for its name): every figure of
every row, on stores with framed judges, a generator-judge, parse errors, a rater with two identities and
duplicate ratings, rewrites, a failed generation and no config."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.frames import str_categorical
from analysis.io import RunTables, load_run, ratings_long
from analysis.judge_audit import run_card_rows
from analysis.judge_audit.framing import framing_sensitivity
from analysis.judge_audit.self_preference import self_preference
from analysis.judge_audit.validity import paired_alpha
from tests.analysis.judge_audit.test_from_run import CONFIG, N
from tests.analysis.stores import make_store, tiny_store
from tests.helpers.synthetic import synthetic_run

_TEXT_COLUMNS = ("rater", "rater_name", "rater_model", "rubric", "framing_attribute", "framing_value", "dimension",
                 "outcome")  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b or (np.isscalar(a) and np.isscalar(b) and a == b)


def _assert_equal(new: list[dict[str, Any]], ref: list[dict[str, Any]]) -> None:
    assert [(r["rater"], r["dimension"]) for r in new] == [(r["rater"], r["dimension"]) for r in ref]
    for a, b in zip(new, ref, strict=True):
        assert a.keys() == b.keys(), (a["rater"], set(a) ^ set(b))
        for key in a:
            assert _same(a[key], b[key]), (a["rater"], a["dimension"], key, a[key], b[key])


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """The panel of ``test_from_run`` with more to get wrong: ``good-a`` changes model half-way (two identities
    of one name) and rates some texts twice, ``good-b`` fails often, one generation failed."""
    rng = np.random.default_rng(1)
    cells = [{"key": f"c{i}", "model": "m1" if i < N // 2 else "m2"} for i in range(N)]
    cells.append({"key": "failed", "model": "m1", "outcome": "timeout"})
    ratings = []
    for i, t in enumerate(rng.uniform(0.1, 0.9, N)):
        cell = f"c{i}"
        model = "openai:a" if i < N // 3 else "openai:a2"
        ratings.append({"cell": cell, "rater": "good-a", "kind": "llm", "model": model, "dimension": "toxicity",
                        "score": float(np.clip(t - 0.1 * (i < N // 2) + rng.normal(0, 0.05), 0, 1))})  # fmt: skip
        if i % 7 == 0:
            ratings.append({"cell": cell, "rater": "good-a", "kind": "llm", "model": "openai:a3",
                            "dimension": "toxicity", "score": float(rng.uniform(0, 1))})  # fmt: skip
        ratings.append({"cell": cell, "rater": "good-b", "kind": "llm", "model": "openai:b", "dimension": "toxicity",
                        "score": None if i % 5 == 0 else float(np.clip(t + rng.normal(0, 0.05), 0, 1))})  # fmt: skip
        ratings.append({"cell": cell, "rater": "noise", "kind": "profanity", "dimension": "toxicity",
                        "score": float(rng.uniform(0, 1))})  # fmt: skip
        if i < N // 2:
            ratings.append({"cell": cell, "rater": "late", "kind": "llm", "model": "openai:late",
                            "dimension": "refusal", "score": float(t > 0.5)})  # fmt: skip
        for value, effect in (("female", 0.1), ("male", 0.0)):
            if i % 9 != 0 or value == "male":
                ratings.append({"cell": cell, "rater": f"gpt-{value}", "kind": "llm", "model": "openai:gpt",
                                "dimension": "unsafe", "framing": ("gender", value),
                                "score": float(np.clip(0.5 * t + effect + rng.normal(0, 0.05), 0, 1))})  # fmt: skip
    return load_run(make_store(tmp_path_factory.mktemp("mixed") / "run", cells, ratings, [CONFIG]))


def test_equal_on_a_mixed_panel(mixed_run):
    new = run_card_rows(mixed_run, n_boot=50, n_permutations=49, seed=3)
    _assert_equal(new, reference_run_card_rows(mixed_run, n_boot=50, n_permutations=49, seed=3))
    assert any("self_preference" in r for r in new) and any("framing_shift" in r for r in new)
    assert next(r for r in new if r["rater"] == "good-a")["model"] == "openai:a, openai:a2, openai:a3"


def test_equal_on_the_tiny_store_without_config(tmp_path):
    tables = load_run(tiny_store(tmp_path / "tiny"))
    _assert_equal(run_card_rows(tables, n_boot=20, n_permutations=19), reference_run_card_rows(tables, n_boot=20,
                  n_permutations=19))  # fmt: skip


def test_equal_on_a_synthetic_run_with_rewrites(tmp_path):
    tables = load_run(synthetic_run(tmp_path / "synthetic", n_generations=3000, n_raters=3, seed=4))
    assert (tables.generations["round"] > 0).any()
    _assert_equal(run_card_rows(tables, n_boot=30), reference_run_card_rows(tables, n_boot=30))


def test_no_round0_ratings_no_rows(tmp_path):
    tables = load_run(tiny_store(tmp_path / "tiny"))
    later = tables.ratings[tables.ratings["generation_id"].isin(tables.generations.loc[tables.generations["round"] > 0,
                           "generation_id"])]  # fmt: skip
    only_rewrites = RunTables(tables.path, tables.cells, tables.generations, later.reset_index(drop=True),
                              tables.critiques, tables.mitigation, tables.meta, tables.config)  # fmt: skip
    assert run_card_rows(only_rewrites) == reference_run_card_rows(only_rewrites) == []


# ------------------------------------------------------------------ the reference: the replaced implementation
def reference_run_card_rows(
    tables: RunTables, *, n_boot: int = 200, n_permutations: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Judge card rows of what a loaded run shows by itself, one per (rater, dimension) of round 0.

    Args:
        tables: A loaded run (:func:`analysis.io.load_run`).
        n_boot: Bootstrap resamples of the self-preference interval.
        n_permutations: Within-generation shuffles of the framing permutation test.
        seed: Seed of both.

    Returns:
        Rows for :func:`analysis.judge_audit.card.judge_card`: ``rater, kind, model, dimension, source, n,
        coverage, outcomes, alpha_vs_panel, alpha_vs_panel_n`` and, where they apply, ``self_preference*`` and
        ``framing_*``, with ``notes``; in the panel's order (raters the config does not list last, by name). No
        round-0 rating: no rows.
    """
    long = ratings_long(tables, round_=0, scored_only=False)
    if long.empty:
        return []
    # only what the card reads: every row is taken several times below (4.5M rows in a seed-sized run)
    long = long[[c for c in ("generation_id", "score", *_TEXT_COLUMNS) if c in long.columns]]
    long = long.assign(**{c: _strings(long[c]) for c in _TEXT_COLUMNS if c in long.columns})
    gens = tables.generations[tables.generations["round"] == 0]
    generator_of = pd.Series(_strings(gens["model"]).to_numpy(), index=gens["generation_id"].to_numpy())
    long["generator"] = generator_of.reindex(long["generation_id"].to_numpy()).to_numpy()
    generator_models = set(generator_of.dropna())
    # generation ids are store rowids: compact integers, so sets of them are boolean masks
    size = int(max(gens["generation_id"].max(), long["generation_id"].max())) + 1 if len(gens) else 1
    ok_generations = np.zeros(size, dtype=bool)
    ok_generations[gens.loc[(_strings(gens["outcome"]) == "ok").to_numpy(), "generation_id"].to_numpy()] = True
    long["scored"] = long["score"].notna() & (long["outcome"] == "scored")
    unframed = long[long["framing_attribute"].isna() & long["scored"]]
    unframed_by_dimension = dict(tuple(unframed.groupby("dimension", sort=False)))

    config = tables.config
    specs = {str(r.get("name")): r for r in ((config or {}).get("panel") or {}).get("raters") or []}
    panel_order = {name: i for i, name in enumerate(specs)}
    positions = long.groupby(["rater_name", "dimension"], sort=False).indices
    keys = sorted(positions, key=lambda k: (panel_order.get(k[0], len(specs)), k[0], k[1]))
    framing = _framing_figures(long, n_permutations, seed)

    rows = []
    for name, dimension in keys:
        part = long.iloc[positions[(name, dimension)]]
        spec = specs.get(name, {})
        notes: list[str] = []
        if config is None:
            notes.append("the run stores no config: kind from the rater's identity, no self-preference")
        outcomes = {str(k): int(v) for k, v in part["outcome"].value_counts(sort=False).sort_index().items() if v}
        # generations it has not rated yet (a `tribunal rate` to come, or a rater that rates a subset) are not its
        # failures: they are shown beside the card, never counted against its coverage
        rated = np.zeros(size, dtype=bool)
        rated[part["generation_id"].to_numpy()] = True
        not_rated = int((ok_generations & ~rated).sum())
        n = len(part)
        row: dict[str, Any] = {
            "rater": name,
            "kind": spec.get("kind") or _kind_of(part["rater"].iloc[0]),
            "model": _model_of(part, spec),
            "dimension": dimension,
            "source": "run",
            "n": n,
            "coverage": float(part["scored"].sum() / n) if n else np.nan,
            "outcomes": outcomes,
            "n_not_rated": not_rated,
        }
        others = unframed_by_dimension.get(dimension, unframed.iloc[:0])
        others = others[others["rater_name"] != name]
        row.update(_alpha_vs_panel(part[part["scored"]], others, notes))
        own_model = spec.get("model")
        if isinstance(own_model, str) and own_model in generator_models:
            row.update(_self_preference(part[part["scored"]], others, name, own_model, n_boot, seed, notes))
        if part["framing_attribute"].notna().any():
            figures = framing.get((name, dimension))
            if figures is not None:
                row.update({k: v for k, v in figures.items() if k != "note"})
                if figures["note"]:
                    notes.append(f"framing: {figures['note']}")
        row["notes"] = notes
        rows.append(row)
    return rows


def _strings(column: pd.Series) -> pd.Series:
    """A column as Python strings (``None`` where missing), for grouping and comparing categoricals."""
    cat = str_categorical(column)  # codes to names: one conversion per category, not per row
    names = np.asarray(cat.cat.categories.astype(str), dtype=object)
    codes = cat.cat.codes.to_numpy()
    if not len(names):  # every value missing
        return pd.Series([None] * len(column), index=column.index, dtype=object)
    values = np.where(codes >= 0, names[np.maximum(codes, 0)], None)
    return pd.Series(values, index=column.index, dtype=object)


def _kind_of(identity: Any) -> str | None:
    """The kind in a rater's stored identity ``name|kind|…``."""
    parts = str(identity).split("|")
    return parts[1] if len(parts) > 1 else None


def _model_of(part: pd.DataFrame, spec: dict[str, Any]) -> str | None:
    models = sorted(set(part["rater_model"].dropna()))
    if models:
        return ", ".join(models)
    return spec.get("model") if isinstance(spec.get("model"), str) else None


def _means(ids: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``values`` per id over ``0..size-1`` (NaN where an id has none)."""
    sums = np.bincount(ids, weights=values, minlength=size)
    counts = np.bincount(ids, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _alpha_vs_panel(mine: pd.DataFrame, others: pd.DataFrame, notes: list[str]) -> dict[str, Any]:
    """Interval alpha of the rater against the mean of the other unframed raters, over generations both scored."""
    out: dict[str, Any] = {"alpha_vs_panel": np.nan, "alpha_vs_panel_n": 0}
    if others.empty:
        notes.append("alpha_vs_panel: no other unframed rater scores this dimension")
        return out
    # per-generation means by bincount over the compact generation ids (a groupby costs seconds at 1.4M rows)
    size = int(max(mine["generation_id"].max(), others["generation_id"].max())) + 1
    own = _means(mine["generation_id"].to_numpy(), mine["score"].to_numpy(dtype=float), size)
    per_rater = [
        _means(part["generation_id"].to_numpy(), part["score"].to_numpy(dtype=float), size)
        for _, part in others.groupby("rater_name", sort=False)
    ]
    stacked = np.vstack(per_rater)
    present = ~np.isnan(stacked)
    with np.errstate(invalid="ignore", divide="ignore"):
        panel = np.where(present, stacked, 0.0).sum(axis=0) / present.sum(axis=0)
    shared = np.flatnonzero(~np.isnan(own) & ~np.isnan(panel))
    out["alpha_vs_panel_n"] = len(shared)
    if len(shared) < 2:
        notes.append(f"alpha_vs_panel: {len(shared)} generation(s) scored by this rater and the panel")
        return out
    # two coders, every unit paired: Krippendorff's interval alpha in closed form (equal to krippendorff_alpha)
    alpha = float(paired_alpha(own[shared][None, :], panel[shared][None, :])[0])
    if np.isnan(alpha):  # one distinct value: no variance to compare with
        notes.append("alpha_vs_panel: the rater and the panel gave one value throughout: no alpha")
    out["alpha_vs_panel"] = alpha
    return out


def _self_preference(
    mine: pd.DataFrame, others: pd.DataFrame, name: str, own_model: str, n_boot: int, seed: int, notes: list[str]
) -> dict[str, Any]:
    data = pd.concat([mine.assign(rater_name=name), others], ignore_index=True)
    res = self_preference(
        data,
        name,
        own_model,
        item="generation_id",
        rater="rater_name",
        score="score",
        generator="generator",
        n_boot=n_boot,
        seed=seed,
    )
    notes.extend(f"self_preference: {note}" for note in res["notes"])
    return {
        "self_preference_n": res["n_own"] + res["n_other"],
        "self_preference": res["self_preference"],
        "self_preference_ci": res["self_preference_ci"],
        "self_preference_p": res["p_value"],
    }


def _framing_figures(long: pd.DataFrame, n_permutations: int, seed: int) -> dict[tuple[str, str], dict[str, Any]]:
    """``framing_*`` of every framed rater, computed per framed judge ``(rater_model, rubric, dimension)``."""
    framed = long[long["framing_attribute"].notna() & long["scored"]]
    if framed.empty:
        return {}
    judge = framed["rater_model"].where(framed["rater_model"].notna(), framed["rater_name"])
    rubric = framed["rubric"] if "rubric" in framed.columns else pd.Series(None, index=framed.index)
    framed = framed.assign(
        judge=[f"{j}\x00{r}\x00{d}" for j, r, d in zip(judge, rubric.fillna(""), framed["dimension"], strict=True)]
    )
    figures = framing_sensitivity(
        framed,
        item="generation_id",
        rater="judge",
        attribute="framing_attribute",
        value="framing_value",
        score="score",
        n_permutations=n_permutations,
        seed=seed,
    ).set_index("rater")
    out = {}
    for (label, name, dimension), _ in framed.groupby(["judge", "rater_name", "dimension"], sort=False):
        r = figures.loc[label]
        out[(name, dimension)] = {
            "framing_n": int(r["n_items"]),
            "framing_shift": float(r["shift"]),
            "framing_p": float(r["shift_p"]),
            "note": str(r["note"] or ""),
        }
    return out
