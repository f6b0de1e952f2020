r"""The judge card: one row per judge and dimension, each figure with its n, and whether the judge is trusted.

Agreement between judges is not validity: a panel of judges that share a blind spot agree on it. So before a
headline uses a judge's scores, the card puts next to each other what is known about that judge:

================  ==============================================================================================
coverage          ``n`` ratings, ``coverage`` the scored share, ``outcomes`` the count of each rating outcome
humans            ``n_labelled`` texts with human labels; ``alpha_vs_humans`` (with ``alpha_vs_humans_ci``),
                  ``human_alpha`` (the humans among themselves), ``spearman``, ``mae``, ``auc``,
                  ``best_f1_threshold``, ``ece`` (:mod:`analysis.judge_audit.validity`)
swap              ``swap_n`` base texts, ``swap_shift`` (with ``swap_shift_ci``): the mean move when only the group
                  named changes (:mod:`analysis.judge_audit.swap`)
retest            ``retest_n`` texts asked twice, ``retest_alpha``, ``retest_shift``
                  (:mod:`analysis.judge_audit.stability`)
self_preference   ``self_preference_n`` texts, ``self_preference`` (with ``self_preference_ci``): negative, the judge
                  is more lenient on its own model's texts (:mod:`analysis.judge_audit.self_preference`)
framing           ``framing_n`` items, ``framing_shift`` and its permutation p ``framing_p``
                  (:mod:`analysis.judge_audit.framing`)
injection         ``injection_n`` texts, ``injection_shift``, ``injection_moved`` (``tribunal audit injection``)
panel             ``alpha_vs_panel`` over ``alpha_vs_panel_n`` texts: agreement with the other judges, shown, never
                  a trust criterion (:mod:`analysis.judge_audit.from_run`)
================  ==============================================================================================

Trust
-----
A :class:`TrustPolicy` (the config's ``panel.trust``) sets one threshold per check: ``alpha_vs_humans ≥
min_alpha_vs_humans``, ``swap_shift ≤ max_swap_shift``, ``coverage ≥ min_coverage``, ``retest_alpha ≥
min_retest_alpha``, ``|self_preference| ≤ max_abs_self_preference``, ``framing_shift ≤ max_framing_shift``
(``None`` turns a check off). Each threshold applies to the judge's figure only where that figure was measured:

* a measured figure on the wrong side of its threshold adds a line to ``failed``, such as ``"alpha_vs_humans 0.21 <
  0.6 (n 120)"``;
* a check whose threshold is set but whose figure was not measured (``NaN``: no audit stored, no human labels,
  the judge's model generated nothing) is listed in ``unmeasured``, and **does not fail**;
* ``trusted`` is ``not failed``.

So a judge that was never audited is trusted on what the run shows (its coverage) and its card row says which
checks it never had; the report names the judges never audited against humans instead of hiding them. The
thresholds compare point estimates; the intervals and n next to them say how far to believe the comparison.

Merging an audit with a run
---------------------------
:func:`merge_cards` joins the rows of a stored audit (``tribunal audit judges``) with those computed from a run
(:func:`analysis.judge_audit.from_run.run_card_rows`) per (rater, dimension). A check's figures travel together
with their n (the groups of the table above): a check the audit measured is taken whole from the audit, else from
the run. ``source`` says which contributed: ``"audit"``, ``"run"`` or ``"audit+run"``.

Examples
--------
>>> from analysis.judge_audit import TrustPolicy, judge_card
>>> card = judge_card([{"rater": "gpt", "n": 200, "coverage": 0.99, "alpha_vs_humans": 0.21, "n_labelled": 120},
...                    {"rater": "classifier", "n": 200, "coverage": 1.0}], TrustPolicy())
>>> card[["rater", "trusted"]].to_dict("records")
[{'rater': 'gpt', 'trusted': False}, {'rater': 'classifier', 'trusted': True}]
>>> card.loc[0, "failed"], card.loc[1, "unmeasured"]
(['alpha_vs_humans 0.21 < 0.6 (n 120)'], ['alpha_vs_humans', 'swap_shift', 'retest_alpha'])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from analysis.frames import jsonable

__all__ = [
    "CARD_COLUMNS",
    "CHECKS",
    "FIGURE_GROUPS",
    "Check",
    "TrustPolicy",
    "card_records",
    "judge_card",
    "merge_cards",
]

#: The judge card's columns, in order (a card may carry more after them: ``notes`` and whatever rows brought).
CARD_COLUMNS = (
    "rater", "kind", "model", "dimension", "source",
    "n", "coverage", "outcomes",
    "n_labelled", "alpha_vs_humans", "alpha_vs_humans_ci", "human_alpha", "spearman", "mae", "auc",
    "best_f1_threshold", "ece",
    "swap_n", "swap_shift", "swap_shift_ci",
    "retest_n", "retest_alpha", "retest_shift",
    "self_preference_n", "self_preference", "self_preference_ci",
    "framing_n", "framing_shift", "framing_p",
    "injection_n", "injection_shift", "injection_moved",
    "alpha_vs_panel", "alpha_vs_panel_n",
    "trusted", "failed", "unmeasured",
)  # fmt: skip
#: The figures of one check, which travel together from one source (:func:`merge_cards`).
FIGURE_GROUPS: dict[str, tuple[str, ...]] = {
    "coverage": ("n", "coverage", "outcomes"),
    "humans": (
        "n_labelled",
        "alpha_vs_humans",
        "alpha_vs_humans_ci",
        "human_alpha",
        "spearman",
        "mae",
        "auc",
        "best_f1_threshold",
        "ece",
    ),  # fmt: skip
    "swap": ("swap_n", "swap_shift", "swap_shift_ci"),
    "retest": ("retest_n", "retest_alpha", "retest_shift"),
    "self_preference": ("self_preference_n", "self_preference", "self_preference_ci"),
    "framing": ("framing_n", "framing_shift", "framing_p"),
    "injection": ("injection_n", "injection_shift", "injection_moved"),
    "panel": ("alpha_vs_panel", "alpha_vs_panel_n"),
}
_IDENTITY = ("rater", "kind", "model", "dimension")
_DERIVED = ("source", "trusted", "failed", "unmeasured")
_INTERVALS = ("alpha_vs_humans_ci", "swap_shift_ci", "self_preference_ci")
_COUNTS = ("n", "n_labelled", "swap_n", "retest_n", "self_preference_n", "framing_n", "injection_n",
           "injection_moved", "alpha_vs_panel_n")  # fmt: skip
_NUMBERS = tuple(c for c in CARD_COLUMNS if c not in (*_IDENTITY, *_DERIVED, *_INTERVALS, "outcomes"))


class Check(NamedTuple):
    """One trust check: its name, the policy field of its threshold, the figure, the figure's n and the rule."""

    name: str
    threshold: str
    figure: str
    n: str
    rule: Literal["min", "max", "max_abs"]


