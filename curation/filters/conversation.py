"""Rules per turn for conversations, instead of one web rule over the whole transcript."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.filters.text import duplicate_fraction, duplicate_ngram_char_fraction

# Assistant boilerplate: refusals and self-descriptions that carry no answer.
BOILERPLATE = re.compile(
    r"\b(?:as an ai(?: language)? model|as a large language model|i am an ai(?: language model)?|"
    r"i'?m (?:just )?an ai(?: language model| assistant)?|i (?:cannot|can't|can not|am unable to|'m unable to|"
    r"won't|will not) (?:help|assist|provide|comply|do that|fulfil+ that|answer that)|"
    r"i'?m (?:sorry|afraid),? (?:but )?i (?:cannot|can't|am not able to|'m not able to)|"
    r"(?:that|this) (?:request )?(?:goes against|violates) (?:my|our) (?:guidelines|policies|programming))[^.!?\n]*[.!?]?",
    re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")


def turns(messages: Any) -> list[dict[str, Any]] | None:
    """The messages of a conversation sample (a JSON string or a list), or None when it has none."""
    if messages is None:
        return None
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except ValueError:
            return None
    if not isinstance(messages, list):
        return None
    return [m for m in messages if isinstance(m, dict)]


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    w = _WORD.findall(text.lower())
    return {tuple(w[i:i + n]) for i in range(max(1, len(w) - n + 1))} if w else set()


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of word 3-gram sets."""
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


@dataclass(frozen=True)
class ConversationQualityParams(StepParams):
    require_assistant: bool = True
    min_assistant_words: int = 1
    drop_boilerplate_only: bool = True
    boilerplate_filler_words: int = 3
    max_echo_similarity: float = 0.8
    max_turn_chars: int = 100_000
    # Repetition inside one turn, for turns of at least `repetition_min_words` words.
    repetition_min_words: int = 30
    max_turn_dup_5gram_frac: float = 0.4
    max_turn_dup_line_frac: float = 0.5


class ConversationQuality(Filter):
    """Empty turns, no assistant turn, boilerplate-only replies, echoed prompts, long or looping turns."""

    name = "conversation_quality"
    Params = ConversationQualityParams
    columns = ("messages",)

    def decide(self, batch: pa.Table) -> Verdicts:
        msgs = batch.column("messages").to_pylist() if "messages" in batch.column_names else [None] * batch.num_rows
        return Verdicts.from_reasons([self.reason(t, m) for t, m in zip(batch.column("text").to_pylist(), msgs, strict=True)])

    def reason(self, text: str, messages: Any) -> str | None:
        p: ConversationQualityParams = self.params  # type: ignore[assignment]
        ms = turns(messages)
        if ms is None:
            # A transcript without structure: judge it as one assistant turn.
            ms = [{"role": "assistant", "content": text}]
        if not ms:
            return "no_turns"
        if any(not str(m.get("content") or "").strip() for m in ms):
            return "empty_turn"
        assistant = [i for i, m in enumerate(ms) if m.get("role") == "assistant"]
        if p.require_assistant and not assistant:
            return "no_assistant_turn"
        for i in assistant:
            reply = str(ms[i]["content"])
            if len(reply) > p.max_turn_chars:
                return "long_turn"
            if len(_WORD.findall(reply)) < p.min_assistant_words:
                return "short_assistant_turn"
            # Only boilerplate: what is left without it is at most a few filler words.
            rest = BOILERPLATE.sub(" ", reply)
            if p.drop_boilerplate_only and rest != reply and len(_WORD.findall(rest)) <= p.boilerplate_filler_words:
                return "assistant_boilerplate"
            prompt = next((str(m["content"]) for m in reversed(ms[:i]) if m.get("role") == "user"), None)
            if prompt is not None and (reply.strip() == prompt.strip() or similarity(reply, prompt) > p.max_echo_similarity):
                return "echoes_prompt"
        for m in ms:
            content = str(m["content"])
            words = _WORD.findall(content)
            if len(words) < p.repetition_min_words:
                continue
            if duplicate_ngram_char_fraction(words, 5) > p.max_turn_dup_5gram_frac:
                return "repetitive_turn"
            lines = [ln for ln in content.splitlines() if ln.strip()]
            if len(lines) >= 4 and duplicate_fraction(lines)[0] > p.max_turn_dup_line_frac:
                return "repetitive_turn"
        return None
