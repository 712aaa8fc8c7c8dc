"""A compact, exact set of sample ids for dedup during bulk writes.

Ids are 128-bit hex strings; here they are 16-byte numpy values in sorted runs, merged
like an LSM tree. Membership is a vectorised binary search per run, so checking a batch
against ten million existing ids costs milliseconds and 16 bytes per id, where an
anti-join in SQL would rescan the samples table for every batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mixline.store.store import Store

_DT = np.dtype("S16")


def to_keys(ids: Sequence[str]) -> np.ndarray:
    if not ids:
        return np.empty(0, dtype=_DT)
    return np.frombuffer(bytes.fromhex("".join(ids)), dtype=_DT)


class IdSet:
    def __init__(self, keys: np.ndarray | None = None) -> None:
        self._runs: list[np.ndarray] = []
        if keys is not None and len(keys):
            self._runs.append(np.sort(keys))

    @classmethod
    def from_store(cls, store: Store, table: str = "samples", column: str = "sample_id") -> IdSet:
        arr = store.execute(f"SELECT {column} FROM {table}").to_arrow_table().column(0)
        return cls(to_keys(arr.to_pylist()) if len(arr) else None)

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            idx = np.searchsorted(run, keys)
            idx[idx == len(run)] = len(run) - 1
            hit |= run[idx] == keys
        return hit

    def add(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        self._runs.append(np.sort(keys))
        # Merge runs of similar size so lookups stay at O(log n) runs.
        while len(self._runs) > 1 and len(self._runs[-1]) * 2 >= len(self._runs[-2]):
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(np.sort(np.concatenate([a, b]), kind="stable"))