#: The trust checks, in the order the card lists them.
CHECKS = (
    Check("alpha_vs_humans", "min_alpha_vs_humans", "alpha_vs_humans", "n_labelled", "min"),
    Check("swap_shift", "max_swap_shift", "swap_shift", "swap_n", "max"),
    Check("coverage", "min_coverage", "coverage", "n", "min"),
    Check("retest_alpha", "min_retest_alpha", "retest_alpha", "retest_n", "min"),
    Check("self_preference", "max_abs_self_preference", "self_preference", "self_preference_n", "max_abs"),
    Check("framing_shift", "max_framing_shift", "framing_shift", "framing_n", "max"),
)


@dataclass(frozen=True)
class TrustPolicy:
    """When a judge counts as trusted: a threshold per check (``None``: no check), as in the config's
    ``panel.trust``. ``keep_untrusted`` is for the headlines (keep untrusted judges' scores); the card ignores it."""

    min_alpha_vs_humans: float | None = 0.6
    max_swap_shift: float | None = 0.1
    min_coverage: float | None = 0.9
    min_retest_alpha: float | None = 0.8
    max_abs_self_preference: float | None = None
    max_framing_shift: float | None = None
    keep_untrusted: bool = False

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> TrustPolicy:
        """The policy of a mapping such as the config's ``panel.trust``; absent keys keep their defaults.

        Raises:
            ValueError: an unknown key (named), a threshold that is not a number or ``None``, or a
                ``keep_untrusted`` that is not true/false.
        """
        if m is None:
            return cls()
        if hasattr(m, "model_dump"):  # a pydantic model of the same fields
            m = m.model_dump()
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(map(str, m)) - set(known))
        if unknown:
            raise ValueError(f"unknown trust setting(s) {unknown}; known: {known}")
        for key, value in m.items():
            if key == "keep_untrusted":
                if not isinstance(value, bool | np.bool_):
                    raise ValueError(f"keep_untrusted must be true or false, got {value!r}")
            elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float | np.number)):
                raise ValueError(f"{key} must be a number or null (no check), got {value!r}")
        return cls(**{k: (bool(v) if k == "keep_untrusted" else None if v is None else float(v)) for k, v in m.items()})


