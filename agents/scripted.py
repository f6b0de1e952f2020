"""A deterministic backend for tests and dry runs: replies chosen by rules, no model involved.

Options (:class:`configs.options.ScriptedOptions`):
    ``rules``: a list of ``{match: REGEX, reply: TEXT}`` or ``{match: REGEX, failure: KIND}``; the first rule
        whose regex is found in the conversation (all messages joined by newlines) decides. ``reply`` may use
        ``{last}``, the last message's text.
    ``default``: the reply when no rule matches (default ``"OK."``).
    ``finish_reason``: reported finish reason (default ``stop``).
    ``delay_s``: simulated latency per call.
    ``call_log``: a file to which one line per call (its content key) is appended, so that tests can count
        calls across processes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from agents.base import Backend, GenerationOutput, register_backend
from agents.types import CallFailure, Completion, FailureKind, GenerationRequest, Message, Usage
from configs.options import ScriptedOptions
from configs.schema import ModelSpec


@register_backend("scripted")
class ScriptedBackend(Backend):
    description = "deterministic rule-based replies, for tests and dry runs"
    supports_json_schema = False
    Options = ScriptedOptions
    options: ScriptedOptions

    def __init__(self, spec: ModelSpec, **_: object) -> None:
        super().__init__(spec)
        options = self.options
        self._rules = [(re.compile(rule.match, re.IGNORECASE), rule) for rule in options.rules]
        self._default = options.default
        self._finish = options.finish_reason
        self._delay = options.delay_s
        self._call_log = options.call_log
        self.calls: list[GenerationRequest] = []
        self._word_counts: dict[int, tuple[Message, int]] = {}

    def _answer(self, request: GenerationRequest) -> GenerationOutput:
        conversation = "\n".join(m.content for m in request.messages)
        last = request.messages[-1].content if request.messages else ""
        for pattern, rule in self._rules:
            if pattern.search(conversation):
                if rule.failure is not None:
                    return CallFailure(failure=FailureKind(rule.failure), message="scripted failure")
                assert rule.reply is not None
                return self._completion(rule.reply.replace("{last}", last), request)
        return self._completion(self._default.replace("{last}", last), request)

    def _completion(self, text: str, request: GenerationRequest) -> Completion:
        words = text.split()
        finish = self._finish
        if len(words) > request.sampling.max_tokens:
            text, finish = " ".join(words[: request.sampling.max_tokens]), "length"
        prompt_tokens = sum(map(self._words, request.messages))
        return Completion(
            text=text,
            finish_reason=finish,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text.split())),
            latency_s=self._delay,
        )

    def _words(self, message: Message) -> int:
        """A message's word count (the prompt "tokens"), counted once per message object: a judge's system prompt
        is one object shared by all its requests. Entries hold their message, so an id is not reused meanwhile."""
        found = self._word_counts.get(id(message))
        if found is None or found[0] is not message:
            if len(self._word_counts) >= 1024:
                self._word_counts.clear()
            found = self._word_counts[id(message)] = (message, len(message.content.split()))
        return found[1]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutput]:
        if self._delay:
            await asyncio.sleep(self._delay)
        self.calls.extend(requests)
        if self._call_log is not None:
            with self._call_log.open("a", encoding="utf-8") as log:
                log.writelines(f"{r.key(self.identity())}\n" for r in requests)
        return [self._answer(r) for r in requests]
