"""Small transcript stores for the analysis tests, written with the real schema (:mod:`graphs.tables`).

:func:`tiny_store`: three cells, four generations (one failed, one rewrite), two judges and two framed ratings;
model text with a ``<script>`` tag (:data:`SCRIPT`) for the escaping tests. :func:`make_store`: a store from
dicts of cells, ratings and run configs, for the study tests. The 3000-generation synthetic store is
:func:`tests.helpers.synthetic.synthetic_run`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from graphs.tables import DDL, STORE_FILENAME

SCRIPT = "<script>alert('pwned')</script>"


def tiny_store(run_dir: Path, ratings: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(run_dir / STORE_FILENAME)
    conn.executescript(DDL)
    now = time.time()
    cells = [
        ("c1", "m1", "none", "none", "none", "none", "women", "gender", "bad", "bad", "en", 0, 1, 1, "[]", now),
        (
            "c2",
            "m1",
            "p1",
            "character",
            "politician",
            "female",
            "women",
            "gender",
            "bad",
            "bad",
            "en",
            0,
            0,
            2,
            "[]",
            now,
        ),
        (
            "c3",
            "m1",
            "p2",
            "character",
            "politician",
            "male",
            "women",
            "gender",
            "bad",
            "bad",
            "en",
            0,
            0,
            3,
            "[]",
            now,
        ),
    ]
    conn.executemany("INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cells)
    gens = [
        ("g1", "c1", 0, None, "m1", "scripted", "[]", "{}", "fine", "ok", 0, now),
        ("g2", "c2", 0, None, "m1", "scripted", "[]", "{}", f"nasty {SCRIPT}", "ok", 0, now),
        ("g3", "c3", 0, None, "m1", "scripted", "[]", "{}", None, "timeout", None, now),
        ("g2r", "c2", 1, "g2", "m1", "scripted", "[]", "{}", "kinder", "ok", 0, now),
    ]
    conn.executemany(
        "INSERT INTO generations (generation_key, cell_key, round, parent_key, model, backend, messages, params, "
        "text, outcome, refusal, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        gens,
    )
    if ratings:
        rows = [
            ("r1", "g1", "judge-a", "judge-a", None, None, "toxicity", 0.1, "scored"),
            ("r2", "g1", "judge-b", "judge-b", None, None, "toxicity", 0.2, "scored"),
            ("r3", "g2", "judge-a", "judge-a", None, None, "toxicity", 0.9, "scored"),
            ("r4", "g2", "judge-b", "judge-b", None, None, "toxicity", None, "parse_error"),
            ("r5", "g2r", "judge-a", "judge-a", None, None, "toxicity", 0.3, "scored"),
            ("r6", "g2", "judge-a/f", "judge-a", "gender", "female", "unsafe", 0.8, "scored"),
            ("r7", "g2", "judge-a/m", "judge-a", "gender", "male", "unsafe", 0.5, "scored"),
        ]
        conn.executemany(
            "INSERT INTO ratings (rating_key, generation_key, rater, rater_name, framing_attribute, framing_value, "
            "dimension, score, outcome, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(*r, now) for r in rows],
        )
        conn.execute("INSERT INTO mitigation VALUES ('c2', 1, 'below_threshold', ?)", (now,))
    conn.commit()
    conn.close()
    return run_dir


CELL_DEFAULTS: dict[str, Any] = {
    "model": "m1",
    "persona_id": "none",
    "persona_kind": "none",
    "persona_category": "none",
    "persona_gender": "none",
    "target_id": "t1",
    "target_category": "c",
    "template_id": "x",
    "template_style": "generic",
    "language": "en",
    "repeat": 0,
    "is_baseline": 0,
}


def make_store(
    run_dir: Path,
    cells: list[dict[str, Any]],
    ratings: list[dict[str, Any]] = (),
    configs: list[dict[str, Any] | None] = (),
) -> Path:
    """A transcript store with one round-0 generation per cell (key ``g-<cell key>``).

    ``cells``: dicts with ``key`` and any cell column (defaults above), plus ``refusal`` and ``outcome`` of the
    generation. ``ratings``: dicts with ``cell`` (the rated cell's key), ``rater`` (name), ``kind``,
    ``dimension``, ``score`` (``None``: a parse error) and optionally ``model`` and ``framing`` ((attribute, value)).
    ``configs``: one ``runs`` row per entry, in order (the last one is the latest).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(run_dir / STORE_FILENAME)
    conn.executescript(DDL)
    now = time.time()
    for config in configs:
        conn.execute("INSERT INTO runs(command, started_at, config) VALUES ('run', ?, ?)", (now, json.dumps(config)))
    for i, cell in enumerate(cells):
        c = {**CELL_DEFAULTS, **cell}
        conn.execute(
            "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                c["key"],
                *(c[k] for k in CELL_DEFAULTS),
                i,
                "[]",
                now,
            ),
        )
        ok = c.get("outcome", "ok") == "ok"
        conn.execute(
            "INSERT INTO generations (generation_key, cell_key, round, model, backend, messages, params, text, "
            "outcome, refusal, created_at) VALUES (?,?,0,?,'scripted','[]','{}',?,?,?,?)",
            (
                f"g-{c['key']}",
                c["key"],
                c["model"],
                "text" if ok else None,
                c.get("outcome", "ok"),
                c.get("refusal"),
                now,
            ),
        )
    for j, r in enumerate(ratings):
        framing = r.get("framing")
        identity = f"{r['rater']}|{r['kind']}"
        if r.get("model"):
            identity += f"|model={r['model']}"
        if framing:
            identity += f"|framing={framing[0]}={framing[1]}"
        conn.execute(
            "INSERT INTO ratings (rating_key, generation_key, rater, rater_name, rater_model, framing_attribute, "
            "framing_value, dimension, score, outcome, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                f"r{j}",
                f"g-{r['cell']}",
                identity,
                r["rater"],
                r.get("model"),
                framing[0] if framing else None,
                framing[1] if framing else None,
                r["dimension"],
                r["score"],
                "scored" if r["score"] is not None else "parse_error",
                now,
            ),
        )
    conn.commit()
    conn.close()
    return run_dir
