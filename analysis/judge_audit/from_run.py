r"""The judge card's figures that a run shows by itself, without an audit set.

A run's ratings of its own round-0 generations cannot say whether a judge is right (there are no human labels)
or stable (no text is asked twice), but they do say how much of its work it did, how it agrees with the rest of
the panel, whether it favours its own model's texts and whether its framings move it. Per (rater, dimension),
:func:`run_card_rows` gives:

* ``n``, ``coverage`` and ``outcomes``: ``n`` is the rater's ratings of round-0 generations, ``coverage`` the
  scored share of them, ``outcomes`` the count of each rating outcome (``scored``, ``parse_error``, ``refusal``,
  …); ``n_not_rated`` counts the round-0 generations with a text it has not rated (yet), which are not its
  failures and do not lower its coverage.
* ``alpha_vs_panel`` over ``alpha_vs_panel_n`` generations: Krippendorff's interval alpha
  (:func:`analysis.agreement.krippendorff_alpha`) between the rater's score and the mean score of the *other
  unframed* raters of the dimension (each rater's repeats averaged first), over the generations both scored.
  Agreement is not validity: a rater can agree with a panel that shares its blind spot, and a panel mean of
  two judges includes their noise. ``NaN`` with a note when no other unframed rater scores the dimension.
* ``self_preference`` (with ``self_preference_ci``, ``self_preference_p`` and ``self_preference_n`` texts):
  :func:`analysis.judge_audit.self_preference.self_preference` against the other unframed raters, for a rater
  whose config ``model`` is the name of a model that generated round-0 texts (``generations.model``). A rater
  whose model is written inline only judges; it has no own texts and no figure.
* ``framing_shift``, ``framing_p`` and ``framing_n``: for raters with a demographic framing,
  :func:`analysis.judge_audit.framing.framing_sensitivity`. The framed raters of one judge are the rows with a
  framing that share ``(rater_model, rubric, dimension)`` (``rater_name`` stands in for a missing
  ``rater_model``): ``gpt-gender-female`` and ``gpt-gender-male`` of one model and rubric are one framed judge.
  Every framed rater of the group gets the group's figures, with the systematic ``shift`` as ``framing_shift``
  and its permutation p ``shift_p`` as ``framing_p`` (the null of DS is in ``notes`` when it has none).

Rows carry ``source = "run"`` and ``notes`` (why a figure is missing); :func:`analysis.judge_audit.card.judge_card`
turns them into the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.frames import str_categorical
from analysis.io import RunTables
from analysis.judge_audit.framing import framing_sensitivity
from analysis.judge_audit.self_preference import self_preference
from analysis.judge_audit.validity import paired_alpha

__all__ = ["run_card_rows"]

_TEXT_COLUMNS = ("rater", "rater_name", "rater_model", "rubric", "framing_attribute", "framing_value", "dimension",
                 "outcome")  # fmt: skip


def run_card_rows(
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
    r = _Round0.of(tables)
    if r is None:
        return []
    generator_models = set(r.generators)
    config = tables.config
    specs = {str(s.get("name")): s for s in ((config or {}).get("panel") or {}).get("raters") or []}
    panel_order = {name: i for i, name in enumerate(specs)}
    names, dims = r.names["rater_name"], r.names["dimension"]
    name_code, dim_code = r.codes["rater_name"], r.codes["dimension"]
    valid = (name_code >= 0) & (dim_code >= 0)
    pair = np.where(valid, name_code * len(dims) + dim_code, -1)
    used = np.unique(pair[valid])
    keys = sorted(
        ((names[u // len(dims)], dims[u % len(dims)], int(u)) for u in used),
        key=lambda k: (panel_order.get(k[0], len(specs)), k[0], k[1]),
    )
    framed_rows = r.framed & r.scored
    framing = _framing_figures(r.frame(np.flatnonzero(framed_rows)), n_permutations, seed)
    unframed = ~r.framed & r.scored
    rows = []
    for name, dimension, code in keys:
        part = np.flatnonzero(pair == code)  # this rater's rows, in the store's order
        spec = specs.get(name, {})
        notes: list[str] = []
        if config is None:
            notes.append("the run stores no config: kind from the rater's identity, no self-preference")
        out_names = r.names["outcome"]
        counts = np.bincount(r.codes["outcome"][part][r.codes["outcome"][part] >= 0], minlength=len(out_names))
        outcomes = {
            str(out_names[k]): int(counts[k]) for k in sorted(np.flatnonzero(counts), key=lambda k: out_names[k])
        }
        # generations it has not rated yet (a `tribunal rate` to come, or a rater that rates a subset) are not its
        # failures: they are shown beside the card, never counted against its coverage
        rated = np.zeros(len(r.ok), dtype=bool)
        rated[r.pos[part]] = True
        n = len(part)
        mine = part[r.scored[part]]
        row: dict[str, Any] = {
            "rater": name,
            "kind": spec.get("kind") or _kind_of(r.value("rater", part[0])),
            "model": _model_of(r.values("rater_model", part), spec),
            "dimension": dimension,
            "source": "run",
            "n": n,
            "coverage": float(len(mine) / n) if n else np.nan,
            "outcomes": outcomes,
            "n_not_rated": int((r.ok & ~rated).sum()),
        }
        # the other unframed raters of the dimension, in the store's order
        others = np.flatnonzero(unframed & (dim_code == dim_code[part[0]]) & (name_code != name_code[part[0]]))
        row.update(_alpha_vs_panel(r, mine, others, notes))
        own_model = spec.get("model")
        if isinstance(own_model, str) and own_model in generator_models:
            row.update(_self_preference(r, mine, others, name, own_model, n_boot, seed, notes))
        if r.framed[part].any():
            figures = framing.get((name, dimension))
            if figures is not None:
                row.update({k: v for k, v in figures.items() if k != "note"})
                if figures["note"]:
                    notes.append(f"framing: {figures['note']}")
        row["notes"] = notes
        rows.append(row)
    return rows


@dataclass
class _Round0:
    """The ratings of round-0 generations as integer codes per text column (no per-row Python strings).

    ``codes[c]`` indexes ``names[c]`` (``-1``: missing); ``pos`` is each rating's row among the round-0
    generations, ``ok`` which of those have a text (outcome ``ok``), ``generator`` the model of each rating's
    generation (a code into ``generator_names``; ``generators``: the models that wrote round-0 texts). Rows keep
    the store's order, so sums and means taken over them add in the same order as over the rows of a DataFrame.
    """

    generation_id: np.ndarray
    score: np.ndarray
    scored: np.ndarray
    framed: np.ndarray
    codes: dict[str, np.ndarray]
    names: dict[str, np.ndarray]
    pos: np.ndarray
    ok: np.ndarray
    generator: np.ndarray
    generator_names: np.ndarray
    generators: np.ndarray
    size: int

    @classmethod
    def of(cls, tables: RunTables) -> _Round0 | None:
        ratings, gens = tables.ratings, tables.generations
        gens = gens[(gens["round"] == 0).to_numpy()]
        if ratings.empty or gens.empty:
            return None
        pos = pd.Index(gens["generation_id"]).get_indexer(ratings["generation_id"])
        keep = np.flatnonzero(pos >= 0)
        if not len(keep):
            return None
        codes, names = {}, {}
        for c in _TEXT_COLUMNS:
            if c in ratings.columns:
                codes[c], names[c] = _codes(ratings[c])
                codes[c] = codes[c][keep]
            else:
                codes[c], names[c] = np.full(len(keep), -1), np.array([], dtype=object)
        score = ratings["score"].to_numpy(dtype=float)[keep]
        scored_code = np.flatnonzero(names["outcome"] == "scored")
        scored = ~np.isnan(score) & np.isin(codes["outcome"], scored_code)
        model_code, generators = _codes(gens["model"])
        outcome_code, outcomes = _codes(gens["outcome"])
        ok = np.isin(outcome_code, np.flatnonzero(outcomes == "ok"))
        pos = pos[keep]
        gid = ratings["generation_id"].to_numpy()[keep]
        used = np.unique(model_code[model_code >= 0])
        return cls(
            generation_id=gid,
            score=score,
            scored=scored,
            framed=codes["framing_attribute"] >= 0,
            codes=codes,
            names=names,
            pos=pos,
            ok=ok,
            generator=model_code[pos],
            generator_names=generators,
            generators=generators[used],
            size=int(gens["generation_id"].max()) + 1,
        )

    def value(self, column: str, row: int) -> str | None:
        code = self.codes[column][row]
        return self.names[column][code] if code >= 0 else None

    def values(self, column: str, rows: np.ndarray) -> np.ndarray:
        """The column's strings at ``rows`` (``None`` where missing), as an object array."""
        return _decode(self.codes[column][rows], self.names[column])

    def frame(self, rows: np.ndarray, columns: tuple[str, ...] = _TEXT_COLUMNS) -> pd.DataFrame:
        """``generation_id, score, generator`` and the text columns of ``rows`` as a DataFrame of strings."""
        data: dict[str, Any] = {"generation_id": self.generation_id[rows], "score": self.score[rows]}
        data.update({c: pd.Series(self.values(c, rows), dtype=object) for c in columns})
        data["generator"] = pd.Series(_decode(self.generator[rows], self.generator_names), dtype=object)
        return pd.DataFrame(data)


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of a column and its categories as Python strings (one conversion per category)."""
    cat = str_categorical(column)
    return cat.cat.codes.to_numpy().astype(np.int64), np.asarray(cat.cat.categories.astype(str), dtype=object)


def _decode(codes: np.ndarray, names: np.ndarray) -> np.ndarray:
    if not len(names):
        return np.full(len(codes), None, dtype=object)
    return np.where(codes >= 0, names[np.maximum(codes, 0)], None)


def _kind_of(identity: Any) -> str | None:
    """The kind in a rater's stored identity ``name|kind|…``."""
    parts = str(identity).split("|")
    return parts[1] if len(parts) > 1 else None


