"""C4 and FineWeb heuristic rules, length limits, and boilerplate lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.filters.text import PUNCT_END, WORD, duplicate_fraction
from mixline.curation.lang import scripts
from mixline.curation.lang.rules import FINEWEB_KEYS, column, merged
from mixline.curation.lang.text import units

BOILERPLATE = re.compile(
    r"(cookie|javascript|terms of (use|service)|privacy policy|all rights reserved|"
    r"sign (in|up)|log ?in|subscribe|newsletter|click here|powered by|skip to (main )?content)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LengthParams(StepParams):
    min_chars: int = 20
    max_chars: int = 1_000_000
    min_words: int = 3


class Length(Filter):
    """Too short or too long, in characters or words."""

    name = "length"
    Params = LengthParams

    def decide(self, batch: pa.Table) -> Verdicts:
        p: LengthParams = self.params  # type: ignore[assignment]
        out: list[str | None] = []
        for t in batch.column("text").to_pylist():
            n = len(t)
            if n < p.min_chars:
                out.append("too_few_chars")
            elif n > p.max_chars:
                out.append("too_many_chars")
            elif len(t.split()) < p.min_words and units(t, scripts.script_of(t[:500])) < p.min_words:
                out.append("too_few_words")  # in Chinese or Thai, characters count as words
            else:
                out.append(None)
        return Verdicts.from_reasons(out)


@dataclass(frozen=True)
class C4Params(StepParams):
    min_sentences: int = 5
    max_word_length: int = 1000
    min_terminal_punct_lines_ratio: float = 0.5
    lorem_ipsum: bool = True
    curly_bracket: bool = True
    javascript_lines_ratio: float = 0.5


class C4Quality(Filter):
    """C4's document rules: sentences, terminal punctuation, lorem ipsum, code braces, javascript."""

    name = "c4_quality"
    Params = C4Params

    def decide(self, batch: pa.Table) -> Verdicts:
        return Verdicts.from_reasons([self.reason(t) for t in batch.column("text").to_pylist()])

    def reason(self, text: str) -> str | None:
        p: C4Params = self.params  # type: ignore[assignment]
        lower = text.lower()
        if p.lorem_ipsum and "lorem ipsum" in lower:
            return "lorem_ipsum"
        if p.curly_bracket and "{" in text:
            return "curly_bracket"
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not lines:
            return "no_lines"
        if sum(1 for ln in lines if "javascript" in ln.lower()) / len(lines) > p.javascript_lines_ratio:
            return "javascript"
        if sum(1 for ln in lines if ln.endswith(PUNCT_END)) / len(lines) < p.min_terminal_punct_lines_ratio:
            return "few_terminal_punct_lines"
        if any(len(w) > p.max_word_length for w in text.split()):
            return "long_word"
        if len(re.findall(r"[.!?]+(\s|$)", text)) < p.min_sentences:
            return "few_sentences"
        return None


@dataclass(frozen=True)
class FineWebParams(StepParams):
    min_line_punct_ratio: float = 0.12
    max_short_line_ratio: float = 0.67
    short_line_chars: int = 30
    max_dup_line_char_ratio: float = 0.1
    max_newline_ratio: float = 0.3
    # Per language: min_line_punct_ratio (null turns the rule off where sentences end without
    # punctuation, as in Thai). Over the built-in values; see `mixline curate --show-default`.
    languages: dict[str, Any] = field(default_factory=dict)


class FineWebQuality(Filter):
    """FineWeb's rules: punctuated lines, short lines, duplicated line characters, newline density.

    In English (or with no language known) they are FineWeb's. In another language, lines may end
    in that script's punctuation (。 । ۔ ։ ...), the punctuated-lines threshold is the language's,
    words are counted in every script (characters in scripts without spaces), and a short line
    is shorter in characters where one character is a word.
    """

    name = "fineweb_quality"
    version = 2
    Params = FineWebParams
    columns = ("lang", "script")

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: FineWebParams = self.params  # type: ignore[assignment]
        self.profiles = merged(self.name, FINEWEB_KEYS, p.languages)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "languages": {k: self.profiles[k] for k in sorted(self.profiles)}}

    def decide(self, batch: pa.Table) -> Verdicts:
        texts = batch.column("text").to_pylist()
        return Verdicts.from_reasons([self.reason(t, lang, sc) for t, lang, sc in
                                      zip(texts, column(batch, "lang"), column(batch, "script"), strict=True)])

    def reason(self, text: str, lang: str | None = None, script: str | None = None) -> str | None:
        p: FineWebParams = self.params  # type: ignore[assignment]
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        if not lines:
            return "empty"
        english = lang in (None, "en")
        prof = self.profiles.get(lang or "", {})
        min_punct = p.min_line_punct_ratio if english else prof.get("min_line_punct_ratio", None)
        ends = PUNCT_END if english else scripts.SENTENCE_END
        if min_punct is not None and sum(1 for ln in lines if ln.endswith(ends)) / len(lines) < min_punct:
            return "line_punct_ratio"
        unspaced = not english and scripts.is_unspaced(script)
        short = p.short_line_chars // 3 if unspaced else p.short_line_chars
        if sum(1 for ln in lines if len(ln) <= short) / len(lines) > p.max_short_line_ratio:
            return "short_line_ratio"
        _, dup_chars = duplicate_fraction(lines)
        if dup_chars > p.max_dup_line_char_ratio:
            return "char_dup_ratio"
        words = (len(WORD.findall(text)) if english else units(text, script)) or 1
        if text.count("\n") / words > p.max_newline_ratio:
            return "list_ratio"
        return None


@dataclass(frozen=True)
class BoilerplateParams(StepParams):
    max_boilerplate_lines_ratio: float = 0.4
    max_line_chars: int = 120


class Boilerplate(Filter):
    """Pages made mostly of short navigation, cookie, login and legal lines."""

    name = "boilerplate"
    Params = BoilerplateParams

    def decide(self, batch: pa.Table) -> Verdicts:
        p: BoilerplateParams = self.params  # type: ignore[assignment]
        out: list[str | None] = []
        for text in batch.column("text").to_pylist():
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            bad = sum(1 for ln in lines if len(ln) <= p.max_line_chars and BOILERPLATE.search(ln))
            out.append("boilerplate_lines" if lines and bad / len(lines) > p.max_boilerplate_lines_ratio else None)
        return Verdicts.from_reasons(out)
