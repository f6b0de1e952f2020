"""Synthetic transcripts with known structure, for tests, benchmarks and trying the report without a model.

:func:`synthetic_run` writes a transcript store (the real schema, :data:`graphs.tables.DDL`) into a run
directory: a grid of model × persona × target × template × language × repeat cells plus no-persona baseline
cells, one original generation per cell, a mitigation loop for part of the toxic ones, and a panel of raters
scoring toxicity. Personas and templates shift a latent toxicity, raters add their own bias and noise, a small
share of generations fail and of ratings are unscored, so every analysis has something real to find.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np

from graphs.tables import DDL, SCHEMA_VERSION, STORE_FILENAME

__all__ = ["synthetic_run"]

_CATEGORIES = ("basic", "politician", "journalist", "athlete", "entertainer", "activist", "educator", "business")
_TARGETS = (
    ("women", "gender"),
    ("men", "gender"),
    ("immigrants", "nationality"),
    ("older_people", "age"),
    ("muslims", "religion"),
    ("gay_people", "sexual_orientation"),
    ("rural_people", "region"),
)
_TEMPLATES = ("generic", "good", "bad", "negative", "harmful", "toxic")
_TEMPLATE_SHIFT = {"generic": -0.5, "good": -1.5, "bad": 0.3, "negative": 0.2, "harmful": 0.6, "toxic": 0.9}


def synthetic_run(
    run_dir: str | Path,
    n_generations: int = 2_000,
    n_raters: int = 3,
    n_models: int = 2,
    n_personas: int = 40,
    mitigated_share: float = 0.05,
    max_rounds: int = 3,
    seed: int = 0,
    text: str = "synthetic output <script>alert('x')</script> {i}",
) -> Path:
    """Write a synthetic transcript store with about ``n_generations`` round-0 generations; returns ``run_dir``.

    Args:
        run_dir: Directory to create (the store goes to ``run_dir/transcripts.sqlite``; it must not exist yet).
        n_generations: Round-0 generations (one per cell); baseline cells are about 1/n_personas of them.
        n_raters: Raters scoring the ``toxicity`` dimension of every generation.
        n_models: Generator models.
        n_personas: Personas (besides the baseline), spread over eight categories and two genders.
        mitigated_share: Share of cells that go through the mitigation loop (the most toxic ones).
        max_rounds: Maximum rewrite rounds.
        seed: Random seed.
        text: Generation text template (``{i}`` is the generation number); contains markup on purpose.
    """
    rng = np.random.default_rng(seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / STORE_FILENAME
    if path.exists():
        raise FileExistsError(f"{path} exists already")
    n = int(n_generations)
    now = time.time()

    persona_ids = np.array(["none"] + [f"persona_{i:03d}" for i in range(n_personas)])
    persona_cat = np.array(["none"] + [_CATEGORIES[i % len(_CATEGORIES)] for i in range(n_personas)])
    persona_gender = np.array(["none"] + [("female", "male")[(i // len(_CATEGORIES)) % 2] for i in range(n_personas)])
    persona_effect = np.concatenate([[0.0], rng.normal(0.4, 0.6, n_personas)])
    models = np.array([f"model-{chr(97 + m)}" for m in range(n_models)])
    model_effect = rng.normal(0, 0.3, n_models)

    p = rng.integers(0, len(persona_ids), n)
    m = rng.integers(0, n_models, n)
    t = rng.integers(0, len(_TARGETS), n)
    tp = rng.integers(0, len(_TEMPLATES), n)
    lang = rng.integers(0, 2, n)
    repeat = np.arange(n) // 10_000
    templates = np.array(_TEMPLATES)
    tshift = np.array([_TEMPLATE_SHIFT[x] for x in _TEMPLATES])
    latent = -1.2 + persona_effect[p] + tshift[tp] + model_effect[m] + rng.normal(0, 0.8, n)
    true_tox = 1 / (1 + np.exp(-latent))

    cell_keys = np.char.add("c", np.char.zfill(np.arange(n).astype(str), 10))
    conn = sqlite3.connect(path)
    conn.executescript(DDL)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    target_ids = np.array([x for x, _ in _TARGETS])
    target_cats = np.array([c for _, c in _TARGETS])
    langs = np.array(["en", "zh"])
    conn.executemany(
        "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        zip(
            cell_keys.tolist(),
            models[m].tolist(),
            persona_ids[p].tolist(),
            np.where(p == 0, "none", "character").tolist(),
            persona_cat[p].tolist(),
            persona_gender[p].tolist(),
            target_ids[t].tolist(),
            target_cats[t].tolist(),
            templates[tp].tolist(),
            templates[tp].tolist(),
            langs[lang].tolist(),
            repeat.tolist(),
            (p == 0).astype(int).tolist(),
            np.arange(n).tolist(),
            ["[]"] * n,
            [now] * n,
            strict=True,
        ),
    )

    # Round 0 generations; 1 % fail; refusal more likely under harsh templates.
    failed = rng.random(n) < 0.01
    refusal_p = 1 / (1 + np.exp(-(-2.0 + 1.2 * tshift[tp] + 0.3 * (persona_gender[p] == "female"))))
    refusal = (rng.random(n) < refusal_p).astype(float)
    refusal[failed] = np.nan
    gen_rows: list[tuple] = []
    gen_keys = np.char.add("g", np.char.zfill(np.arange(n).astype(str), 10)).tolist()
    outcome = np.where(failed, "timeout", "ok")
    texts = [None if failed[i] else text.format(i=i) for i in range(n)]
    gen_rows = list(
        zip(
            gen_keys,
            cell_keys.tolist(),
            [0] * n,
            [None] * n,
            models[m].tolist(),
            ["scripted"] * n,
            ["[]"] * n,
            ["{}"] * n,
            texts,
            outcome.tolist(),
            [None if r is None else "stop" for r in texts],
            [None] * n,
            [None if np.isnan(r) else int(r) for r in refusal],
            [now] * n,
            strict=True,
        )
    )
    # Mitigation: the most toxic cells get rewrites that lower toxicity.
    scored_idx = np.flatnonzero(~failed)
    n_mit = int(mitigated_share * n)
    mit_cells = scored_idx[np.argsort(-true_tox[scored_idx])[:n_mit]]
    gen_tox = list(true_tox)
    gen_cell = list(range(n))
    mit_rows = []
    counter = n
    for c in mit_cells:
        tox, parent = true_tox[c], gen_keys[c]
        rounds, reason = 0, "max_rounds"
        for r in range(1, max_rounds + 1):
            tox = tox * rng.uniform(0.3, 0.9)
            key = f"g{counter:010d}"
            gen_rows.append(
                (
                    key,
                    cell_keys[c],
                    r,
                    parent,
                    models[m[c]],
                    "scripted",
                    "[]",
                    "{}",
                    text.format(i=counter),
                    "ok",
                    "stop",
                    None,
                    0,
                    now,
                )
            )
            gen_tox.append(tox)
            gen_cell.append(c)
            parent = key
            counter += 1
            rounds = r
            if tox < 0.5:
                reason = "below_threshold"
                break
        mit_rows.append((cell_keys[c], rounds, reason, now))
    conn.executemany(
        "INSERT INTO generations (generation_key, cell_key, round, parent_key, model, backend, messages, params, "
        "text, outcome, finish_reason, error, refusal, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        gen_rows,
    )
    conn.executemany("INSERT INTO mitigation VALUES (?,?,?,?)", mit_rows)

    # Ratings: every ok generation, every rater, dimension toxicity; 2 % parse errors.
    all_keys = [row[0] for row in gen_rows]
    ok = np.array([row[9] == "ok" for row in gen_rows])
    tox_arr = np.asarray(gen_tox)
    idx = np.flatnonzero(ok)
    bias = np.linspace(-0.08, 0.08, n_raters) if n_raters > 1 else np.zeros(1)
    for j in range(n_raters):
        noise = rng.normal(0, 0.12, len(idx))
        score = np.clip(np.round(tox_arr[idx] + bias[j] + noise, 2), 0, 1)
        unscored = rng.random(len(idx)) < 0.02
        rater = f"judge-{j}"
        rows = (
            (
                f"r{j}-{all_keys[i]}",
                all_keys[i],
                rater,
                rater,
                f"judge-model-{j}",
                None,
                None,
                "toxicity-v1",
                "1",
                "toxicity",
                None if u else float(s),
                "0-100",
                "parse_error" if u else "scored",
                now,
            )
            for i, s, u in zip(idx.tolist(), score.tolist(), unscored.tolist(), strict=True)
        )
        conn.executemany(
            "INSERT INTO ratings (rating_key, generation_key, rater, rater_name, rater_model, framing_attribute, "
            "framing_value, rubric, rubric_version, dimension, score, scale, outcome, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    conn.commit()
    conn.close()
    return run_dir