def _model_of(rater_models: np.ndarray, spec: dict[str, Any]) -> str | None:
    models = sorted({m for m in rater_models if m is not None})
    if models:
        return ", ".join(models)
    return spec.get("model") if isinstance(spec.get("model"), str) else None


def _means(ids: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``values`` per id over ``0..size-1`` (NaN where an id has none)."""
    sums = np.bincount(ids, weights=values, minlength=size)
    counts = np.bincount(ids, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _alpha_vs_panel(r: _Round0, mine: np.ndarray, others: np.ndarray, notes: list[str]) -> dict[str, Any]:
    """Interval alpha of the rater (its scored rows ``mine``) against the mean of the other unframed raters
    (their scored rows ``others``), over the generations both scored."""
    out: dict[str, Any] = {"alpha_vs_panel": np.nan, "alpha_vs_panel_n": 0}
    if not len(others):
        notes.append("alpha_vs_panel: no other unframed rater scores this dimension")
        return out
    # per-generation means by bincount over the compact generation ids (a groupby costs seconds at 1.4M rows)
    gid, score, size = r.generation_id, r.score, r.size
    own = _means(gid[mine], score[mine], size)
    name_code = r.codes["rater_name"][others]
    _, first = np.unique(name_code, return_index=True)
    per_rater = []
    for code in name_code[np.sort(first)]:  # the raters in the order they first appear
        if code >= 0:
            rows = others[name_code == code]
            per_rater.append(_means(gid[rows], score[rows], size))
    if not per_rater:
        notes.append("alpha_vs_panel: no other unframed rater scores this dimension")
        return out
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
    r: _Round0,
    mine: np.ndarray,
    others: np.ndarray,
    name: str,
    own_model: str,
    n_boot: int,
    seed: int,
    notes: list[str],
) -> dict[str, Any]:
    columns = ("rater_name",)
    data = pd.concat([r.frame(mine, columns).assign(rater_name=name), r.frame(others, columns)], ignore_index=True)
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


def _framing_figures(framed: pd.DataFrame, n_permutations: int, seed: int) -> dict[tuple[str, str], dict[str, Any]]:
    """``framing_*`` of every framed rater (``framed``: its scored ratings), computed per framed judge
    ``(rater_model, rubric, dimension)``."""
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
