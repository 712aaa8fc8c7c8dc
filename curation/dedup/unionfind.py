"""Connected components over pair lists, and choosing which copy of a cluster survives."""

from __future__ import annotations

import numpy as np
from mixline.curation.base import Clusters, Verdicts


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component label (smallest member index) of each of n items, given edges a[i]-b[i]."""
    parent = np.arange(n, dtype=np.int64)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = int(parent[root])
        while parent[x] != root:
            parent[x], x = root, int(parent[x])
        return root

    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        rx, ry = find(x), find(y)
        if rx != ry:
            if rx < ry:
                parent[ry] = rx
            else:
                parent[rx] = ry
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def pairs_from_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges linking consecutive items that share a key (enough to connect each group)."""
    if len(keys) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    same = np.flatnonzero(sk[1:] == sk[:-1])
    return order[same], order[same + 1]


def star_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges linking each item to the first item with its key. Unlike a chain, a pair
    that fails a later check cuts off only itself."""
    if len(keys) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.concatenate([[True], sk[1:] != sk[:-1]])
    first = order[np.flatnonzero(start)][np.cumsum(start) - 1]
    other = first != order
    return first[other], order[other]


def resolve(labels: np.ndarray, order: np.ndarray, ids: list[str], kinds: list[str] | None,
            depths: np.ndarray | None, reason: str, anchors: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
    """Keep the preferred member (lowest `order`) of each component; drop the rest.

    A dropped synthetic sample whose kept copy is human data is marked as memorisation.
    Anchors (samples kept by earlier runs) always win and get no new decisions.
    """
    n = len(labels)
    reasons: list[str | None] = [None] * n
    clusters = Clusters()
    rank = order.astype(np.float64).copy()
    if anchors is not None:
        rank[anchors] -= 1e18
    by_label: dict[int, list[int]] = {}
    for i, lab in enumerate(labels.tolist()):
        by_label.setdefault(lab, []).append(i)
    for members in by_label.values():
        if len(members) < 2:
            continue
        keep = min(members, key=lambda i: (rank[i], ids[i]))
        cid = ids[keep]
        for i in members:
            clusters.add(ids[i], cid, i == keep)
            if i == keep:
                continue
            memorised = depths is not None and depths[i] > 0 and depths[keep] == 0
            reasons[i] = f"{'memorised_' if memorised else ''}{reason}:{ids[keep]}"
    return Verdicts.from_reasons(reasons), clusters
