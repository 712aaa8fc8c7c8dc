"""Rules for domain text (medicine, law, math, science): numbers, units, citations and formulas are content.

Web heuristics count punctuation tokens and numbers against a document, which drops abstracts
full of statistics and worked math solutions. These rules count whitespace-separated words, and
a word is content when it holds a letter or a digit ("p<0.05", "95%", "§ 1983", "<<48/2=24>>24").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.filters.text import duplicate_fraction

from mixline.errors import ConfigError

_CONTENT = re.compile(r"[^\W_]")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class DomainQualityParams(StepParams):
    min_words: int = 3
    max_words: int = 200_000
    # Share of whitespace words that hold a letter or a digit.
    min_content_word_ratio: float = 0.6
    # At least this many words hold a letter: a table of bare numbers is not a document.
    min_letter_words: int = 2
    # A "word" this long is an unsplit blob (base64, minified data), not vocabulary.
    max_word_chars: int = 200
    max_long_word_ratio: float = 0.05
    # Repeated lines: domain text repeats headings and list items, so the bar is higher than Gopher's.
    max_dup_line_frac: float = 0.5
    # Thresholds per domain, over the ones above: {"legal": {"max_dup_line_frac": 0.7}}.
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)


class DomainQuality(Filter):
    """Word count, content-word share, letter words, blobs and repeated lines, over whitespace words.

    A sample's `domain` picks its thresholds from `domains` when the recipe sets any for it.
    """

    name = "domain_quality"
    Params = DomainQualityParams
    columns = ("domain",)

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: DomainQualityParams = self.params  # type: ignore[assignment]
        names = {f.name for f in fields(DomainQualityParams)} - {"domains"}
        if not isinstance(p.domains, dict):
            raise ConfigError(f"step {self.name}: `domains` maps a domain to its thresholds, e.g. "
                              "domains = {{ legal = {{ max_dup_line_frac = 0.7 }} }}")
        self._per_domain: dict[str, DomainQualityParams] = {}
        for dom, over in p.domains.items():
            bad = sorted(set(over) - names) if isinstance(over, dict) else ["(not a table)"]
            if bad:
                raise ConfigError(f"step {self.name}: domains.{dom}: unknown thresholds {bad}; "
                                  f"use {', '.join(sorted(names))}")
            self._per_domain[dom] = replace(p, domains={}, **over)

    def decide(self, batch: pa.Table) -> Verdicts:
        texts = batch.column("text").to_pylist()
        doms = batch.column("domain").to_pylist() if "domain" in batch.column_names else [None] * len(texts)
        return Verdicts.from_reasons([self.reason(t, d) for t, d in zip(texts, doms, strict=True)])

    def reason(self, text: str, domain: str | None = None) -> str | None:
        base: DomainQualityParams = self.params  # type: ignore[assignment]
        p = self._per_domain.get(domain or "", base)
        words = text.split()
        if len(words) < p.min_words:
            return "too_few_words"
        if len(words) > p.max_words:
            return "too_many_words"
        content = sum(map(bool, map(_CONTENT.search, words)))  # map: 3x a generator's speed
        if content / len(words) < p.min_content_word_ratio:
            return "few_content_words"
        if sum(map(bool, map(_LETTER.search, words))) < p.min_letter_words:
            return "few_letter_words"
        if sum(1 for w in words if len(w) > p.max_word_chars) / len(words) > p.max_long_word_ratio:
            return "encoded_blob"
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) >= 4 and duplicate_fraction(lines)[0] > p.max_dup_line_frac:
            return "dup_line_frac"
        return None
