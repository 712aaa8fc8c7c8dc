"""Gopher quality and repetition rules (Rae et al. 2021, as in MassiveText), per language.

English, and a sample whose language is unknown to this run (no `language` step ran), gets the
rules as datatrove applies them, verdict for verdict. Any other language gets them with its own
stop words and word-length bounds (`languages`, derived from reference text per language; see
`mixline.curation.lang.derive`), words found in every script, and characters counted as words
in scripts without spaces. A language with no profile (`und`, or one with no reference text) is
never judged by another language's stop words: it gets the rules that do not depend on language
(length, symbols, bullets, ellipses, alphabetic words, and the repetition rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
from mixline.curation.lang import scripts
from mixline.curation.lang.rules import GOPHER_KEYS, column, merged
from mixline.curation.lang.text import CHARS_PER_WORD, WORD, alpha_ratio, stop_hits, units

NO_LETTER = re.compile(r"[\d\W_]+")
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "-")
ENGLISH = (None, "en")


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
    # Per language: stop_words, stop_words_as_substrings, min_stop_words, min/max_avg_word_length.
    # A recipe's [steps.languages.XX] tables go over the built-in ones (see `mixline curate --show-default`).
    languages: dict[str, Any] = field(default_factory=dict)
    per_language: bool = True  # False: every sample gets the English rules, as before languages


def symbol_and_line_reason(p: GopherQualityParams, text: str, n_words: float) -> str | None:
    """Gopher's rules on '#' and ellipses per word, and on bullet and ellipsis-ended lines."""
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
        ends = sum(1 for ln in lines if ln.rstrip().endswith(("...", "…")))
        if ends / len(lines) > p.max_ellipsis_lines_ratio:
            return "too_many_end_ellipsis"
    return None


class GopherQuality(Filter):
    """Word count, word length, symbols, bullets, ellipses, alphabetic words, stop words; per language."""

    name = "gopher_quality"
    version = 2
    Params = GopherQualityParams
    columns = ("lang", "script")

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: GopherQualityParams = self.params  # type: ignore[assignment]
        self.profiles = merged(self.name, GOPHER_KEYS, p.languages)
        self._stops = {lang: frozenset(v.get("stop_words") or ()) for lang, v in self.profiles.items()}

    def config(self) -> dict[str, Any]:
        # The values every language was judged by, so a run's config says what its verdicts mean.
        return {**super().config(), "languages": {k: self.profiles[k] for k in sorted(self.profiles)}}

    def decide(self, batch: pa.Table) -> Verdicts:
        p: GopherQualityParams = self.params  # type: ignore[assignment]
        texts = batch.column("text").to_pylist()
        if not p.per_language:
            return Verdicts.from_reasons([self.reason(t) for t in texts])
        # English keeps datatrove's rules unless a recipe gives it a table of its own.
        return Verdicts.from_reasons([self.reason(t) if lang in ENGLISH and lang not in self.profiles
                                      else self.reason_in(t, lang, script)
                                      for t, lang, script in zip(texts, column(batch, "lang"), column(batch, "script"),
                                                                 strict=True)])

    def reason_in(self, text: str, lang: str, script: str | None) -> str | None:
        """The rules in another language: its profile's stop words and bounds, or none of them."""
        p: GopherQualityParams = self.params  # type: ignore[assignment]
        prof = self.profiles.get(lang)
        script = script or (prof or {}).get("script") or scripts.script_of(text[:2000])
        unspaced = scripts.is_unspaced(script)
        words = WORD.findall(text)
        n = units(text, script) if unspaced else float(len(words))
        if p.min_doc_words is not None and n < p.min_doc_words:
            return "short_doc"
        if p.max_doc_words is not None and n > p.max_doc_words:
            return "long_doc"
        if prof is not None and not unspaced and words:
            avg = sum(map(len, words)) / len(words)
            lo, hi = prof.get("min_avg_word_length"), prof.get("max_avg_word_length")
            if lo is not None and avg < lo:
                return "short_avg_word"
            if hi is not None and avg > hi:
                return "long_avg_word"
        symbols = symbol_and_line_reason(p, text, n or 1.0)
        if symbols:
            return symbols
        if p.min_alpha_words_ratio is not None:
            # Gopher's ratio, punctuation characters counted as tokens as datatrove does; the bar is
            # the language's (derived from its reference text) where punctuation is denser than English's.
            bar = min(p.min_alpha_words_ratio, (prof or {}).get("min_alpha_words_ratio") or p.min_alpha_words_ratio)
            if alpha_ratio(text, script) < bar:
                return "few_alpha_words"
        if prof is not None and p.min_stop_words is not None and prof.get("stop_words"):
            need = prof.get("min_stop_words", p.min_stop_words)
            as_sub = bool(prof.get("stop_words_as_substrings", unspaced))
            if stop_hits(text, prof["stop_words"] if as_sub else self._stops[lang], as_sub) < need:
                return "few_stop_words"
        return None

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
        symbols = symbol_and_line_reason(p, text, n_words)
        if symbols:
            return symbols
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
    """Repeated lines, paragraphs and word n-grams; in scripts without spaces, character n-grams
    (n words become n times the script's characters per word)."""

    name = "gopher_repetition"
    version = 2
    Params = GopherRepetitionParams
    columns = ("script",)

    def decide(self, batch: pa.Table) -> Verdicts:
        texts = batch.column("text").to_pylist()
        return Verdicts.from_reasons([self.reason(t, sc) for t, sc in zip(texts, column(batch, "script"), strict=True)])

    def reason(self, text: str, script: str | None = None) -> str | None:
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
        scale = 1.0
        if script is not None and scripts.is_unspaced(script):
            words = [w for w in tokens(scripts.split_unspaced(text)) if w[0].isalnum() or not is_symbol(w)]
            scale = CHARS_PER_WORD.get(script, 2.0)
        else:
            words = [w for w in tokens(text) if w[0].isalnum() or not is_symbol(w)]
        for n, limit in p.top_n_grams:
            if top_ngram_char_fraction(words, max(1, round(int(n) * scale))) > limit:
                return f"top_{int(n)}_gram"
        for n, limit in p.dup_n_grams:
            if duplicate_ngram_char_fraction(words, max(1, round(int(n) * scale))) > limit:
                return f"duplicated_{int(n)}_n_grams"
        return None
