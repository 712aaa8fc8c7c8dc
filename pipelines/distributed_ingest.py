"""Ingest on Ray: each input path is read, validated and hashed by a task into Parquet
shards; the driver keeps exactly the samples an in-process ingest keeps, in input order.

The Ray plumbing (starting Ray, actor pools, the work folder) is `curation.distributed`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from mixline.curation.distributed import RayExecutor, publish, stash, unstash
from mixline.pipelines.ingest import HASHED, _validate, hash_rows
from mixline.pipelines.readers import BadRecord, read
from mixline.store.store import Store

BAD = pa.schema([("file", pa.string()), ("locator", pa.string()), ("reason", pa.string()), ("excerpt", pa.string()),
                 ("keys", pa.list_(pa.string()))])


def ingest_map(ex: RayExecutor, store: Store, paths: list[Path], fields: Any,
               opts: Any) -> Iterator[tuple[pa.Table, list[BadRecord], int]]:
    """Yields (hashed rows, bad records, bytes read so far) per input path, in input order."""
    digest = hashlib.sha256(repr(sorted(asdict(opts).items())).encode())
    for p in paths:
        st = p.stat() if p.exists() else None
        digest.update(f"{p}:{st.st_size if st else ''}:{st.st_mtime_ns if st else ''};".encode())
    folder = ex.work_folder(store, f"ingest-{digest.hexdigest()[:20]}")
    done = {int(p.name.split("-")[1]) for p in folder.glob("unit-*") if p.is_dir() and "." not in p.name}
    todo = [i for i in range(len(paths)) if i not in done]
    ex.stats = {"partitions": len(paths), "resumed": len(done), "work_dir": str(folder)}
    if todo:
        payload = stash(folder / "ingest.pkl", {"paths": [str(p) for p in paths], "fields": fields, "fmt": opts.format,
                                                "split": opts.split, "max_bytes": opts.max_bytes, "folder": str(folder)})
        for _ in ex.map_parts(IngestWorker, payload, todo):
            pass
    read_so_far = 0
    for i in range(len(paths)):
        unit = folder / f"unit-{i:06d}"
        bad_t = pq.read_table(unit / "bad.parquet") if (unit / "bad.parquet").exists() else None
        bad = [BadRecord(r["file"], r["locator"], r["reason"], r["excerpt"], tuple(r["keys"]) if r["keys"] else None)
               for r in (bad_t.to_pylist() if bad_t is not None else [])]
        read_so_far += int(pq.read_table(unit / "meta.parquet").column("bytes")[0].as_py())
        f = pq.ParquetFile(unit / "rows.parquet")
        first = True
        for rb in f.iter_batches(batch_size=20_000):
            yield pa.Table.from_batches([rb]), bad if first else [], read_so_far
            first = False
        if first:
            yield HASHED.empty_table(), bad, read_so_far


class IngestWorker:
    """One Ray actor of ingest's map phase: reads, validates and hashes one input path per call."""

    def __init__(self, payload: str) -> None:
        self.cfg = unstash(payload)
        self.folder = Path(self.cfg["folder"])
        self.con = duckdb.connect(":memory:")

    def __call__(self, batch: pa.Table) -> pa.Table:
        parts = batch.column("part").to_pylist()
        return pa.table({"part": parts, "rows": [self.one(int(p)) for p in parts]})

    def one(self, part: int) -> int:
        final = self.folder / f"unit-{part:06d}"
        if final.exists():
            return 0
        if (self.folder.parent / f"_inject_fault_{part}").exists():  # for the fault tests
            raise RuntimeError(f"fault injected in input {part}")
        tmp = self.folder / f"unit-{part:06d}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        writer = pq.ParquetWriter(tmp / "rows.parquet", HASHED)
        bad: list[dict[str, Any]] = []
        n = read_bytes = 0
        try:
            for b in read(Path(self.cfg["paths"][part]), self.cfg["fields"], self.cfg["fmt"], split=self.cfg["split"]):
                good, rejected = _validate(b, self.cfg["max_bytes"])
                bad += [{"file": r.file, "locator": r.locator, "reason": r.reason, "excerpt": r.excerpt,
                         "keys": list(r.keys) if r.keys else None} for r in rejected]
                if good.num_rows:
                    writer.write_table(hash_rows(good, self.con))
                    n += good.num_rows
                read_bytes = max(read_bytes, b.bytes_read)
        finally:
            writer.close()
        if bad:
            pq.write_table(pa.Table.from_pylist(bad, schema=BAD), tmp / "bad.parquet")
        pq.write_table(pa.table({"rows": [n], "bytes": [read_bytes]}), tmp / "meta.parquet")
        publish(tmp, final)  # the input's shards appear whole or not at all
        return n
