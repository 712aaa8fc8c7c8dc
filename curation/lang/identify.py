"""A language for every text: ISO 639-1 (or 639-3) code, script, confidence, and the share of others.

In order, per text:
1. No letters, or code (most lines look like source code): `zxx` (ISO 639-3, no linguistic content).
2. The script (`scripts`). A script that one language writes (Hangul, kana, Thai, Greek, Georgian,
   Armenian, Gujarati, Gurmukhi, Tamil, Telugu, ...) names it: no model is needed.
3. A fast path for scripts many languages share (Latin, Cyrillic, Arabic, Devanagari): the most
   frequent words of each language's reference text (`profiles.json`) are counted in the first
   `max_chars`; a clear winner by a wide margin is taken.
4. Otherwise lingua, over the languages of that script (its models ship in its wheel). Its
   confidence is recorded; below `min_confidence`, or with fewer than `min_letters`, it is `und`.

Mixed documents: paragraphs (up to `max_chunks`) are identified on their own by script and fast
path; the main language is the one of most characters, and the others' shares are kept in `mix`.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixline.curation.lang import scripts
from mixline.curation.lang.text import WORD

PROFILES = Path(__file__).parent / "profiles.json"

# Scripts that name their language (lingua's, or ISO 639-1 codes outside lingua's 75).
SCRIPT_LANG = {"Hang": "ko", "Kore": "ko", "Jpan": "ja", "Hira": "ja", "Kana": "ja", "Hani": "zh", "Thai": "th",
               "Grek": "el", "Hebr": "he", "Geor": "ka", "Armn": "hy", "Gujr": "gu", "Guru": "pa", "Taml": "ta",
               "Telu": "te", "Beng": "bn", "Knda": "kn", "Mlym": "ml", "Sinh": "si", "Laoo": "lo", "Khmr": "km",
               "Mymr": "my", "Orya": "or", "Tibt": "bo", "Thaa": "dv", "Mong": "mn", "Syrc": "syr"}
# Languages lingua knows, per shared script.
SHARED = {
    "Cyrl": ("be", "bg", "kk", "mk", "mn", "ru", "sr", "uk"),
    "Arab": ("ar", "fa", "ur"),
    "Deva": ("hi", "mr"),
    "Latn": ("af", "az", "bs", "ca", "cs", "cy", "da", "de", "en", "eo", "es", "et", "eu", "fi", "fr", "ga", "hr",
             "hu", "id", "is", "it", "la", "lg", "lt", "lv", "mi", "ms", "nb", "nl", "nn", "pl", "pt", "ro", "sk",
             "sl", "sn", "so", "sq", "st", "sv", "sw", "tl", "tn", "tr", "ts", "vi", "xh", "yo", "zu"),
}
CODE_LINE = re.compile(
    r"^\s*(?:(?:def|class|import|from|return|elif|var|let|const|function|public|private|static|void|package|"
    r"#include|#define|using|namespace|fn|impl|struct|enum)\s+[\w.<>*:\"]+"
    r"|(?:if|for|while|switch|catch)\s*\(.*\)\s*\{?$|(?:else|try|finally)\s*:?\{?$"
    r"|[{}\[\]();]+$|.*[;{]$|.*\)\s*:$|[\w.\[\]]+\s*(?:[-+*/|&]?=|:=)\s*\S.*$|.*(?:==|!=|=>|->|&&|\|\|).*$"
    r"|(?://|/\*|\*/|#!|#\s|\"\"\"|\'\'\'|@\w+)|\s{4,}.*[,(\[:]$).*")
# CODE_LINE without its alternatives of the form `.*X$`, which backtrack over long lines (and over
# runs of leading spaces); `code_line` tests those with string methods, with the same result.
_CODE_REST = re.compile(
    r"^\s*(?:(?:def|class|import|from|return|elif|var|let|const|function|public|private|static|void|package|"
    r"#include|#define|using|namespace|fn|impl|struct|enum)\s+[\w.<>*:\"]+"
    r"|(?:if|for|while|switch|catch)\s*\(.*\)\s*\{?$|(?:else|try|finally)\s*:?\{?$"
    r"|[{}\[\]();]+$|[\w.\[\]]+\s*(?:[-+*/|&]?=|:=)\s*\S.*$"
    r"|(?://|/\*|\*/|#!|#\s|\"\"\"|\'\'\'|@\w+))")
_OPERATORS = ("==", "!=", "=>", "->", "&&", "||")


def code_line(line: str) -> bool:
    """Whether a line (without line breaks, not blank) matches CODE_LINE."""
    last = line[-1]
    if last in ";{" or any(op in line for op in _OPERATORS):
        return True
    if last in ",([:" and len(line) - len(line.lstrip()) >= 4:
        return True
    if last == ":" and line[:-1].rstrip().endswith(")"):
        return True
    return _CODE_REST.match(line) is not None


# Words in Latin and Cyrillic text, where Python's \w is enough (and faster than Unicode properties).
_SIMPLE_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_ASCII_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # the same on lowercased ASCII text, by ranges
# Languages close enough that a paragraph's guess between them is noise, not a second language.
CLOSE = ({"ms", "id"}, {"bs", "hr", "sr"}, {"nb", "nn", "da"})


@dataclass(frozen=True)
class Language:
    lang: str  # ISO 639-1 (or 639-3: syr, zxx); `und` when unknown
    script: str  # ISO 15924; Zyyy when there are no letters
    score: float  # confidence in [0, 1]
    mix: dict[str, float] = field(default_factory=dict)  # other languages' share of characters (>= min_share)
    method: str = "lingua"  # script, words, lingua, code, none

    def as_dict(self) -> dict[str, Any]:
        return {"lang": self.lang, "script": self.script, "score": self.score, "mix": self.mix, "method": self.method}


@functools.lru_cache(maxsize=1)
def profiles() -> dict[str, dict[str, Any]]:
    return dict(json.loads(PROFILES.read_text(encoding="utf-8")))


def code_share(text: str, min_lines: int = 4) -> float:
    """The share of characters (of the first 8,000) in lines that look like source code."""
    if "\n" not in text:
        return 0.0
    lines = [ln for ln in text[:8000].splitlines() if ln.strip()]
    if len(lines) < min_lines:
        return 0.0
    code = [ln for ln in lines if code_line(ln)]
    if len(code) < 0.2 * len(lines):
        return 0.0
    return sum(map(len, code)) / max(1, sum(map(len, lines)))


def looks_like_code(text: str, share: float = 0.5) -> bool:
    return code_share(text) >= share


class Identifier:
    """Identifies batches of texts; build one per run (lingua's models load on first use)."""

    def __init__(self, max_chars: int = 1000, min_confidence: float = 0.2, min_letters: int = 10,
                 fast_min_share: float = 0.08, fast_margin: float = 2.0, max_chunks: int = 8,
                 min_share: float = 0.1, detect_code: bool = True) -> None:
        self.max_chars, self.min_confidence, self.min_letters = max_chars, min_confidence, min_letters
        self.fast_min_share, self.fast_margin = fast_min_share, fast_margin
        self.max_chunks, self.min_share, self.detect_code = max_chunks, min_share, detect_code
        self._words: dict[str, dict[str, tuple[str, ...]]] = {}
        prof = profiles()
        for script, langs in SHARED.items():
            index: dict[str, list[str]] = {}
            for lang in langs:
                for w in prof.get(lang, {}).get("lid_words", []):
                    index.setdefault(w, []).append(lang)
            self._words[script] = {w: tuple(v) for w, v in index.items()}
        self._lingua: dict[str, Any] = {}

    def _detector(self, script: str) -> Any:
        if script not in self._lingua:
            from lingua import IsoCode639_1, LanguageDetectorBuilder
            from lingua import Language as L

            langs = [L.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in SHARED[script]]
            self._lingua[script] = LanguageDetectorBuilder.from_languages(*langs).with_low_accuracy_mode().build()
        return self._lingua[script]

    def fast(self, text: str, script: str) -> tuple[str | None, float]:
        """The language whose frequent words cover the text by a wide margin, with a confidence; else None."""
        index = self._words.get(script)
        if not index:
            return None, 0.0
        low = text.lower()
        rx = (_ASCII_WORD if low.isascii() else _SIMPLE_WORD) if script in ("Latn", "Cyrl") else WORD
        toks = rx.findall(low)
        if len(toks) < 8:
            return None, 0.0
        # Counted per distinct word (in order of first occurrence, so ties break as a pass over the tokens would).
        c: Counter[str] = Counter()
        for w, k in Counter(toks).items():
            hit = index.get(w)
            if hit:
                for lang in hit:
                    c[lang] += k
        if not c:
            return None, 0.0
        top = c.most_common(2)
        best, n1 = top[0]
        n2 = top[1][1] if len(top) > 1 else 0
        if n1 / len(toks) >= self.fast_min_share and n1 >= self.fast_margin * max(n2, 1):
            return best, round(min(0.99, 1 - n2 / (n1 + n2)), 3)
        return None, 0.0

    def identify(self, texts: list[str]) -> list[Language]:
        out: list[Language | None] = [None] * len(texts)
        pending: dict[str, list[tuple[int, str, str, float]]] = {}
        code: dict[int, float] = {}
        for i, text in enumerate(texts):
            head = text[: self.max_chars]
            cs = code_share(text) if self.detect_code else 0.0
            counts = scripts.script_counts(head)
            script, share = scripts.main_script(counts)
            letters = sum(counts.values())
            if letters == 0:
                out[i] = Language("zxx", "Zyyy", 1.0, method="none")
            elif cs >= 0.5:
                out[i] = Language("zxx", script, round(cs, 3), method="code")
            elif script in SCRIPT_LANG:
                out[i] = Language(SCRIPT_LANG[script], script, round(share, 3), method="script")
            elif script not in SHARED or letters < self.min_letters:
                out[i] = Language("und", script, 0.0, method="none")
            else:
                if cs >= self.min_share:
                    code[i] = round(cs, 3)
                lang, conf = self.fast(head, script)
                if lang is not None:
                    out[i] = Language(lang, script, round(conf * share, 3), method="words")
                else:
                    pending.setdefault(script, []).append((i, head, script, share))
        for script, items in pending.items():
            values = self._detector(script).compute_language_confidence_values_in_parallel([h for _, h, _, _ in items])
            for (i, _, sc, share), conf in zip(items, values, strict=True):
                best = conf[0] if conf else None
                if best is None or best.value < self.min_confidence:
                    out[i] = Language("und", sc, round(best.value, 3) if best else 0.0, method="lingua")
                else:
                    out[i] = Language(best.language.iso_code_639_1.name.lower(), sc, round(best.value * share, 3))
        done = [x if x is not None else Language("und", "Zyyy", 0.0, method="none") for x in out]
        done = [self._mixed(t, r) for t, r in zip(texts, done, strict=True)]
        for i, cs in code.items():  # prose with code in it: the code's share is part of the mix
            done[i] = Language(done[i].lang, done[i].script, done[i].score, {**done[i].mix, "zxx": cs}, done[i].method)
        return done

    def _mixed(self, text: str, main: Language) -> Language:
        """The share of characters in paragraphs of another language (by script or by frequent words)."""
        if main.lang == "zxx" or "\n" not in text:
            return main
        paras = [p for p in text.split("\n") if len(p.strip()) >= 80]
        if len(paras) > self.max_chunks:  # spread over the document
            step = len(paras) / self.max_chunks
            paras = [paras[int(k * step)] for k in range(self.max_chunks)]
        if len(paras) < 2:
            return main
        chars: Counter[str] = Counter()
        for p in paras:
            counts = scripts.script_counts(p)
            sc, _ = scripts.main_script(counts)
            lang = main.lang
            if sc != main.script and sc in SCRIPT_LANG:
                lang = SCRIPT_LANG[sc]
            elif sc in SHARED:
                guess, _ = self.fast(p, sc)
                lang = guess or (main.lang if sc == main.script else "und")
                if any(lang in g and main.lang in g for g in CLOSE):
                    lang = main.lang
            chars[lang] += len(p)
        total = sum(chars.values())
        mix = {k: round(v / total, 3) for k, v in chars.most_common() if k != main.lang and v / total >= self.min_share}
        if not mix:
            return main
        top, n = chars.most_common(1)[0]
        if top != main.lang and n / total > 0.5:
            # Another language holds most of the document: it is the main one.
            mix = {k: round(v / total, 3) for k, v in chars.items() if k != top and v / total >= self.min_share}
            script = next((s for s, ls in SHARED.items() if top in ls), main.script)
            return Language(top, script, round(n / total, 3), mix, "words")
        return Language(main.lang, main.script, main.score, mix, main.method)
