"""Rules for model-written text: degeneration, truncation, assistant boilerplate, copies of the prompt.

A synthetic sample also meets the rules of what it imitates: a generated conversation is
checked turn by turn, like a human one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.filters.conversation import (
    BOILERPLATE,
    ConversationQuality,
    similarity,
    turns,
)
from mixline.curation.filters.text import duplicate_ngram_char_fraction, top_ngram_char_fraction

_WORD = re.compile(r"[^\W_]+")
_END = re.compile(r"""[.!?…:;)\]}"'”’`*>]\s*$|\n\s*$""")


@dataclass(frozen=True)
class SyntheticQualityParams(StepParams):
    # n-gram loops: the share of characters in repeated 4-grams, or in the most common 3-gram.
    max_dup_4gram_frac: float = 0.35
    max_top_3gram_frac: float = 0.25
    loop_min_words: int = 20
    # Text that stops mid-sentence: its last line is prose of this many words with no end mark.
    cut_off_min_words: int = 6
    drop_cut_off: bool = True
    drop_boilerplate: bool = True
    max_prompt_similarity: float = 0.8


class SyntheticQuality(Filter):
    """n-gram loops, mid-sentence cut-offs, assistant boilerplate and near-copies of the prompt or parent."""

    name = "synthetic_quality"
    Params = SyntheticQualityParams
    columns = ("messages", "prompt_text")

    def __init__(self, params: StepParams | None = None, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._chat = ConversationQuality()

    def decide(self, batch: pa.Table) -> Verdicts:
        n = batch.num_rows

        def col(c: str) -> list[Any]:
            return batch.column(c).to_pylist() if c in batch.column_names else [None] * n

        rows = zip(batch.column("text").to_pylist(), col("messages"), col("prompt_text"), strict=True)
        return Verdicts.from_reasons([self.reason(t, m, pr) for t, m, pr in rows])

    def reason(self, text: str, messages: Any = None, prompt: str | None = None) -> str | None:
        p: SyntheticQualityParams = self.params  # type: ignore[assignment]
        words = _WORD.findall(text.lower())
        if len(words) >= p.loop_min_words and (duplicate_ngram_char_fraction(words, 4) > p.max_dup_4gram_frac
                                               or top_ngram_char_fraction(words, 3) > p.max_top_3gram_frac):
            return "ngram_loop"
        if p.drop_boilerplate and BOILERPLATE.search(text[:300]):
            return "assistant_boilerplate"
        if p.drop_cut_off and text.strip() and not _END.search(text):
            last = text.strip().splitlines()[-1]
            if len(_WORD.findall(last)) >= p.cut_off_min_words and last[-1:].isalnum():
                return "cut_off"
        if prompt and similarity(text, prompt) > p.max_prompt_similarity:
            return "copies_prompt"
        if turns(messages):
            return self._chat.reason(text, messages)
        return None
