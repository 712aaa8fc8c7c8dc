"""MinHash LSH near-dedup: word shingles, signatures, bands, connected components.

Shingles are hashed in bulk with numpy (each distinct word hashed once per batch), and
signatures come from rensa's Rust MinHash over the flat shingle-hash buffer, so no
per-shingle Python objects are made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from mixline.curation.base import (
    Clusters,
    GlobalStep,
    StepParams,
    Verdicts,
    concat_pairs,
    rows_and_keys,
)
from mixline.curation.dedup.unionfind import pairs_from_groups, resolve, star_pairs
from mixline.curation.normalize import WordHasher, ngram_hashes, words

from mixline.errors import ConfigError


@dataclass(frozen=True)
class MinHashParams(StepParams):
    shingle_size: int = 5
    num_perm: int = 112
    bands: int = 14
    rows: int = 8
    seed: int = 1
    # Keep a candidate pair only if its signatures agree on at least this share of
    # positions (an estimate of Jaccard similarity). Off by default, as in datatrove.
    # Templated corpora need it: one chance band collision between two templates
    # otherwise chains hundreds of documents into one cluster.
    verify_threshold: float | None = None
    # A dropped sample must itself be a near-duplicate of the copy that is kept: each cluster
    # is split into stars around its preferred members, at this estimated Jaccard similarity.
    # Without it, A~B~C chains link templated documents (symptom lists of different diseases)
    # into one cluster and all but one are dropped.
    split_chains: bool = True
    split_threshold: float = 0.7


class MinHashDedup(GlobalStep):
    """Near-duplicates share at least one band of their MinHash signature.

    With 14 bands of 8 rows, pairs at Jaccard 0.8 collide with probability 0.93 and pairs
    at 0.5 with 0.05 (the threshold is about (1/bands)^(1/rows) = 0.72).
    """

    name = "minhash_dedup"
    version = 2
    Params = MinHashParams
    requires = ("rensa",)

    def __init__(self, params: StepParams | None = None, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        p: MinHashParams = self.params  # type: ignore[assignment]
        if p.bands * p.rows != p.num_perm:
            raise ConfigError(f"step minhash_dedup: bands x rows ({p.bands} x {p.rows}) must equal num_perm ({p.num_perm})")

    def signatures(self, texts: list[str]) -> np.ndarray:
        import rensa

        p: MinHashParams = self.params  # type: ignore[assignment]
        wh, counts = WordHasher()([words(t) for t in texts])
        sh, doc = ngram_hashes(wh, counts, p.shingle_size)
        per = np.bincount(doc, minlength=len(texts))
        offsets = np.concatenate([[0], np.cumsum(per)]).astype(np.uint64)
        if len(sh) == 0:
            return np.zeros((len(texts), p.num_perm), dtype=np.uint64)
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(sh, offsets, p.num_perm, p.seed)
        sig = np.asarray(matrix.to_rows(), dtype=np.uint64).reshape(len(texts), p.num_perm)
        sig[per == 0] = 0
        return sig

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One 64-bit key per (doc, band)."""
        p: MinHashParams = self.params  # type: ignore[assignment]
        with np.errstate(over="ignore"):
            sig = sig.reshape(len(sig), p.bands, p.rows)
            acc = np.full((len(sig), p.bands), np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for r in range(p.rows):
                acc = (acc ^ sig[:, :, r]) * np.uint64(0xBF58476D1CE4E5B9)
                acc ^= acc >> np.uint64(29)
            acc ^= np.arange(p.bands, dtype=np.uint64)[None, :] * np.uint64(0x94D049BB133111EB)
        return acc

    def features(self, batch: pa.Table) -> pa.Table:
        p: MinHashParams = self.params  # type: ignore[assignment]
        sig = self.signatures(batch.column("text").to_pylist())
        keys = self.band_keys(sig)
        flat = pa.array(keys.reshape(-1), pa.uint64())
        cols = {"sample_id": batch.column("sample_id"), "bands": pa.FixedSizeListArray.from_arrays(flat, keys.shape[1])}
        if p.verify_threshold is not None or p.split_chains:
            # The low 32 bits of each value: two different values agree there by chance
            # with odds of 1 in 4 billion, at half the memory.
            low = (sig & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            cols["sig"] = pa.FixedSizeListArray.from_arrays(pa.array(low.reshape(-1), pa.uint32()), p.num_perm)
        return pa.table(cols)

    def verify(self, features: pa.Table, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The candidate pairs whose estimated Jaccard similarity reaches the threshold."""
        p: MinHashParams = self.params  # type: ignore[assignment]
        if p.verify_threshold is None or not len(a):
            return a, b
        keep = self._agree(_sig_matrix(features, p.num_perm), a, b)
        return a[keep], b[keep]

    def _agree(self, sig: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        p: MinHashParams = self.params  # type: ignore[assignment]
        keep = np.empty(len(a), dtype=bool)
        for i in range(0, len(a), 100_000):  # bounded memory for big candidate lists
            keep[i:i + 100_000] = (sig[a[i:i + 100_000]] == sig[b[i:i + 100_000]]).mean(axis=1) >= p.verify_threshold
        return keep

    def verify_pairs(self, features: pa.Table, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p: MinHashParams = self.params  # type: ignore[assignment]
        if p.verify_threshold is None or not len(a):
            return a, b
        pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
        return self.verify(features, pairs[:, 0], pairs[:, 1])

    def task_rows(self, features: pa.Table) -> pa.Table:
        """With a verify threshold, each band row carries its sample's signature, so that a
        pair is checked in the task that finds it."""
        rows = self.shuffle_rows(features)
        p: MinHashParams = self.params  # type: ignore[assignment]
        if p.verify_threshold is None or rows.num_rows == 0:
            return rows
        return rows.append_column("sig", features.column("sig").take(rows.column("row")))

    def task_pairs(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.pairs_among(rows)
        p: MinHashParams = self.params  # type: ignore[assignment]
        if p.verify_threshold is None or not len(a):
            return a, b
        row = rows.column("row").to_numpy()
        uniq, first = np.unique(row, return_index=True)
        sig = _sig_matrix(rows.take(pa.array(first)), p.num_perm)
        pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
        a, b = pairs[:, 0], pairs[:, 1]
        keep = self._agree(sig, np.searchsorted(uniq, a), np.searchsorted(uniq, b))
        return a[keep], b[keep]

    def split(self, features: pa.Table, labels: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Split each component into stars: the best-ranked member left keeps every member
        whose signature agrees with its own on `split_threshold` of positions; repeat."""
        p: MinHashParams = self.params  # type: ignore[assignment]
        sig = _sig_matrix(features, p.num_perm)
        out = np.arange(len(labels), dtype=np.int64)
        order = np.lexsort((np.arange(len(labels)), rank, labels))
        bounds = np.flatnonzero(np.diff(labels[order])) + 1
        for members in np.split(order, bounds):
            if len(members) < 2:
                continue
            left = members  # already best rank first
            while len(left) > 1:
                rep = left[0]
                same = (sig[left] == sig[rep]).mean(axis=1) >= p.split_threshold
                same[0] = True
                out[left[same]] = rep
                left = left[~same]
            if len(left) == 1:
                out[left[0]] = left[0]
        return out

    def shuffle_rows(self, features: pa.Table) -> pa.Table:
        """One row per (sample, band) with the band's key; samples with no shingles never match."""
        p: MinHashParams = self.params  # type: ignore[assignment]
        n = features.num_rows
        bands = features.column("bands").combine_chunks().flatten().to_numpy().reshape(n, p.bands) if n else np.empty((0, p.bands), np.uint64)
        live = np.flatnonzero(bands.any(axis=1)) if n else np.zeros(0, np.int64)
        return pa.table({"row": pa.array(np.repeat(live, p.bands), pa.int64()),
                         "band": pa.array(np.tile(np.arange(p.bands, dtype=np.int16), len(live)), pa.int16()),
                         "key": pa.array(bands[live].reshape(-1), pa.uint64())})

    def pairs_among(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        p: MinHashParams = self.params  # type: ignore[assignment]
        row, key = rows_and_keys(rows)
        band = rows.column("band").to_numpy()
        find = star_pairs if p.verify_threshold is not None else pairs_from_groups
        a_all, b_all = [], []
        for j in np.unique(band).tolist():
            sel = np.flatnonzero(band == j)
            a, b = find(key[sel])
            a_all.append(row[sel[a]])
            b_all.append(row[sel[b]])
        return concat_pairs(a_all, b_all)

    def resolve_columns(self) -> tuple[str, ...]:
        p: MinHashParams = self.params  # type: ignore[assignment]
        return ("sig",) if p.split_chains else ()

    def resolve_labels(self, features: pa.Table, labels: np.ndarray, order: np.ndarray,
                       anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                       depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        p: MinHashParams = self.params  # type: ignore[assignment]
        if p.split_chains and features.num_rows:
            rank = order.astype(np.float64).copy()
            if anchors is not None:
                rank[anchors] -= 1e18
            labels = self.split(features, labels, rank)
        ids = features.column("sample_id").to_pylist()
        return resolve(labels, order, ids, kinds, depths, "near_duplicate_of", anchors)


def _sig_matrix(t: pa.Table, num_perm: int) -> np.ndarray:
    return t.column("sig").combine_chunks().flatten().to_numpy().reshape(t.num_rows, num_perm)
