"""Drop samples that share a long word n-gram with any eval item ingested with --kind eval.

Text is normalised to lowercase words without punctuation, so case, whitespace,
punctuation and line-wrapping changes do not hide a copy. Eval items shorter than n
words match as a whole. A drop's reason names the eval item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.normalize import WordHasher, ngram_hashes, words
from mixline.store.select import validate_where


@dataclass(frozen=True)
class DecontamParams(StepParams):
    n: int = 13
    eval_where: str = "kind = 'eval'"
    min_item_words: int = 8


def _scale(text: str) -> int:
    from mixline.curation.lang import scripts
    from mixline.curation.lang.text import CHARS_PER_WORD

    if text.isascii():
        return 1
    script = scripts.script_of(text[:500])
    return int(round(CHARS_PER_WORD.get(script, 1.0))) if script in ("Thai", "Laoo", "Khmr", "Mymr", "Tibt") else 1


class Decontaminate(Filter):
    """n-gram overlap (13 by default) with eval items."""

    name = "decontaminate"
    Params = DecontamParams

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._index: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._items: list[str] = []

    def prepare(self, ctx: Any) -> None:
        p: DecontamParams = self.params  # type: ignore[assignment]
        where = validate_where(ctx.store, p.eval_where)
        rows = ctx.store.execute(
            f"""SELECT s.sample_id, s.source, s.text,
                   (SELECT any_value(o.original_id) FROM sample_origins o WHERE o.sample_id = s.sample_id) AS oid
                FROM samples s WHERE {where} ORDER BY s.sample_id"""
        ).fetchall()
        self.load_items([(f"{src}:{oid or sid}", text) for sid, src, text, oid in rows])

    def load_items(self, items: list[tuple[str, str]]) -> None:
        """Index eval items given as (label, text)."""
        p: DecontamParams = self.params  # type: ignore[assignment]
        self._items = [label for label, _ in items]
        docs = [words(t) for _, t in items]
        wh, counts = WordHasher()(docs)
        by_len: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        # In Thai, Lao, Khmer and Burmese every letter is a token: n words are n times the
        # script's letters per word, so a common phrase is not taken for a copied item.
        scale = np.array([_scale(t) for _, t in items], dtype=np.int64)
        lengths = np.minimum(counts, p.n * scale)
        for size in sorted(set(lengths.tolist())):
            if size < p.min_item_words:
                continue
            h, d = ngram_hashes(wh, counts, size)
            sel = (lengths[d] == size) & (counts[d] >= p.min_item_words * scale[d])
            hs, ds = by_len.setdefault(size, ([], []))
            hs.append(h[sel])
            ds.append(d[sel])
        for size, (hs, ds) in by_len.items():
            h = np.concatenate(hs)
            d = np.concatenate(ds)
            o = np.argsort(h, kind="stable")
            self._index[size] = (h[o], d[o])

    @property
    def n_items(self) -> int:
        return len(self._items)

    def decide(self, batch: pa.Table) -> Verdicts:
        texts = batch.column("text").to_pylist()
        reasons: list[str | None] = [None] * len(texts)
        if not self._index:
            return Verdicts.from_reasons(reasons)
        wh, counts = WordHasher()([words(t) for t in texts])
        for size, (keys, items) in self._index.items():
            h, d = ngram_hashes(wh, counts, size)
            if len(h) == 0:
                continue
            # A doc shorter than `size` words yields a shorter gram; it cannot contain the item.
            long_enough = counts[d] >= size
            h, d = h[long_enough], d[long_enough]
            pos = np.searchsorted(keys, h)
            pos[pos == len(keys)] = 0
            hit = keys[pos] == h
            for doc, item in zip(d[hit].tolist(), items[pos[hit]].tolist(), strict=True):
                if reasons[doc] is None:
                    reasons[doc] = f"contaminated:{self._items[item]}"
        return Verdicts.from_reasons(reasons)
