"""Shared text statistics for the filters: words, lines, paragraphs, n-gram repetition."""

from __future__ import annotations

import re
from collections import Counter
from itertools import compress

# Close to spaCy's English tokenizer (which datatrove's Gopher filter uses): URLs, dotted
# names and numbers such as 3.5 or 10,000 stay whole, as do initials and "e.g."; so do "HTLV-1", "48,XXYY" and 12:30,
# while "and/or", "long-term" and "a:b" split where spaCy splits them (between letters);
# contractions split in two ("it", "'s"); "..." is one token, other punctuation one token
# per character. Each alternative matches without backtracking, and a lookahead guards
# each rare one, which keeps this one fast C-level pass over the text.
TOKEN = re.compile(
    r"https?://\S+?(?=[.,;:!?)\]\"']*(?:\s|$))"
    r"|(?=[A-Za-z]\.)(?<![\w.])(?:[A-Za-z]\.)+(?![\w.])"
    r"|\w+(?:(?=[.@/:,-])(?:[.@]|[/:](?=\d)|,(?=\d)|(?<=\d),|(?<=[^\W\d_])-(?=\d)|(?<=\d)-(?=[^\W\d_]))\w+)*"
    r"|['’]\w+"
    r"|\.\.\.|[^\w\s]"
)
NUMBER = re.compile(r"[\d.,]+")
WORD = re.compile(r"[^\W_]+")
PUNCT_END = (".", "!", "?", '"', "'", "”", "’", "…", ":", ";", ")")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def is_symbol(tok: str) -> bool:
    """A token with no letter or digit."""
    return not any(c.isalnum() for c in tok)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines()]


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def duplicate_fraction(items: list[str]) -> tuple[float, float]:
    """Share of items that repeat an earlier one, and share of characters in them."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup = dup_chars = 0
    total_chars = sum(len(x) for x in items) or 1
    for x in items:
        if x in seen:
            dup += 1
            dup_chars += len(x)
        else:
            seen.add(x)
    return dup / len(items), dup_chars / total_chars


def ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    """Every word n-gram in order, built in C (zip over shifted lists)."""
    return list(zip(*(words[k:] for k in range(n)), strict=False))


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters covered by the most frequent word n-gram, over all word characters."""
    if len(words) < n:
        return 0.0
    gram, count = Counter(ngrams(words, n)).most_common(1)[0]
    if count < 2:
        return 0.0
    total = sum(map(len, words)) or 1
    return sum(map(len, gram)) * count / total


def duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters inside word n-grams that occur more than once (each character counted once).

    A pass from the left: an n-gram seen before marks its n words and the pass jumps past
    them; the n-grams it jumps over are not remembered. Each n-gram is named by the position
    where it first occurs, so the pass compares integers, and it walks only between the
    positions whose n-gram occurred earlier (any other one is new).
    """
    if len(words) < n:
        return 0.0
    grams = ngrams(words, n)
    first: dict[tuple[str, ...], int] = {}
    gid = [first.setdefault(g, i) for i, g in enumerate(grams)]
    if len(first) == len(grams):
        return 0.0  # no n-gram occurs twice
    repeats = [i for i, g in enumerate(gid) if g != i]
    seen = bytearray(len(grams))
    marked = bytearray(len(words))
    i = 0
    for c in repeats:
        if c < i:
            continue  # jumped over
        seen[i:c] = b"\x01" * (c - i)  # new n-grams, remembered
        if seen[gid[c]]:
            marked[c:c + n] = b"\x01" * n
            i = c + n
        else:
            seen[gid[c]] = 1
            i = c + 1
    total = sum(map(len, words)) or 1
    return sum(map(len, compress(words, marked))) / total
