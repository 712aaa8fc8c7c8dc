"""Text normalisation shared by dedup and decontamination, and fast word hashing."""

from __future__ import annotations

import re
import unicodedata
from itertools import chain

import numpy as np
from mixline.curation.lang.scripts import split_unspaced
from xxhash import xxh3_64_intdigest

# Punctuation of CJK and other scripts, which the byte table cannot see (it keeps every byte >= 128).
_CJK_PUNCT = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2010-\u2027\u2030-\u205e"
                        r"\u00a1-\u00bf\u0964\u0965\u06d4\u061f\u060c\u0589\u1362-\u1368\u0e2f\u0e5a\u0e5b\u17d4-\u17da]")

# Bytes that are not ASCII letters or digits become spaces; non-ASCII bytes stay (they are
# parts of UTF-8 letters in most text, and punctuation beyond ASCII is rare enough).
_TABLE = bytes((c if (48 <= c <= 57 or 97 <= c <= 122 or c >= 128) else 32) for c in range(256))
_MIX = [np.uint64(x) for x in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                               0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                               0x2545F4914F6CDD1D, 0x9FB21C651E98DF25, 0x94D049BB133111EB,
                               0xBF58476D1CE4E5B9, 0x87C37B91114253D5, 0x4CF5AD432745937F,
                               0x52DCE729DA3ED4BB)]


def _more_mix(n: int) -> list[np.uint64]:
    """Further odd multipliers (splitmix64), for n-grams of characters longer than 13."""
    out: list[np.uint64] = []
    x = 0x243F6A8885A308D3
    mask = (1 << 64) - 1
    while len(out) < n:
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(np.uint64((z ^ (z >> 31)) | 1))
    return out


_MIX += _more_mix(64 - len(_MIX))  # the first 13 stay: hashes of n <= 13 are unchanged


def words(text: str) -> list[bytes]:
    """Lowercased words with punctuation and whitespace removed, as UTF-8 bytes.

    In scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese) every
    character is a word, so shingles and n-grams are character n-grams there; their punctuation
    (。，、「」) is dropped like ASCII punctuation.
    """
    if not text.isascii():
        text = _CJK_PUNCT.sub(" ", split_unspaced(text))
    return text.lower().encode("utf-8").translate(_TABLE).split()


def normal_form(text: str) -> str:
    """Text for exact dedup: NFKC, lowercase, punctuation dropped, whitespace collapsed."""
    return b" ".join(words(unicodedata.normalize("NFKC", text))).decode("utf-8", "replace")


class WordHasher:
    """Maps words to stable 64-bit hashes (xxh3), in one C-level pass over all words."""

    def __call__(self, docs: list[list[bytes]]) -> tuple[np.ndarray, np.ndarray]:
        """Flat word hashes of all docs, and each doc's word count."""
        counts = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        # Hashing every occurrence is faster than looking each one up in a vocabulary:
        # a Python-level loop per word costs more than xxh3 on a short word.
        flat = np.fromiter(map(xxh3_64_intdigest, chain.from_iterable(docs)), dtype=np.uint64, count=int(counts.sum()))
        return flat, counts


def ngram_hashes(word_hashes: np.ndarray, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram inside each doc, and the doc index of each.

    A k-word sequence hashes to finalize(XOR_j(word_j * MIX_j) ^ k), so a doc shorter than
    n words contributes one gram, all of its words, that equals its k-gram elsewhere.
    """
    if n > len(_MIX):
        raise ValueError(f"n-grams longer than {len(_MIX)} words are not supported")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    total = int(counts.sum())
    out_h: list[np.ndarray] = []
    out_d: list[np.ndarray] = []
    with np.errstate(over="ignore"):
        if total >= n:
            m = total - n + 1
            h = word_hashes[:m] * _MIX[0]
            for j in range(1, n):
                h = h ^ (word_hashes[j : j + m] * _MIX[j])
            h = _finalize(h ^ np.uint64(n))
            doc = np.repeat(np.arange(len(counts)), counts)[:m]
            ok = np.arange(m) + n <= (starts + counts)[doc]
            out_h.append(h[ok])
            out_d.append(doc[ok])
        short = np.flatnonzero((counts > 0) & (counts < n))
        if len(short):
            hs = np.empty(len(short), dtype=np.uint64)
            for k, d in enumerate(short.tolist()):
                acc = np.uint64(counts[d])
                for j in range(int(counts[d])):
                    acc = acc ^ (word_hashes[starts[d] + j] * _MIX[j])
                hs[k] = acc
            out_h.append(_finalize(hs))
            out_d.append(short)
    if not out_h:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    return np.concatenate(out_h), np.concatenate(out_d)


def _finalize(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(31))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        return h ^ (h >> np.uint64(29))