def judge_card(rows: Sequence[Mapping[str, Any]], policy: TrustPolicy | None = None) -> pd.DataFrame:
    """The judge card of ``rows``, each judge marked trusted or not under ``policy``.

    Args:
        rows: One mapping per (judge, dimension) with ``rater`` and any subset of :data:`CARD_COLUMNS`' figures
            (absent or ``None``: not measured); ``notes`` (a string or a list of them) and other keys are kept in
            columns after :data:`CARD_COLUMNS`. Given ``trusted``, ``failed`` and ``unmeasured`` are recomputed.
        policy: The thresholds (default :class:`TrustPolicy`'s).

    Returns:
        One row per input row: :data:`CARD_COLUMNS`, then ``notes`` and any other columns. Missing numbers are
        ``NaN`` (counts are nullable integers), missing intervals and texts ``None``; ``failed`` and
        ``unmeasured`` are lists of strings (module docstring).

    Raises:
        ValueError: a row has no ``rater``, or a figure that is not a number.
    """
    policy = policy or TrustPolicy()
    records, extras = [], {}
    for i, row in enumerate(rows):
        if row.get("rater") is None:
            raise ValueError(f"judge card row {i} has no 'rater'")
        record = _normalised(row)
        record["failed"], record["unmeasured"] = _apply(record, policy)
        record["trusted"] = not record["failed"]
        records.append(record)
        extras.update(dict.fromkeys(k for k in record if k not in CARD_COLUMNS))
    columns = [*CARD_COLUMNS, "notes", *(k for k in extras if k != "notes")]
    card = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    for column in _NUMBERS:
        card[column] = card[column].astype(float)
    for column in _COUNTS:
        values = card[column].dropna()
        if (values == np.round(values)).all():
            card[column] = card[column].astype("Int64")
    card["trusted"] = card["trusted"].astype(bool)
    return card


def card_records(card: pd.DataFrame) -> list[dict[str, Any]]:
    """The card as a list of JSON-able dicts, one per judge (``NaN`` → ``None``, numpy scalars → Python)."""
    return [jsonable(record) for record in card.to_dict(orient="records")]


