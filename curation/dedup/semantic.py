"""Semantic dedup (SemDeDup): MiniLM embeddings, k-means partitions, cosine threshold.

Embeddings come from the store's cache (no text is embedded twice by the same model). On a
CPU they run on ONNX Runtime by default (`backend: onnx`: torch's vectors, about 1.5x its
speed per core); `backend: onnx-int8` is faster again but moves borderline pairs (see
benchmarks/RESULTS.md, semantic dedup), and a GPU runs torch.
K-means splits the collection so that pairwise similarities are computed only inside a
partition, which keeps the cost near-linear in the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from mixline.curation.dedup.unionfind import resolve
from mixline.curation.embed import DEFAULT_MODEL, Embedder, cached_embeddings


@dataclass(frozen=True)
class SemanticParams(StepParams):
    threshold: float = 0.95
    model: str = DEFAULT_MODEL
    backend: str = "auto"  # onnx on a CPU, torch on a GPU; or torch, onnx, onnx-int8
    partition_size: int = 2000
    kmeans_iters: int = 10
    seed: int = 0


class SemanticDedup(GlobalStep):
    """Pairs above the cosine threshold inside a k-means partition are duplicates."""

    name = "semantic_dedup"
    # v2: embeddings from ONNX Runtime on a CPU by default, and an int8 backend; the fp32
    # vectors match torch's to 1e-5, so only a pair right at the threshold can change.
    version = 2
    Params = SemanticParams
    requires = ("sentence_transformers",)
    columns = ("content_hash",)

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: SemanticParams = self.params  # type: ignore[assignment]
        self.embedder = Embedder(p.model, backend=_backend(p.backend))
        self._store: Any = None

    def prepare(self, ctx: Any) -> None:
        self._store = ctx.store

    def features(self, batch: pa.Table) -> pa.Table:
        vecs = cached_embeddings(self._store, self.embedder, batch.column("content_hash").to_pylist(),
                                 batch.column("text").to_pylist())
        flat = pa.array(vecs.reshape(-1), pa.float32())
        return pa.table({"sample_id": batch.column("sample_id"),
                         "vec": pa.FixedSizeListArray.from_arrays(flat, vecs.shape[1])})

    shuffle_needs_all = True

    def __getstate__(self) -> dict[str, Any]:
        # A worker gets no store connection; it embeds without the cache (see features).
        return {**self.__dict__, "_store": None}

    def shuffle_rows(self, features: pa.Table) -> pa.Table:
        """Each sample keyed by its k-means partition (k-means needs every vector at once)."""
        p: SemanticParams = self.params  # type: ignore[assignment]
        n = features.num_rows
        if n == 0:
            return pa.table({"row": pa.array([], pa.int64()), "key": pa.array([], pa.uint64()), "vec": features.column("vec")})
        x = _vectors(features)
        parts = kmeans_partitions(x, max(1, int(np.ceil(n / p.partition_size))), p.kmeans_iters, p.seed)
        key = np.zeros(n, dtype=np.uint64)
        for c, part in enumerate(parts):
            key[part] = c
        return pa.table({"row": pa.array(np.arange(n), pa.int64()), "key": pa.array(key, pa.uint64()),
                         "vec": features.column("vec")})

    def pairs_among(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        p: SemanticParams = self.params  # type: ignore[assignment]
        row, key = rows_and_keys(rows)
        if not len(row):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        x = _vectors(rows)
        a_all, b_all = [], []
        for c in np.unique(key).tolist():
            part = np.flatnonzero(key == c)
            if len(part) < 2:
                continue
            sims = x[part] @ x[part].T
            iu, ju = np.nonzero(np.triu(sims >= p.threshold, k=1))
            a_all.append(row[part[iu]])
            b_all.append(row[part[ju]])
        return concat_pairs(a_all, b_all)

    def resolve_labels(self, features: pa.Table, labels: np.ndarray, order: np.ndarray,
                       anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                       depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        if features.num_rows == 0:
            return Verdicts.from_reasons([]), Clusters()
        ids = features.column("sample_id").to_pylist()
        return resolve(labels, order, ids, kinds, depths, "semantic_duplicate_of", anchors)


def _backend(name: str) -> str:
    if name != "auto":
        return name
    from mixline.curation.embed import _default_device

    return "torch" if _default_device() == "cuda" else "onnx"


def _vectors(t: pa.Table) -> np.ndarray:
    return t.column("vec").combine_chunks().flatten().to_numpy().reshape(t.num_rows, -1).astype(np.float32)


def kmeans_partitions(x: np.ndarray, k: int, iters: int, seed: int) -> list[np.ndarray]:
    """Spherical k-means; returns the member indices of each partition."""
    n = len(x)
    if k <= 1 or n <= k:
        return [np.arange(n)]
    rng = np.random.default_rng(seed)
    centers = x[rng.choice(n, size=k, replace=False)].copy()
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iters):
        assign = np.argmax(x @ centers.T, axis=1)
        for c in range(k):
            members = x[assign == c]
            if len(members):
                v = members.sum(axis=0)
                centers[c] = v / (np.linalg.norm(v) or 1.0)
    return [np.flatnonzero(assign == c) for c in range(k)]
