"""Writing systems: which script a text's letters are in (ISO 15924), counted in one C-level pass.

Each letter (and combining mark, which Indic scripts need) maps to a one-character script tag
through `str.translate`; everything else is deleted. Counting the tags gives the shares.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter

# (first, last, ISO 15924 code). Blocks, not the Unicode Script property, which is close
# enough for shares of letters; the Latin and Cyrillic supplements are included.
RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x024F, "Latn"), (0x0250, 0x02AF, "Latn"), (0x1E00, 0x1EFF, "Latn"), (0x2C60, 0x2C7F, "Latn"),
    (0xA720, 0xA7FF, "Latn"), (0xFF21, 0xFF5A, "Latn"),
    (0x0370, 0x03FF, "Grek"), (0x1F00, 0x1FFF, "Grek"),
    (0x0400, 0x052F, "Cyrl"), (0x1C80, 0x1C8F, "Cyrl"), (0x2DE0, 0x2DFF, "Cyrl"), (0xA640, 0xA69F, "Cyrl"),
    (0x0530, 0x058F, "Armn"), (0x0590, 0x05FF, "Hebr"), (0xFB1D, 0xFB4F, "Hebr"),
    (0x0600, 0x06FF, "Arab"), (0x0750, 0x077F, "Arab"), (0x08A0, 0x08FF, "Arab"), (0xFB50, 0xFDFF, "Arab"),
    (0xFE70, 0xFEFF, "Arab"), (0x0700, 0x074F, "Syrc"), (0x0780, 0x07BF, "Thaa"),
    (0x0900, 0x097F, "Deva"), (0x0980, 0x09FF, "Beng"), (0x0A00, 0x0A7F, "Guru"), (0x0A80, 0x0AFF, "Gujr"),
    (0x0B00, 0x0B7F, "Orya"), (0x0B80, 0x0BFF, "Taml"), (0x0C00, 0x0C7F, "Telu"), (0x0C80, 0x0CFF, "Knda"),
    (0x0D00, 0x0D7F, "Mlym"), (0x0D80, 0x0DFF, "Sinh"), (0x0E00, 0x0E7F, "Thai"), (0x0E80, 0x0EFF, "Laoo"),
    (0x0F00, 0x0FFF, "Tibt"), (0x1000, 0x109F, "Mymr"), (0x10A0, 0x10FF, "Geor"), (0x1C90, 0x1CBF, "Geor"),
    (0x1100, 0x11FF, "Hang"), (0x3130, 0x318F, "Hang"), (0xAC00, 0xD7AF, "Hang"),
    (0x1200, 0x139F, "Ethi"), (0x1780, 0x17FF, "Khmr"), (0x1800, 0x18AF, "Mong"),
    (0x3040, 0x309F, "Hira"), (0x30A0, 0x30FF, "Kana"), (0x31F0, 0x31FF, "Kana"), (0xFF66, 0xFF9F, "Kana"),
    (0x3400, 0x4DBF, "Hani"), (0x4E00, 0x9FFF, "Hani"), (0xF900, 0xFAFF, "Hani"), (0x20000, 0x2FA1F, "Hani"),
)
# Scripts whose words are not separated by spaces: rules count characters, and dedup shingles
# and decontamination n-grams are made of characters, in them.
UNSPACED = frozenset({"Hani", "Hira", "Kana", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})
# A regex class of those scripts' letters, for splitting them into characters.
_UNSPACED_CLASS = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b, s in RANGES if s in UNSPACED)
UNSPACED_CHAR = re.compile(f"[{_UNSPACED_CLASS}]")
# Punctuation that ends a sentence, in the scripts that have it (Thai, Lao and Khmer mostly end
# one with a space; their per-language profile turns the punctuated-lines rule off).
SENTENCE_END = (".", "!", "?", '"', "'", "”", "’", "…", ":", ";", ")", "»", "。", "！", "？", "｡", "」", "』", "）",
                "।", "॥", "۔", "؟", "؛", "։", "።", "፧", "჻", "၊", "။", "។", "៕", "་", "།", "¿", "¡", "«", "、")


@functools.lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    tags = sorted({s for _, _, s in RANGES})
    code = {s: chr(0xE000 + i) for i, s in enumerate(tags)}  # private-use characters as tags
    table: dict[int, str] = {}
    for a, b, s in RANGES:
        for cp in range(a, b + 1):
            cat = unicodedata.category(chr(cp))
            if cat[0] in "LM":
                table[cp] = code[s]
    return table


@functools.lru_cache(maxsize=1)
def _tags() -> dict[str, str]:
    tags = sorted({s for _, _, s in RANGES})
    return {chr(0xE000 + i): s for i, s in enumerate(tags)}


class _Deleter(dict):  # type: ignore[type-arg]
    """A translate table: letters of known scripts become their tag, everything else is deleted."""

    def __init__(self, table: dict[int, str]) -> None:
        super().__init__(table)

    def __missing__(self, key: int) -> None:
        return None


@functools.lru_cache(maxsize=1)
def _deleter() -> _Deleter:
    return _Deleter(_table())


# Every ASCII byte that is not a letter, for counting letters with bytes.translate (C speed).
_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())


def script_counts(text: str) -> Counter[str]:
    """Letters per script (ISO 15924) in the text."""
    if text.isascii():
        n = len(text.encode("ascii").translate(None, _ASCII_NON_LETTERS))
        return Counter({"Latn": n}) if n else Counter()
    tags = _tags()
    return Counter({tags[t]: n for t, n in Counter(text.translate(_deleter())).items()})


def main_script(counts: Counter[str]) -> tuple[str, float]:
    """The script of most letters, and its share; Han with kana is Japanese (Jpan), with Hangul Korean (Kore)."""
    total = sum(counts.values())
    if not total:
        return "Zyyy", 0.0
    kana = counts.get("Hira", 0) + counts.get("Kana", 0)
    han = counts.get("Hani", 0)
    if kana and (kana + han) / total >= 0.5 and kana >= 0.05 * (kana + han):
        return "Jpan", (kana + han) / total
    if counts.get("Hang", 0) and (counts["Hang"] + han) / total >= 0.5 and counts["Hang"] >= han:
        return "Kore", (counts["Hang"] + han) / total
    script, n = counts.most_common(1)[0]
    return script, n / total


def script_of(text: str) -> str:
    return main_script(script_counts(text))[0]


def is_unspaced(script: str | None) -> bool:
    return script in UNSPACED


def split_unspaced(text: str) -> str:
    """The text with every letter of a script without spaces standing alone: 'a 中文b' -> 'a  中  文 b'."""
    if text.isascii():
        return text
    return UNSPACED_CHAR.sub(r" \g<0> ", text)
