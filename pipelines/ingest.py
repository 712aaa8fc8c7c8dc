"""Ingest: files in, samples with provenance out, in one all-or-nothing run.

Batches from `pipelines.readers` are validated (empty, oversized) and staged; at the end
one set-based merge computes content ids in DuckDB, adds samples the store has not seen,
and adds every origin (file, line, url, original id) it has not recorded. Re-ingesting a
file therefore adds nothing, and the same text from two sources is one sample with two
origins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.readers import BadRecord, Batch, FieldMap, read
from store.errors import ConfigError
from store.ids import content_id
from store.store import Store

KINDS = ("web", "domain", "conversation", "synthetic", "eval")
DEFAULT_MAX_BYTES = 16 << 20
Progress = Callable[[int], None]


@dataclass(frozen=True)
class IngestOptions:
    """Everything that shapes an ingest; its dict form is the run's config."""

    kind: str
    source: str
    license: str | None = None
    domain: str | None = None
    text_fields: tuple[str, ...] = ("text",)
    id_field: str | None = None
    url_field: str | None = None
    format: str | None = None
    split: str | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    synth_depth: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"--kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.source or not self.source.strip():
            raise ConfigError("--source must be a non-empty name for where this data came from")
        if self.max_bytes <= 0:
            raise ConfigError(f"--max-bytes must be positive, got {self.max_bytes}")
        if not self.text_fields or any(not f for f in self.text_fields):
            raise ConfigError("--text-field must name at least one field")


@dataclass
class IngestResult:
    run_id: str
    source_id: str
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    origins: int = 0
    records: int = 0
    first_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_id_for(name: str) -> str:
    return content_id(f"source:{name}")


_STAGE_DDL = """
CREATE OR REPLACE TEMP TABLE _stage (
    ord BIGINT, text VARCHAR, messages VARCHAR, file VARCHAR, locator VARCHAR,
    original_id VARCHAR, url VARCHAR, meta VARCHAR)
"""


def ingest(store: Store, paths: list[Path] | Path, opts: IngestOptions,
           progress: Progress | None = None) -> IngestResult:
    """Ingest one or more paths as one run. Raises before writing anything on bad options."""
    if isinstance(paths, Path):
        paths = [paths]
    resolved = [p if p.as_posix().startswith("hf:") else p.resolve() for p in paths]
    config = {"paths": [str(p) for p in resolved], **{k: v for k, v in asdict(opts).items()}}
    sid = source_id_for(opts.source)
    _check_source(store, sid, opts)
    fields = FieldMap(opts.text_fields, opts.id_field, opts.url_field)
    with store.run("ingest", "ingest_v1", config) as run:
        result = IngestResult(run.run_id, sid)
        _upsert_source(store, sid, opts, resolved, run.run_id)
        store.execute(_STAGE_DDL)
        bad: list[BadRecord] = []
        ord_ = 0
        for p in resolved:
            for batch in read(p, fields, opts.format, split=opts.split):
                good, rejected = _validate(batch, opts.max_bytes)
                bad.extend(rejected)
                if good.num_rows:
                    good = good.append_column("ord", pa.array(range(ord_, ord_ + good.num_rows), pa.int64()))
                    ord_ += good.num_rows
                    _stage(store, good)
                if progress is not None and batch.bytes_read:
                    progress(batch.bytes_read)
        result.records = ord_ + len(bad)
        _merge(store, sid, opts, run.run_id, result)
        result.quarantined = _quarantine(store, sid, run.run_id, bad)
        result.first_reasons = [f"{b.file}:{b.locator}: {b.reason}" for b in bad[:5]]
        store.execute("DROP TABLE IF EXISTS _stage")
        run.stats.update({k: v for k, v in result.as_dict().items() if isinstance(v, int)})
    return result


def _check_source(store: Store, sid: str, opts: IngestOptions) -> None:
    row = store.rows("SELECT kind FROM sources WHERE source_id = ?", [sid])
    if row and row[0]["kind"] != opts.kind:
        raise ConfigError(
            f"source {opts.source!r} is already registered with --kind {row[0]['kind']}; "
            f"ingest this file under another --source name, or with --kind {row[0]['kind']}"
        )


def _upsert_source(store: Store, sid: str, opts: IngestOptions, paths: list[Path], run_id: str) -> None:
    if store.scalar("SELECT count(*) FROM sources WHERE source_id = ?", [sid]):
        return
    store.append_rows("sources", [{
        "source_id": sid, "name": opts.source, "kind": opts.kind,
        "uri": ",".join(str(p) for p in paths), "license": opts.license, "domain": opts.domain,
        "created_run_id": run_id,
    }])


