"""Deterministic ids: content hashes for samples, canonical-JSON hashes for configs.

A sample id is the first 128 bits of SHA-256 over its content, so the same text gets
the same id on every machine. DuckDB's `sha256()` computes the same value in bulk.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from mixline.errors import LineageError

ID_HEX_CHARS = 32


def content_id(content: str) -> str:
    """The id of a piece of content (a document's text, or a conversation's canonical JSON)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:ID_HEX_CHARS]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal configs hash equally."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise LineageError(
            f"cannot hash config {obj!r}: {exc}; pass only JSON-serialisable values "
            "(str, int, float, bool, None, lists and dicts)"
        ) from exc


def config_hash(config: Mapping[str, Any]) -> str:
    """The hash of a resolved config: independent of key order."""
    return hashlib.sha256(canonical_json(dict(config)).encode("utf-8")).hexdigest()[:16]


def step_id(name: str, version: int, params: Mapping[str, Any], parents: list[str]) -> str:
    """Id of a derived thing: parents, the versioned step name and its sorted parameters."""
    payload = canonical_json(
        {"step": f"{name}@v{version}", "params": dict(params), "parents": sorted(parents)}
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:ID_HEX_CHARS]


def new_run_id(config_hash_value: str) -> str:
    """A run is an event, not a recomputable thing: its id is time-ordered plus the config hash."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    salt = hashlib.sha256(f"{time.time_ns()}:{os.getpid()}".encode()).hexdigest()[:6]
    return f"run-{stamp}-{config_hash_value[:8]}-{salt}"


def content_ids(values: Any) -> list[str | None]:
    """`content_id` over an Arrow string array, hashing its UTF-8 buffer without copies."""
    import numpy as np
    import pyarrow as pa

    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return [None if v is None else content_id(v) for v in arr.to_pylist()]
    if len(arr) == 0:
        return []
    bufs = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offs = np.frombuffer(bufs[1], dtype=width)[arr.offset : arr.offset + len(arr) + 1].tolist()
    data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
    sha = hashlib.sha256
    return [sha(data[a:b]).hexdigest()[:ID_HEX_CHARS] for a, b in zip(offs[:-1], offs[1:], strict=True)]
