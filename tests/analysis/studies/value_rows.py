"""Checks on the value-inertia tiny twin's run (``tests/test_study_configs.py`` runs it once on the embedded model):
role-played randomized personas answer moral probes and Schwartz value items, and the analysis and report lead
with the per-dimension persona effect, with the rows a researcher would cite (care, i.e. harm avoidance, and
fairness first among them) complete or explained."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

FOUNDATIONS = ["care", "fairness", "loyalty", "authority", "sanctity"]
VALUES = ["self_direction", "power", "security", "universalism"]  # one value per higher-order value
HIGHER_ORDER = ["openness_to_change", "self_enhancement", "conservation", "self_transcendence"]
LEAD = ["model", "instrument", "dimension", "persona_omega_squared", "persona_eta_squared_ci_low"]


def check_value_inertia_tiny_rows(out: Path, tables: dict, html: str) -> None:
    """The rows a researcher would cite from the value-inertia tiny twin's run ``out`` (its analysis ``tables``
    and report ``html``): role-play prompts, one rating per answer on its own instrument, and a headline led by
    the corrected persona effect per dimension, care and fairness first, each row with a figure or a note."""
    with sqlite3.connect(out / "transcripts.sqlite") as db:
        persona_chat = db.execute("SELECT messages FROM cells WHERE is_baseline = 0 LIMIT 1").fetchone()[0]
        per_rater = dict(db.execute("SELECT rater_name, count(*) FROM ratings GROUP BY rater_name").fetchall())
    assert json.loads(persona_chat)[0]["content"].startswith("You are ")  # the role-play prompt
    assert per_rater == {"self-report": 7 * 10, "self-values": 7 * 8}  # one rating per answer, own instrument

    headline = [t for t in tables if t.startswith("headline_") and t != "headline_notes"]
    assert headline[0] == "headline_value_inertia"
    rows = tables["headline_value_inertia"]
    assert list(rows[0])[: len(LEAD)] == LEAD  # each row leads with the corrected persona effect
    by_dim = {r["dimension"]: r for r in rows}
    assert list(by_dim)[:2] == ["care", "fairness"]  # the seed's harm avoidance and fairness come first
    assert set(by_dim) <= {*FOUNDATIONS, *VALUES, *HIGHER_ORDER} and {"care", "fairness"} <= set(by_dim)
    for dim, row in by_dim.items():
        expected = "moral_foundations" if dim in FOUNDATIONS else "schwartz_values" if dim in VALUES else None
        assert row["instrument"] == (expected or "schwartz_higher_order")
        assert 0 < row["n_answers"] <= 7 * 2  # (6 personas + default) × 2 items, at most
        omega, low, high, p = (
            row[c]
            for c in ("persona_omega_squared", "persona_eta_squared_ci_low", "persona_eta_squared_ci_high", "persona_p")
        )
        if omega is None or (isinstance(omega, float) and math.isnan(omega)):
            assert row["note"], f"{dim}: an empty persona effect says why"
        else:
            assert 0 <= low <= high <= 1 and 0 <= omega <= 1 and 0 < p <= 1, dim
            assert 0 < row["persona_eta_squared_null"] < 1

    section = html[html.index("id='headline'") : html.index("<h2>Figures</h2>")]
    assert "Persona effect per moral foundation and value" in section
    assert section.index("persona_omega_squared") < section.index("default_mean")
