"""A memory-mapped adjacency index of the edge table, written by `mixline optimize`.

Edges sorted by child key and by parent key, with the full ids and coded relation, run
and step, as numpy arrays beside the store file (`<store>.lineage/`). A lookup is a
binary search in mapped memory, microseconds instead of DuckDB block reads. Edges added
after the index was built have row ids at or past its watermark; callers scan that tail
in SQL, so the index is never stale, only less complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from mixline.store.store import Store

ARRAYS = ("child_key", "parent_key", "child_id", "parent_id", "relation", "run", "step", "by_parent", "parent_sorted",
          "sample_key", "sample_kind", "sample_depth")


def index_dir(store: Store) -> Path | None:
    if store.path == ":memory:":
        return None
    if store.lake is not None:
        # A DuckLake store keeps the index under its data path (when that is a folder), so
        # every reader of the lake shares it; `optimize` writes it.
        from mixline.store.lake import local_data_path

        # The data path is fixed when the catalog is made; asked once per store (9 ms a time).
        if "data_path" not in store.attachments:
            store.attachments["data_path"] = local_data_path(store.con)
        data = store.attachments["data_path"]
        return None if data is None else data / "_mixline_lineage"
    return Path(store.path + ".lineage")


def _codes(values: list[Any]) -> tuple[np.ndarray, list[Any]]:
    vocab = sorted({v for v in values if v is not None}) + [None]
    pos = {v: i for i, v in enumerate(vocab)}
    return np.array([pos[v] for v in values], dtype=np.uint32), vocab


def build(store: Store) -> dict[str, int]:
    """Write the index from the (sorted) edge table; returns its size."""
    folder = index_dir(store)
    if folder is None:
        return {"edges": 0}
    folder.mkdir(exist_ok=True)
    t = store.execute("SELECT child_key, parent_key, child_id, parent_id, relation, run_id, step FROM edges ORDER BY rowid").to_arrow_table()
    n = t.num_rows
    arrays: dict[str, np.ndarray] = {
        "child_key": t.column("child_key").to_numpy(), "parent_key": t.column("parent_key").to_numpy(),
        "child_id": np.frombuffer(bytes.fromhex("".join(t.column("child_id").to_pylist())), dtype="S16") if n else np.empty(0, "S16"),
        "parent_id": np.frombuffer(bytes.fromhex("".join(t.column("parent_id").to_pylist())), dtype="S16") if n else np.empty(0, "S16"),
    }
    vocab = {}
    for col, name in (("relation", "relation"), ("run_id", "run"), ("step", "step")):
        arrays[name], vocab[name] = _codes(t.column(col).to_pylist())
    order = np.argsort(arrays["parent_key"], kind="stable")
    arrays["by_parent"] = order.astype(np.int64)
    arrays["parent_sorted"] = arrays["parent_key"][order]
    s = store.execute("SELECT sample_id, kind, synth_depth FROM samples ORDER BY sample_id").to_arrow_table()
    keys = np.array([int(x[:16], 16) for x in s.column("sample_id").to_pylist()], dtype=np.uint64)
    o = np.argsort(keys, kind="stable")
    arrays["sample_key"] = keys[o]
    kind_codes, vocab["kind"] = _codes(s.column("kind").to_pylist())
    arrays["sample_kind"] = kind_codes[o]
    arrays["sample_depth"] = np.asarray(s.column("synth_depth").to_numpy(), dtype=np.int32)[o]
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr))
    (folder / "meta.json").write_text(json.dumps({"edges": n, "samples": s.num_rows, "vocab": vocab}))
    return {"edges": n}


class LineageIndex:
    def __init__(self, folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        self.edges = int(meta["edges"])
        self.vocab = meta["vocab"]
        self.a = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        self.has_tail = False

    @classmethod
    def open(cls, store: Store, edge_count: int | None = None) -> LineageIndex | None:
        """The store's index, if `optimize` wrote one that still matches the edge table.

        The mapped arrays are kept on the Store object, so a process that traces many
        samples opens them once.
        """
        folder = index_dir(store)
        if folder is None or not (folder / "meta.json").exists():
            return None
        idx = store.attachments.get("lineage_index")
        if not isinstance(idx, LineageIndex):
            idx = cls(folder)
            store.attachments["lineage_index"] = idx
        # Rows before the watermark must be the rows the index was built from.
        total = int(store.scalar("SELECT count(*) FROM edges") if edge_count is None else edge_count)
        if total < idx.edges:
            return None
        idx.has_tail = total > idx.edges
        return idx

    def _rows(self, rows: np.ndarray) -> list[tuple[str, str, str, str, str | None]]:
        a, v = self.a, self.vocab
        return [(a["child_id"][r].tobytes().hex(), a["parent_id"][r].tobytes().hex(), v["relation"][a["relation"][r]],
                 v["run"][a["run"][r]], v["step"][a["step"][r]]) for r in rows.tolist()]

    def by_child(self, keys: np.ndarray) -> list[tuple[str, str, str, str, str | None]]:
        ck = self.a["child_key"]
        lo, hi = np.searchsorted(ck, keys, "left"), np.searchsorted(ck, keys, "right")
        rows = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]) if len(keys) else np.empty(0, np.int64)
        return self._rows(rows.astype(np.int64))

    def by_parent(self, keys: np.ndarray) -> np.ndarray:
        ps = self.a["parent_sorted"]
        lo, hi = np.searchsorted(ps, keys, "left"), np.searchsorted(ps, keys, "right")
        pos = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]) if len(keys) else np.empty(0, np.int64)
        return np.asarray(self.a["by_parent"][pos.astype(np.int64)])

    def children(self, keys: np.ndarray) -> list[tuple[str, int, str, str]]:
        """(child id, parent key, relation, run) of edges out of the given parent keys."""
        rows = self.by_parent(keys)
        a, v = self.a, self.vocab
        ids = a["child_id"][rows]
        hexes = ids.tobytes().hex()
        return [(hexes[32 * i: 32 * i + 32], int(a["parent_key"][r]), v["relation"][a["relation"][r]], v["run"][a["run"][r]])
                for i, r in enumerate(rows.tolist())]

    def scrubbed_children(self, sample_id: str) -> list[str]:
        rows = self.by_parent(np.array([int(sample_id[:16], 16)], dtype=np.uint64))
        return [c for c, p, rel, _, _ in self._rows(rows) if p == sample_id and rel == "scrubbed_from"]

    def sample_info(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        keys = np.array([int(i[:16], 16) for i in ids], dtype=np.uint64)
        sk = self.a["sample_key"]
        pos = np.searchsorted(sk, keys)
        out = {}
        for i, p in zip(ids, pos.tolist(), strict=True):
            if p < len(sk) and sk[p] == int(i[:16], 16):
                out[i] = (self.vocab["kind"][self.a["sample_kind"][p]], int(self.a["sample_depth"][p]))
        return out
