"""C4 and FineWeb heuristic rules, length limits, and boilerplate lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.filters.text import PUNCT_END, WORD, duplicate_fraction

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
            elif len(t.split()) < p.min_words:
                out.append("too_few_words")
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


class FineWebQuality(Filter):
    """FineWeb's rules: punctuated lines, short lines, duplicated line characters, newline density."""

    name = "fineweb_quality"
    Params = FineWebParams

    def decide(self, batch: pa.Table) -> Verdicts:
        return Verdicts.from_reasons([self.reason(t) for t in batch.column("text").to_pylist()])

    def reason(self, text: str) -> str | None:
        p: FineWebParams = self.params  # type: ignore[assignment]
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        if not lines:
            return "empty"
        if sum(1 for ln in lines if ln.endswith(PUNCT_END)) / len(lines) < p.min_line_punct_ratio:
            return "line_punct_ratio"
        if sum(1 for ln in lines if len(ln) <= p.short_line_chars) / len(lines) > p.max_short_line_ratio:
            return "short_line_ratio"
        _, dup_chars = duplicate_fraction(lines)
        if dup_chars > p.max_dup_line_char_ratio:
            return "char_dup_ratio"
        words = len(WORD.findall(text)) or 1
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
