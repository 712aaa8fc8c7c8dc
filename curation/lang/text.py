"""Text statistics that work in every script: words (letters with their combining marks),
units (characters, in scripts without spaces), function-word hits and punctuated lines."""

from __future__ import annotations

import regex
from mixline.curation.lang import scripts

# A word: letters with their combining marks (which Python's \w splits Hindi and Bengali on),
# digits, and inner apostrophes or hyphens.
WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+)*")
# Rough characters per word in scripts without spaces, so that a word-count rule means about
# the same amount of text there (Chinese words average 1.5-2 characters; Thai, Lao, Khmer and
# Burmese words 4-5 letters and marks).
CHARS_PER_WORD = {"Hani": 1.6, "Jpan": 1.8, "Hira": 1.8, "Kana": 1.8, "Thai": 4.0, "Laoo": 4.0, "Khmr": 4.0,
                  "Mymr": 4.0, "Tibt": 3.0}


def word_tokens(text: str) -> list[str]:
    return WORD.findall(text)


def units(text: str, script: str | None) -> float:
    """Words, counted so that scripts without spaces compare: their letters over characters per word."""
    if not scripts.is_unspaced(script):
        return float(len(WORD.findall(text)))
    own = len(scripts.UNSPACED_CHAR.findall(text))
    rest = len(WORD.findall(scripts.UNSPACED_CHAR.sub(" ", text)))
    return own / CHARS_PER_WORD.get(script or "", 2.0) + rest


PUNCT_CHAR = regex.compile(r"[^\p{L}\p{M}\p{N}\s]")


def alpha_ratio(text: str, script: str | None) -> float:
    """Gopher's share of words with a letter among all tokens, where each punctuation character is a
    token as in datatrove's (spaCy's) English tokens; words are counted in every script."""
    words = WORD.findall(text)
    alpha = sum(1 for w in words if any(c.isalpha() for c in w))
    n = float(len(words))
    if scripts.is_unspaced(script):
        n = units(text, script)
        alpha = int(n - (len(words) - alpha))
    return alpha / max(1.0, n + len(PUNCT_CHAR.findall(text)))


def stop_hits(text: str, stop_words: list[str] | tuple[str, ...] | frozenset[str], unspaced: bool) -> int:
    """Occurrences of the function words: as words, or as substrings in a script without spaces."""
    if unspaced:
        return sum(text.count(w) for w in stop_words)
    pool = stop_words if isinstance(stop_words, frozenset) else frozenset(stop_words)
    return sum(1 for w in WORD.findall(text.lower()) if w in pool)


def line_punct_share(text: str) -> float:
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if not lines:
        return 0.0
    return sum(1 for ln in lines if ln.endswith(scripts.SENTENCE_END)) / len(lines)
