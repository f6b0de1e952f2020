"""Judge audits: validity against humans, counterfactual swaps, stability, self-preference, framing; the judge card.

Agreement between judges is not validity. Before a headline uses a judge's scores, ``tribunal audit judges`` rates an
audit set with every judge of the panel and :func:`judge_card` puts what is known about each judge in one row, each
figure with its n, and marks it trusted or not under the config's ``panel.trust`` (:class:`TrustPolicy`).

Modules, one check each (their docstrings give the statistics and references):

* :mod:`analysis.judge_audit.validity`: validity against human labels (:func:`validity_vs_humans`, :class:`Validity`);
* :mod:`analysis.judge_audit.swap`: counterfactual target-group swaps (:func:`swap_shifts`): how far a score moves
  when only the group named changes, with group effects and a within-text permutation test;
* :mod:`analysis.judge_audit.stability`: test–retest on asking again (:func:`retest`);
* :mod:`analysis.judge_audit.self_preference`: a judge's leniency on its own model's texts against the other
  judges' (:func:`self_preference`);
* :mod:`analysis.judge_audit.framing`: demographic sensitivity of framed judges with its null
  (:func:`framing_sensitivity`, over :func:`analysis.demographics.demographic_sensitivity`);
* :mod:`analysis.judge_audit.card`: the card, the trust policy, JSON records and the merge of a stored audit with a
  run (:func:`judge_card`, :class:`TrustPolicy`, :func:`card_records`, :func:`merge_cards`);
* :mod:`analysis.judge_audit.from_run`: the card's figures a run shows by itself (:func:`run_card_rows`).
"""

from analysis.judge_audit.card import (
    CARD_COLUMNS,
    CHECKS,
    FIGURE_GROUPS,
    Check,
    TrustPolicy,
    card_records,
    judge_card,
    merge_cards,
)
from analysis.judge_audit.framing import FRAMING_COLUMNS, framing_sensitivity
from analysis.judge_audit.from_run import run_card_rows
from analysis.judge_audit.self_preference import self_preference
from analysis.judge_audit.stability import retest
from analysis.judge_audit.swap import SwapResult, swap_shifts
from analysis.judge_audit.validity import Validity, validity_vs_humans

__all__ = [
    "CARD_COLUMNS",
    "CHECKS",
    "FIGURE_GROUPS",
    "FRAMING_COLUMNS",
    "Check",
    "SwapResult",
    "TrustPolicy",
    "Validity",
    "card_records",
    "framing_sensitivity",
    "judge_card",
    "merge_cards",
    "retest",
    "run_card_rows",
    "self_preference",
    "swap_shifts",
    "validity_vs_humans",
]
