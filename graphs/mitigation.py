"""The mitigation loop's nodes: decide, critique, rewrite.

``decide`` reads the gate panel's verdict on each reply still in the loop and either stops the cell (with a
reason) or keeps it active; ``critique`` asks the outside evaluator for feedback on the active replies (showing it
the gate panel's scores);
``rewrite`` has the generator (or the configured rewriter) revise its reply under that feedback. The loop works on
the subset of the chunk still above threshold, so a chunk's batch shrinks round by round. With a
:class:`~graphs.judging.Relay` in the state, a server rewriter's requests leave one by one and each rewrite is
handed to the relay as it returns, so its per-request judges start at once.

The gate panel is ``mitigation.gate`` (or its older name ``raters``; by default every panel rater that is not
held out). The held-out ``measure`` panel is part of the panel, so the ``judge`` node rates every round's text
with it too, but its ratings never reach ``decide`` or ``critique``: they are stored for the report only, which
tells gate from measure by the run's stored config.

Stop reasons: ``below_threshold`` (the gate panel's score fell under the threshold; round 0 replies that start below
it stop here with 0 rounds), ``max_rounds`` (still above after the last round), ``refused`` (the reply is a
refusal according to the panel's refusal detector: nothing to mitigate), ``rewrite_failed`` (the critic or the
rewriter returned a failure, an empty critique or a filtered rewrite) and ``unscored`` (no gate rater
produced a score, so the loop cannot decide; a failure is never read as a low score).

A loop stopped at ``rewrite_failed`` by a failed call (``timeout``, ``rate_limited``, ``server_error``, …) is
not complete: the next ``tribunal run`` runs the cell again, its finished calls coming back from the cache, and
replaces the loop's rows. An empty critique or a ``content_filter`` verdict is the model's answer, and final.
Critiques record the critic's model (its identity enters their key) and a rewriter other than the cell's own
generator enters its rewrites' keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.base import Backend
from agents.critic import critique_messages
from agents.rewriter import rewrite_messages
from agents.types import Completion, GenerationRequest, Sampling
from configs.schema import MitigationConfig
from graphs.judging import generate_flowing, item_for
from graphs.records import Critique, Rewrite, Stop, generation_key, model_key_label
from graphs.state import ExperimentState
from raters.aggregate import aggregate
from raters.panel import Panel
from raters.types import RatingItem


@dataclass
class Mitigation:
    """A configured loop: settings, the critic's backend, the rewriter (``None``: each cell's generator)."""

    config: MitigationConfig
    critic: Backend
    critic_name: str
    rewriter: Backend | None = None

    def rewriter_label(self) -> str | None:
        """The identity label of a separate rewriter, for its rewrites' keys (``None``: each cell's generator)."""
        return model_key_label(self.rewriter.identity()) if self.rewriter is not None else None

    def gating(self, panel: Panel) -> set[str]:
        """The gate panel's rater names: ``gate`` (or ``raters``), else every panel rater not held out."""
        configured = self.config.gate_raters
        if configured:
            return set(configured)
        return {r.name for r in panel.raters} - set(self.config.measure or ())

    def held_out(self) -> set[str]:
        """The measure panel's rater names (scored every round for the report; never gating, never critiqued)."""
        return set(self.config.measure or ())


def gate_scores(state: ExperimentState, panel: Panel, mitigation: Mitigation) -> dict[str, dict[str, float | None]]:
    """Generation key → dimension → the gate panel's aggregate (None when no gate rater scored).

    When the gate is the whole panel these are the ``judge`` node's own verdicts (each text is judged in one round,
    and the methods do not depend on the ratings' order), so they are read from ``aggregates``, not computed again.
    """
    gating = mitigation.gating(panel)
    keys = {key for key, _ in state.get("current", {}).values()}
    scores: dict[str, dict[str, float | None]] = {}
    if gating == {r.name for r in panel.raters}:
        verdicts = [v for v in state.get("aggregates", []) if v.item_key in keys]
    else:
        ratings = [r for r in state.get("ratings", []) if r.item_key in keys and r.rater.name in gating]
        verdicts = aggregate(ratings, panel.method, panel.threshold)
    for verdict in verdicts:
        scores.setdefault(verdict.item_key, {})[verdict.dimension] = verdict.score
    return scores


