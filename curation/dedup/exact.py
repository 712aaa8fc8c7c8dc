"""Exact dedup on normalised text (case, punctuation, whitespace and Unicode forms folded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from mixline.curation.base import Clusters, GlobalStep, StepParams, Verdicts, rows_and_keys
from mixline.curation.dedup.unionfind import pairs_from_groups, resolve
from mixline.curation.normalize import normal_form
from xxhash import xxh3_64_intdigest


@dataclass(frozen=True)
class ExactParams(StepParams):
    normalize: bool = True


class ExactDedup(GlobalStep):
    """One sample per normalised text; the others are dropped naming the one kept."""

    name = "exact_dedup"
    Params = ExactParams

    def features(self, batch: pa.Table) -> pa.Table:
        p: ExactParams = self.params  # type: ignore[assignment]
        texts = batch.column("text").to_pylist()
        keys = [xxh3_64_intdigest((normal_form(t) if p.normalize else t).encode()) for t in texts]
        return pa.table({"sample_id": batch.column("sample_id"), "key": pa.array(keys, pa.uint64())})

    def shuffle_rows(self, features: pa.Table) -> pa.Table:
        return pa.table({"row": pa.array(np.arange(features.num_rows), pa.int64()), "key": features.column("key")})

    def pairs_among(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        row, key = rows_and_keys(rows)
        a, b = pairs_from_groups(key)
        return row[a], row[b]

    def resolve_labels(self, features: pa.Table, labels: np.ndarray, order: np.ndarray,
                       anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                       depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        ids = features.column("sample_id").to_pylist()
        return resolve(labels, order, ids, kinds, depths, "exact_duplicate_of", anchors)
