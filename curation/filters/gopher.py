"""Gopher quality and repetition rules (Rae et al. 2021, as in MassiveText)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.filters.text import (
    TOKEN,
    duplicate_fraction,
    duplicate_ngram_char_fraction,
    is_symbol,
    paragraphs,
    tokens,
    top_ngram_char_fraction,
)

NO_LETTER = re.compile(r"[\d\W_]+")
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "-")


@dataclass(frozen=True)
class GopherQualityParams(StepParams):
    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    # datatrove compares stop words case-sensitively ("The" does not count); so does this,
    # for verdicts that match it. Set False to count them in any case.
    stop_words_case_sensitive: bool = True


class GopherQuality(Filter):
    """Word count, word length, symbols, bullets, ellipses, alphabetic words, stop words."""

    name = "gopher_quality"
    Params = GopherQualityParams

    def decide(self, batch: pa.Table) -> Verdicts:
        return Verdicts.from_reasons([self.reason(t) for t in batch.column("text").to_pylist()])

    def reason(self, text: str) -> str | None:
        p: GopherQualityParams = self.params  # type: ignore[assignment]
        words = TOKEN.findall(text)
        n_words = len(words) or 1
        # A token is a symbol when it has no letter or digit: it starts with punctuation,
        # unless it is a contraction such as 's.
        real = [w for w in words if w[0].isalnum() or (len(w) > 1 and w[0] in "'’")]
        if p.min_doc_words is not None and len(real) < p.min_doc_words:
            return "short_doc"
        if p.max_doc_words is not None and len(real) > p.max_doc_words:
            return "long_doc"
        avg = sum(map(len, real)) / len(real) if real else 0.0
        if p.min_avg_word_length is not None and avg < p.min_avg_word_length:
            return "short_avg_word"
        if p.max_avg_word_length is not None and avg > p.max_avg_word_length:
            return "long_avg_word"
        if p.max_symbol_word_ratio is not None:
            if text.count("#") / n_words > p.max_symbol_word_ratio:
                return "too_many_hashes"
            if (text.count("...") + text.count("…")) / n_words > p.max_symbol_word_ratio:
                return "too_many_ellipsis"
        lines = text.splitlines() or [text]
        if p.max_bullet_lines_ratio is not None:
            bullets = sum(1 for ln in lines if ln.lstrip().startswith(BULLETS))
            if bullets / len(lines) > p.max_bullet_lines_ratio:
                return "too_many_bullets"
        if p.max_ellipsis_lines_ratio is not None:
            ell = sum(1 for ln in lines if ln.rstrip().endswith(("...", "…")))
            if ell / len(lines) > p.max_ellipsis_lines_ratio:
                return "too_many_end_ellipsis"
        if p.min_alpha_words_ratio is not None:
            # A word counts as alphabetic when it holds at least one letter ("3rd" does, "12:30" does not).
            # Most words are all letters; only the others need the regex.
            alpha = len(real) - sum(1 for w in real if not w.isalpha() and NO_LETTER.fullmatch(w))
            if alpha / n_words < p.min_alpha_words_ratio:
                return "few_alpha_words"
        if p.min_stop_words is not None:
            pool = real if p.stop_words_case_sensitive else [w.lower() for w in real]
            if sum(map(STOP_WORDS.__contains__, pool)) < p.min_stop_words:
                return "few_stop_words"
        return None


@dataclass(frozen=True)
class GopherRepetitionParams(StepParams):
    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    dup_n_grams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


class GopherRepetition(Filter):
    """Repeated lines, paragraphs and word n-grams."""

    name = "gopher_repetition"
    Params = GopherRepetitionParams

    def decide(self, batch: pa.Table) -> Verdicts:
        return Verdicts.from_reasons([self.reason(t) for t in batch.column("text").to_pylist()])

    def reason(self, text: str) -> str | None:
        p: GopherRepetitionParams = self.params  # type: ignore[assignment]
        paras = paragraphs(text)
        frac, char_frac = duplicate_fraction(paras)
        if p.dup_para_frac is not None and frac > p.dup_para_frac:
            return "dup_para_frac"
        if p.dup_para_char_frac is not None and char_frac > p.dup_para_char_frac:
            return "dup_para_char_frac"
        lines = [ln for ln in text.splitlines() if ln.strip()]
        frac, char_frac = duplicate_fraction(lines)
        if p.dup_line_frac is not None and frac > p.dup_line_frac:
            return "dup_line_frac"
        if p.dup_line_char_frac is not None and char_frac > p.dup_line_char_frac:
            return "dup_line_char_frac"
        words = [w for w in tokens(text) if not is_symbol(w)]
        for n, limit in p.top_n_grams:
            if top_ngram_char_fraction(words, int(n)) > limit:
                return f"top_{int(n)}_gram"
        for n, limit in p.dup_n_grams:
            if duplicate_ngram_char_fraction(words, int(n)) > limit:
                return f"duplicated_{int(n)}_n_grams"
        return None