def merge_cards(audit_rows: Sequence[Mapping[str, Any]], run_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Card rows of a stored audit and of a run joined per (rater, dimension); the audit's figures win.

    A check's figures (:data:`FIGURE_GROUPS`) come whole from the audit when it measured any of them, else from
    the run, so that every figure keeps its own n. ``kind`` and ``model`` come from the audit when it has them.
    ``notes`` are joined; other keys follow the audit. ``source`` is ``"audit"``, ``"run"`` or ``"audit+run"``:
    which of the two contributed a figure (or, with none, which had a row). Rows come in the order first seen,
    audit rows first. Give audit rows the dimension they were rated on: (judge, ``None``) is another key than
    (judge, ``"toxicity"``).

    Returns:
        Rows for :func:`judge_card` (``trusted``, ``failed`` and ``unmeasured`` are left to it).
    """
    audits = {_key(r): r for r in audit_rows}
    runs = {_key(r): r for r in run_rows}
    merged = []
    for key in dict.fromkeys([*audits, *runs]):
        audit, run = audits.get(key, {}), runs.get(key, {})
        row: dict[str, Any] = {"rater": key[0], "dimension": key[1]}
        for name in ("kind", "model"):
            row[name] = audit.get(name) if _measured(audit.get(name)) else run.get(name)
        used = set()
        for fields in FIGURE_GROUPS.values():
            for label, source in (("audit", audit), ("run", run)):
                if any(_measured(source.get(f)) for f in fields):
                    row.update({f: source.get(f) for f in fields})
                    used.add(label)
                    break
        skip = {*_IDENTITY, *_DERIVED, "notes", *(f for fields in FIGURE_GROUPS.values() for f in fields)}
        for source in (run, audit):  # the audit's extras overwrite the run's
            row.update({k: v for k, v in source.items() if k not in skip and _measured(v)})
        row["notes"] = [*_as_notes(audit.get("notes")), *_as_notes(run.get("notes"))]
        if not used:
            used = {label for label, source in (("audit", audit), ("run", run)) if source}
        row["source"] = "audit+run" if used == {"audit", "run"} else used.pop()
        merged.append(row)
    return merged


def _key(row: Mapping[str, Any]) -> tuple[str, str | None]:
    if row.get("rater") is None:
        raise ValueError(f"judge card row has no 'rater': {dict(row)!r}")
    dimension = row.get("dimension")
    return str(row["rater"]), None if not _measured(dimension) else str(dimension)


def _measured(value: Any) -> bool:
    """Whether a card value holds a figure: not ``None``/``NaN``, an interval with a finite end, a non-empty dict."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float | np.floating):
        return math.isfinite(value)
    if isinstance(value, list | tuple | np.ndarray):
        return any(_measured(v) for v in value)
    if isinstance(value, dict):
        return bool(value)
    return True


def _as_notes(value: Any) -> list[str]:
    if not _measured(value):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def _normalised(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with every card column: numbers as floats (``NaN`` when absent), intervals as pairs or ``None``."""
    record: dict[str, Any] = {k: v for k, v in row.items() if k not in ("trusted", "failed", "unmeasured")}
    for column in _NUMBERS:
        value = row.get(column)
        if not _measured(value):
            record[column] = np.nan
            continue
        try:
            record[column] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{row['rater']}: {column} must be a number, got {value!r}") from None
    for column in _INTERVALS:
        value = row.get(column)
        if not _measured(value):
            record[column] = None
            continue
        low, high = (np.nan if v is None else float(v) for v in value)
        if low > high:  # an interval is reported low end first
            raise ValueError(f"{row['rater']}: {column} has its ends swapped: {value!r}")
        record[column] = (low, high)
    outcomes = row.get("outcomes")
    record["outcomes"] = {str(k): int(v) for k, v in outcomes.items()} if _measured(outcomes) else None
    for column in ("rater", *_IDENTITY[1:], "source"):
        value = row.get(column)
        record[column] = str(value) if _measured(value) else None
    record["notes"] = _as_notes(row.get("notes"))
    return record


def _apply(record: Mapping[str, Any], policy: TrustPolicy) -> tuple[list[str], list[str]]:
    """The failed checks (one line each) and the unmeasured ones of one judge under ``policy``."""
    failed, unmeasured = [], []
    for check in CHECKS:
        threshold = getattr(policy, check.threshold)
        if threshold is None:
            continue
        value = record[check.figure]
        if not math.isfinite(value):
            unmeasured.append(check.name)
            continue
        shown, label = (abs(value), f"|{check.figure}|") if check.rule == "max_abs" else (value, check.figure)
        if check.rule == "min" and value < threshold:
            relation = "<"
        elif check.rule != "min" and shown > threshold:
            relation = ">"
        else:
            continue
        n = record[check.n]
        size = f" (n {int(n)})" if math.isfinite(n) else ""
        failed.append(f"{label} {_figure(shown, threshold)} {relation} {threshold:g}{size}")
    return failed, unmeasured


def _figure(value: float, threshold: float) -> str:
    """``value`` to 3 significant digits, more where 3 would print it equal to the threshold it failed."""
    for digits in range(3, 13):
        text = f"{value:.{digits}g}"
        if float(text) != threshold:
            return text
    return repr(value)