def _validate(batch: Batch, max_bytes: int) -> tuple[pa.Table, list[BadRecord]]:
    """Split a batch into usable rows and quarantined ones (empty text, oversized)."""
    t = batch.table
    bad = list(batch.bad)
    if t.num_rows == 0:
        return t, bad
    text = t.column("text")
    empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
    big = pc.fill_null(pc.greater(pc.binary_length(text), max_bytes), False)
    reject = pc.or_(empty, big)
    if pc.any(reject).as_py():
        idx = pc.indices_nonzero(reject).to_pylist()
        files = t.column("file").to_pylist()
        locs = t.column("locator").to_pylist()
        emp = empty.to_pylist()
        for i in idx:
            if emp[i]:
                bad.append(BadRecord(files[i], locs[i], "empty text (nothing but whitespace)"))
            else:
                size = len(text[i].as_py().encode("utf-8"))
                bad.append(BadRecord(files[i], locs[i], f"text of {size} bytes exceeds --max-bytes {max_bytes}; raise --max-bytes or split the record", text[i].as_py()[:200]))
        t = t.filter(pc.invert(reject))
    return t, bad


def _stage(store: Store, good: pa.Table) -> None:
    meta_expr = "to_json(meta)::VARCHAR" if pa.types.is_struct(good.schema.field("meta").type) else "meta"
    view = "_batch"
    store.con.register(view, good)
    try:
        store.execute(
            f"INSERT INTO _stage SELECT ord, text, messages, file, locator, original_id, url, {meta_expr} FROM {view}"
        )
    finally:
        store.con.unregister(view)


def _merge(store: Store, sid: str, opts: IngestOptions, run_id: str, result: IngestResult) -> None:
    depth = opts.synth_depth if opts.synth_depth is not None else (1 if opts.kind == "synthetic" else 0)
    store.execute(
        """
        CREATE OR REPLACE TEMP TABLE _staged AS
        SELECT *, substr(sha256(coalesce(messages, text)), 1, 32) AS sample_id,
               substr(sha256(text), 1, 32) AS content_hash
        FROM _stage
        """
    )
    before = store.scalar("SELECT count(*) FROM samples")
    store.execute(
        """
        INSERT INTO samples (sample_id, source_id, source, kind, text, messages, content_hash, domain,
                             n_chars, synth_depth, created_run_id)
        SELECT s.sample_id, ?, ?, ?, s.text, s.messages, s.content_hash, ?, length(s.text), ?, ?
        FROM (SELECT * FROM _staged QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY ord) = 1) s
        WHERE NOT EXISTS (SELECT 1 FROM samples x WHERE x.sample_id = s.sample_id)
        """,
        [sid, opts.source, opts.kind, opts.domain, depth, run_id],
    )
    result.ingested = int(store.scalar("SELECT count(*) FROM samples") - before)
    staged = int(store.scalar("SELECT count(*) FROM _staged"))
    result.duplicates = staged - result.ingested
    before = store.scalar("SELECT count(*) FROM sample_origins")
    store.execute(
        """
        INSERT INTO sample_origins (sample_id, source_id, run_id, file, locator, original_id, url, meta)
        SELECT s.sample_id, ?, ?, s.file, s.locator, s.original_id, s.url, s.meta FROM _staged s
        WHERE NOT EXISTS (SELECT 1 FROM sample_origins o WHERE o.sample_id = s.sample_id
              AND o.source_id = ? AND o.file IS NOT DISTINCT FROM s.file
              AND o.locator IS NOT DISTINCT FROM s.locator)
        """,
        [sid, run_id, sid],
    )
    result.origins = int(store.scalar("SELECT count(*) FROM sample_origins") - before)
    store.execute("DROP TABLE IF EXISTS _staged")


def _quarantine(store: Store, sid: str, run_id: str, bad: list[BadRecord]) -> int:
    if not bad:
        return 0
    table = pa.table({
        "run_id": [run_id] * len(bad), "source_id": [sid] * len(bad),
        "file": [b.file for b in bad], "locator": [b.locator for b in bad],
        "reason": [b.reason for b in bad], "excerpt": [b.excerpt for b in bad],
    })
    view = "_bad"
    store.con.register(view, table)
    try:
        # A record quarantined before for the same reason is not recorded twice.
        store.execute(
            f"""INSERT INTO quarantine SELECT b.* FROM {view} b WHERE NOT EXISTS (
                SELECT 1 FROM quarantine q WHERE q.file = b.file AND q.locator = b.locator
                AND q.reason = b.reason AND q.source_id IS NOT DISTINCT FROM b.source_id)"""
        )
    finally:
        store.con.unregister(view)
    return len(bad)


def iter_paths(paths: list[str]) -> Iterator[Path]:
    for p in paths:
        yield Path(p) if not p.startswith("hf:") else Path(p)


def total_bytes(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        if p.is_file():
            n += os.path.getsize(p)
        elif p.is_dir():
            n += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return n