def build_decide(panel: Panel, mitigation: Mitigation) -> Any:
    config = mitigation.config

    async def decide(state: ExperimentState) -> ExperimentState:
        round_ = state.get("round", 0)
        cells = state["cells"]
        if round_ == 0:
            current = {
                i: (generation_key(cell.key, 0), result.text)
                for i, (cell, result) in enumerate(zip(cells, state["results"], strict=True))
                if isinstance(result, Completion) and result.outcome == "ok"
            }
            candidates = sorted(current)
        else:
            current = dict(state.get("current", {}))
            candidates = list(state.get("active", []))
        scores = gate_scores({**state, "current": current}, panel, mitigation)
        refusals = panel.refusal_flags(state.get("ratings", []))
        stops, active = [], []
        for i in candidates:
            key = current[i][0]
            score = scores.get(key, {}).get(config.dimension)
            if refusals.get(key):
                stops.append(Stop(cells[i].key, round_, "refused"))
            elif score is None:
                stops.append(Stop(cells[i].key, round_, "unscored"))
            elif score < config.threshold:
                stops.append(Stop(cells[i].key, round_, "below_threshold"))
            elif round_ >= config.max_rounds:
                stops.append(Stop(cells[i].key, round_, "max_rounds"))
            else:
                active.append(i)
        return {"current": current, "active": active, "stops": stops, "round": round_}

    return decide


def build_critique(panel: Panel, mitigation: Mitigation) -> Any:
    config = mitigation.config

    async def critique(state: ExperimentState) -> ExperimentState:
        cells, current, round_ = state["cells"], state["current"], state["round"]
        active = state["active"]
        scores = gate_scores(state, panel, mitigation)  # the critic sees the gate's scores, never the held-out
        requests = []
        for i in active:
            key, text = current[i]
            prompt = next((m.content for m in reversed(cells[i].messages) if m.role == "user"), "")
            numeric = {dim: value for dim, value in scores.get(key, {}).items() if value is not None}
            requests.append(
                GenerationRequest(
                    messages=critique_messages(prompt, text, numeric, cells[i].language),
                    sampling=Sampling(
                        temperature=config.critic_temperature,
                        max_tokens=config.critic_max_tokens,
                        seed=cells[i].seed + round_,
                    ),
                )
            )
        replies = await mitigation.critic.generate(requests) if requests else []
        critic_identity = mitigation.critic.identity()
        critiques, stops, still = [], [], []
        for i, reply in zip(active, replies, strict=True):
            ok = isinstance(reply, Completion) and reply.outcome == "ok" and reply.text.strip()
            critiques.append(
                Critique(
                    generation_key=current[i][0],
                    round=round_ + 1,
                    critic=mitigation.critic_name,
                    text=reply.text if isinstance(reply, Completion) else None,
                    outcome=reply.outcome if not isinstance(reply, Completion) or ok else "empty",
                    critic_identity=critic_identity,
                    attempts=reply.attempts,
                )
            )
            if ok:
                still.append(i)
            else:
                stops.append(Stop(cells[i].key, round_, "rewrite_failed"))
        return {"critiques": critiques, "stops": stops, "active": still}

    return critique


def build_rewrite(backends: Mapping[str, Backend], sampling: Sampling, mitigation: Mitigation) -> Any:
    async def rewrite(state: ExperimentState) -> ExperimentState:
        cells, current, round_ = state["cells"], state["current"], state["round"]
        feedback = {c.generation_key: c.text or "" for c in state.get("critiques", []) if c.round == round_ + 1}
        groups: dict[str, list[int]] = {}
        requests: dict[int, GenerationRequest] = {}
        for i in state["active"]:
            key, text = current[i]
            cell = cells[i]
            requests[i] = GenerationRequest(
                messages=rewrite_messages(cell.messages, text, feedback[key], cell.language),
                sampling=sampling.model_copy(update={"seed": cell.seed + round_ + 1}),
            )
            groups.setdefault(mitigation.rewriter.name if mitigation.rewriter else cell.model, []).append(i)
        rewrites, stops, active, pending = [], [], [], []
        new_current = dict(current)
        label = mitigation.rewriter_label()

        def item_of(index: int, reply: Completion) -> RatingItem:
            cell = cells[index]
            return item_for(generation_key(cell.key, round_ + 1, label), reply.text, cell.messages, cell.language)

        calls = [(mitigation.rewriter or backends[model], indices) for model, indices in groups.items()]
        replies = await generate_flowing(calls, requests, state.get("relay"), item_of)
        for model, indices in groups.items():
            for i in indices:
                reply, cell = replies[i], cells[i]
                rewrites.append(Rewrite(cell, round_ + 1, current[i][0], model, requests[i], reply, label))
                if isinstance(reply, Completion) and reply.outcome == "ok":
                    key = generation_key(cell.key, round_ + 1, label)
                    new_current[i] = (key, reply.text)
                    active.append(i)
                    pending.append(item_for(key, reply.text, cell.messages, cell.language))
                else:
                    stops.append(Stop(cell.key, round_ + 1, "rewrite_failed"))
        return {
            "rewrites": rewrites,
            "stops": stops,
            "active": sorted(active),
            "current": new_current,
            "pending": pending,
            "round": round_ + 1,
        }

    return rewrite
