"""Ingest: files in, samples with provenance out, in one all-or-nothing run.

Batches from `pipelines.readers` are validated (empty, oversized) and staged; at the end
one set-based merge computes content ids in DuckDB, adds samples the store has not seen,
and adds every origin (file, line, url, original id) it has not recorded. Re-ingesting a
file therefore adds nothing, and the same text from two sources is one sample with two
origins.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from mixline.pipelines.readers import BadRecord, Batch, FieldMap, read
from mixline.store.ids import content_id, content_ids
from mixline.store.idset import IdSet, to_keys
from mixline.store.store import Store

from mixline.errors import ConfigError, InputError

KINDS = ("web", "domain", "conversation", "synthetic", "eval")
ORIGINS = ("datatrove", "distilabel")
DEFAULT_MAX_BYTES = 16 << 20
DEFAULT_MAX_FILE_BYTES = 256 << 30
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
    # Decompressed bytes read from one file at most (0: no limit): a compression bomb stops here.
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    synth_depth: int | None = None
    csv_header: bool = True
    # Past this share of bad records the run stops and rolls back, unless allow_bad.
    max_bad_share: float = 0.5
    allow_bad: bool = False
    # Output of another tool whose lineage is kept: "datatrove" (its drop reasons become
    # decisions) or "distilabel" (its model becomes a models row, each output a generation).
    origin: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"--kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.source or not self.source.strip():
            raise ConfigError("--source must be a non-empty name for where this data came from")
        if self.max_bytes <= 0:
            raise ConfigError(f"--max-bytes must be positive, got {self.max_bytes}")
        if self.max_file_bytes < 0:
            raise ConfigError(f"--max-file-bytes must be 0 (no limit) or positive, got {self.max_file_bytes}")
        if not self.text_fields or any(not f for f in self.text_fields):
            raise ConfigError("--text-field must name at least one field")
        if self.origin not in (None, *ORIGINS):
            raise ConfigError(f"--from {self.origin!r} is not one of {', '.join(ORIGINS)}")
        if self.origin == "distilabel" and self.kind != "synthetic":
            raise ConfigError("--from distilabel reads model output: ingest it with --kind synthetic")
        if not 0.0 <= self.max_bad_share <= 1.0:
            raise ConfigError(f"--max-bad-share must be between 0 and 1, got {self.max_bad_share}")


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
    # Per input file: records read = new + duplicates + quarantined.
    files: list[dict[str, Any]] = field(default_factory=list)
    # With --from: datatrove drop reasons recorded, or distilabel generations linked.
    imported: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop
        raise InputError(f"{path}: cannot follow this path ({exc.__class__.__name__}: a symlink loop or an "
                         "unreadable link); point it at a file or folder") from None


def default_source_name(path: str | Path) -> str:
    """A source's name when none is given: the first path's stem (`hf:NAME` gives NAME's last part)."""
    return Path(str(path).removeprefix("hf:")).name.split(".")[0]


def source_id_for(name: str) -> str:
    return content_id(f"source:{name}")


def ingest(store: Store, paths: list[Path] | Path, opts: IngestOptions,
           progress: Progress | None = None, executor: Any = None) -> IngestResult:
    """Ingest one or more paths as one run. Raises before writing anything on bad options.

    With `executor` (a `curation.distributed.RayExecutor`), each path is read, validated and
    hashed by a Ray task; the driver keeps what is new and writes it in the run's transaction.
    """
    if isinstance(paths, Path):
        paths = [paths]
    resolved = [p if p.as_posix().startswith("hf:") else _resolve(p) for p in paths]
    config = {"paths": [str(p) for p in resolved], **{k: v for k, v in asdict(opts).items()}}
    sid = source_id_for(opts.source)
    _check_source(store, sid, opts)
    # A line may be several times its text's size (JSON escapes, other fields): 4x --max-bytes.
    fields = FieldMap(opts.text_fields, opts.id_field, opts.url_field, opts.csv_header,
                      max_record_bytes=4 * opts.max_bytes + (1 << 20), max_file_bytes=opts.max_file_bytes or None)
    depth = opts.synth_depth if opts.synth_depth is not None else (1 if opts.kind == "synthetic" else 0)
    with store.run("ingest", "ingest_v1", config) as run, Spool(store) as spool:
        result = IngestResult(run.run_id, sid)
        _upsert_source(store, sid, opts, resolved, run.run_id)
        bad: list[BadRecord] = []
        n_good = 0
        # Origins need an anti-join only if this source has read one of these paths before.
        check_origins = any(store.scalar(
            "SELECT count(*) FROM sample_origins WHERE source_id = ? AND starts_with(file, ?)", [sid, str(p)])
            for p in resolved)
        per_file: dict[str, dict[str, Any]] = {}

        def count(file: str, key: str, n: int) -> None:
            row = per_file.setdefault(file, {"file": file, "records": 0, "new": 0, "duplicates": 0, "quarantined": 0})
            row[key] += n
            if key != "new":
                row["records"] += n

        if executor is not None:  # read, validate and hash on Ray workers; the driver joins the shards
            from mixline.curation.distributed import peak_mb
            from mixline.pipelines.distributed_ingest import ingest_map

            with executor.driver_memory(store):  # the anti-join spills past the driver's limit
                shards = ingest_map(executor, store, resolved, fields, opts, progress)
                bad, n_good = shards.bad, shards.n_good
                _refuse_bad_input(bad, n_good, opts)
                t0 = time.perf_counter()
                per_file = _load_shards(store, shards, sid, opts, depth, run.run_id, check_origins, result)
                executor.stats["load_s"] = round(time.perf_counter() - t0, 3)
                executor.stats["driver_peak_mb"] = peak_mb()
        else:
            seen = IdSet.from_store(store)
            for p in resolved:
                for batch in prefetch(read(p, fields, opts.format, split=opts.split)):
                    good, rejected = _validate(batch, opts.max_bytes)
                    bad.extend(rejected)
                    for b in rejected:
                        count(b.file, "quarantined", 1)
                    if good.num_rows:
                        hashed = hash_rows(good, store.con)
                        n_good += hashed.num_rows
                        new_files = spool_hashed(spool, hashed, seen, result)
                        for vc in pc.value_counts(hashed.column("file")).to_pylist():
                            count(vc["values"], "duplicates", vc["counts"])  # less the new ones, below
                        for f, n in new_files.items():
                            count(f, "new", n)
                            per_file[f]["duplicates"] -= n
                    if progress is not None and batch.bytes_read:
                        progress(batch.bytes_read)
            _refuse_bad_input(bad, n_good, opts)
            _load_spool(store, spool, sid, opts, depth, run.run_id, check_origins, result)
        if opts.origin == "datatrove":
            result.imported = _datatrove_decisions(store, run.run_id)
        elif opts.origin == "distilabel":
            result.imported = _distilabel_lineage(store, run.run_id)
        result.records = n_good + len(bad)
        result.duplicates = n_good - result.ingested
        result.files = list(per_file.values())
        result.quarantined = _quarantine(store, sid, run.run_id, bad)
        result.first_reasons = [f"{b.file}:{b.locator}: {b.reason}" for b in bad[:5]]
        run.stats.update({k: v for k, v in result.as_dict().items() if isinstance(v, int)})
        if executor is not None:
            run.stats["executor"] = {"name": "ray", **executor.stats}
    if executor is not None:
        executor.cleanup()
    return result


def _datatrove_decisions(store: Store, run_id: str) -> int:
    """datatrove's exclusion writers keep each dropped document with `metadata.filter_reason`:
    those become `dropped` decisions of a curate run of their own, named for datatrove, so
    `why` names the reason and no mix takes the document until a mixline run decides again."""
    rows = store.execute("""
        SELECT DISTINCT sample_id, json_extract_string(meta, '$.metadata.filter_reason') AS reason
        FROM sample_origins WHERE run_id = ? AND json_extract_string(meta, '$.metadata.filter_reason') IS NOT NULL""",
                         [run_id]).fetchall()
    if rows:
        with store.run("curate", "datatrove_import_v1", {"ingest_run": run_id}, parent_run_id=run_id) as imp:
            store.append_rows("decisions", [{"run_id": imp.run_id, "sample_id": sid, "step": "datatrove_import_v1",
                                             "verdict": "dropped", "reason": f"datatrove:{reason}", "score": None}
                                            for sid, reason in rows])
            imp.stats.update({"dropped": len(rows)})
    return len(rows)


def _distilabel_lineage(store: Store, run_id: str) -> int:
    """distilabel rows name their `model_name`: one models row per model (an external model,
    with no weights here), and one generations row per output, so trace and impact cross
    from a model to what it wrote."""
    from mixline.store.ids import canonical_json

    rows = store.execute("""
        SELECT DISTINCT sample_id, json_extract_string(meta, '$.model_name') AS model,
               json_extract(meta, '$.distilabel_metadata') AS decoding
        FROM sample_origins WHERE run_id = ? AND json_extract_string(meta, '$.model_name') IS NOT NULL""", [run_id]).fetchall()
    models = {m: f"model-{content_id(f'external:{m}')[:20]}" for m in sorted({r[1] for r in rows})}
    for name, mid in models.items():
        if not store.scalar("SELECT count(*) FROM models WHERE model_id = ?", [mid]):
            store.append_rows("models", [{"model_id": mid, "name": name, "base_ref": name, "parent_model_id": None,
                                          "method": "external", "mix_id": None, "train_run_id": run_id, "checkpoint_uri": None,
                                          "config": canonical_json({"source": "distilabel", "model_name": name})}])
    store.append_rows("generations", [{"sample_id": sid, "model_id": models[m], "run_id": run_id, "prompt_sample_id": None,
                                       "template_hash": None, "decoding": dec, "seed": None} for sid, m, dec in rows])
    return len(rows)


def _refuse_bad_input(bad: list[BadRecord], n_good: int, opts: IngestOptions) -> None:
    """Stop the run (it rolls back, quarantining nothing) when no record is usable, or when too many are bad."""
    if not bad:
        return
    total = n_good + len(bad)
    if n_good == 0:
        raise InputError(f"no usable record in {total} read: {_cause(bad)}")
    share = len(bad) / total
    if share > opts.max_bad_share and not opts.allow_bad:
        raise InputError(
            f"{len(bad)} of {total} records ({share:.0%}) are bad, over --max-bad-share {opts.max_bad_share:.0%}: "
            f"{_cause(bad)}. Fix the input, or pass --allow-bad to keep the {n_good} good ones and quarantine the rest")


def _cause(bad: list[BadRecord]) -> str:
    """The commonest reason among bad records, said once, with the fields records have when a text field is missing."""
    reasons: dict[str, int] = {}
    for b in bad:
        reasons[b.reason] = reasons.get(b.reason, 0) + 1
    reason, n = max(reasons.items(), key=lambda kv: kv[1])
    first = next(b for b in bad if b.reason == reason)
    if first.keys is not None and reason.startswith("missing text field"):
        field_name = reason.split("'")[1]
        what = "every record" if n == len(bad) else f"{n} records"
        return (f"{what} lacks field {field_name!r}; records have: {', '.join(first.keys[:12])}. "
                "Set --text-field to the field that holds the text")
    more = f" ({n} records; and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else f" ({n} records)"
    return f"{first.file}:{first.locator}: {reason}{more}"


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
    # utf8_is_space stops at the first non-space character: no copy of the text is made.
    empty = pc.fill_null(pc.or_(pc.equal(pc.binary_length(text), 0), pc.utf8_is_space(text)), True)
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


_SAMPLES_SPOOL = pa.schema([("sample_id", pa.string()), ("content_hash", pa.string()),
                            ("text", pa.string()), ("messages", pa.string())])
_ORIGINS_SPOOL = pa.schema([("sample_id", pa.string()), ("file", pa.string()), ("locator", pa.string()),
                            ("original_id", pa.string()), ("url", pa.string()), ("meta", pa.string())])


class Spool:
    """Parquet files beside the store that collect a run's rows before one bulk INSERT.

    Many small INSERTs inside one transaction keep DuckDB's transaction-local data in
    memory; one INSERT from Parquet streams it to disk. So memory stays flat however big
    the input, and the run still commits all or nothing.
    """

    def __init__(self, store: Store) -> None:
        # A DuckLake store has many writers, so its spools go to the temp folder and no
        # writer may clean up another's.
        base = None if store.path == ":memory:" or store.lake is not None else str(Path(store.path).resolve().parent)
        prefix = f".mixline-spool-{Path(store.path).name}-" if base is not None else ".mixline-spool-lake-"
        if base is not None:
            # A spool left by a killed run of this store holds raw text: the writer (us, as only
            # one can hold the store) deletes it before anything else.
            for stale in Path(base).glob(prefix + "*"):
                shutil.rmtree(stale, ignore_errors=True)
        self._dir = tempfile.TemporaryDirectory(prefix=prefix, dir=base)
        self.samples_path = Path(self._dir.name) / "samples.parquet"
        self.origins_path = Path(self._dir.name) / "origins.parquet"
        self.samples = pq.ParquetWriter(self.samples_path, _SAMPLES_SPOOL, compression="none")
        self.origins = pq.ParquetWriter(self.origins_path, _ORIGINS_SPOOL, compression="none")

    def close(self) -> None:
        self.samples.close()
        self.origins.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._dir.cleanup()


def _spool_batch(store: Store, spool: Spool, good: pa.Table, seen: IdSet, result: IngestResult) -> dict[str, int]:
    """Hash a batch; spool its new samples and all of its origins. Returns new samples per file."""
    return spool_hashed(spool, hash_rows(good, store.con), seen, result)


HASHED = pa.schema([("sample_id", pa.string()), ("content_hash", pa.string()), ("text", pa.string()),
                    ("messages", pa.string()), ("file", pa.string()), ("locator", pa.string()),
                    ("original_id", pa.string()), ("url", pa.string()), ("meta", pa.string())])


def hash_rows(good: pa.Table, con: Any) -> pa.Table:
    """A validated batch with its content ids, metadata as JSON text: the part of ingest that
    needs no store, so Ray workers run it (`con` is any DuckDB connection)."""
    text_ids = [t or "" for t in content_ids(good.column("text"))]
    msgs = good.column("messages")
    if msgs.null_count == len(msgs):
        ids = text_ids
    else:
        msg_ids = content_ids(msgs)
        ids = [m if m is not None else t for m, t in zip(msg_ids, text_ids, strict=True)]
    meta = good.column("meta")
    if pa.types.is_struct(meta.type):
        con.register("_meta", pa.table({"meta": meta}))
        try:
            meta = con.execute("SELECT to_json(meta)::VARCHAR FROM _meta").to_arrow_table().column(0)
        finally:
            con.unregister("_meta")
    return pa.table({
        "sample_id": pa.array(ids, pa.string()), "content_hash": pa.array(text_ids, pa.string()),
        "text": good.column("text"), "messages": good.column("messages"), "file": good.column("file"),
        "locator": good.column("locator"), "original_id": good.column("original_id"), "url": good.column("url"),
        "meta": meta}, schema=HASHED)


def spool_hashed(spool: Spool, h: pa.Table, seen: IdSet, result: IngestResult) -> dict[str, int]:
    """Spool a hashed batch's new samples (new to the store and first in the run) and all of its
    origins. Returns new samples per file."""
    ids = h.column("sample_id").to_pylist()
    keys = to_keys(ids)
    fresh = np.flatnonzero(~seen.contains(keys)).tolist()
    firsts: dict[str, None] = {}
    new: list[int] = []
    for i in fresh:
        if ids[i] not in firsts:
            firsts[ids[i]] = None
            new.append(i)
    seen.add(keys[new])
    result.ingested += len(new)
    files = h.column("file").to_pylist()
    new_per_file: dict[str, int] = {}
    for i in new:
        new_per_file[files[i]] = new_per_file.get(files[i], 0) + 1
    if new:
        rows = h.select(["sample_id", "content_hash", "text", "messages"])
        if len(new) < h.num_rows:  # a batch of all-new rows (the usual one) is written without a copy
            rows = rows.take(pa.array(new, pa.int64()))
        spool.samples.write_table(rows.cast(_SAMPLES_SPOOL))
    spool.origins.write_table(h.select(["sample_id", "file", "locator", "original_id", "url", "meta"]).cast(_ORIGINS_SPOOL))
    return new_per_file


def _load_spool(store: Store, spool: Spool, sid: str, opts: IngestOptions, depth: int, run_id: str,
                check_origins: bool, result: IngestResult) -> None:
    spool.close()
    _insert(store, f"read_parquet('{spool.samples_path}')" if result.ingested else None,
            f"read_parquet('{spool.origins_path}')", sid, opts, depth, run_id, check_origins, result)


def _insert(store: Store, samples_from: str | None, origins_from: str, sid: str, opts: IngestOptions, depth: int,
            run_id: str, check_origins: bool, result: IngestResult) -> None:
    """The run's new samples and its origins, each one INSERT from a relation in input order."""
    if samples_from is not None:
        store.execute(
            f"""INSERT INTO sample_rows (sample_id, source_id, source, kind, text, messages, content_hash, domain,
                                     n_chars, synth_depth, created_run_id)
            SELECT sample_id, ?, ?, ?, text, messages, content_hash, ?, length(text), ?, ?
            FROM {samples_from}""",
            [sid, opts.source, opts.kind, opts.domain, depth, run_id],
        )
    not_recorded = """WHERE NOT EXISTS (SELECT 1 FROM sample_origins o WHERE o.sample_id = s.sample_id
          AND o.source_id = ? AND o.file IS NOT DISTINCT FROM s.file AND o.locator IS NOT DISTINCT FROM s.locator)"""
    row = store.execute(
        f"""INSERT INTO sample_origins (sample_id, source_id, run_id, file, locator, original_id, url, meta)
        SELECT s.sample_id, ?, ?, s.file, s.locator, s.original_id, s.url, s.meta
        FROM {origins_from} s {not_recorded if check_origins else ""}""",
        [sid, run_id, sid] if check_origins else [sid, run_id],
    ).fetchone()
    result.origins = int(row[0]) if row else 0


def _load_shards(store: Store, shards: Any, sid: str, opts: IngestOptions, depth: int, run_id: str,
                 check_origins: bool, result: IngestResult) -> dict[str, dict[str, Any]]:
    """A Ray ingest's shards into the store without the driver reading their rows: the new
    samples (not in the store, first of their id in input order) are an anti-join over the
    shards' ids, and the rows go in by INSERT ... SELECT. Returns the per-file counts."""
    files = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in shards.rows) + "]"
    shard_rows = f"read_parquet({files}, filename = true, file_row_number = true)"
    firsts = "_mixline_ingest_new"
    store.execute(f"DROP TABLE IF EXISTS temp.{firsts}")
    store.execute(
        f"""CREATE TEMP TABLE {firsts} AS
        SELECT filename, file_row_number, file FROM (SELECT sample_id, filename, file_row_number, file FROM {shard_rows}) s
        WHERE NOT EXISTS (SELECT 1 FROM samples t WHERE t.sample_id = s.sample_id)
        QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY filename, file_row_number) = 1""")
    try:
        result.ingested = int(store.scalar(f"SELECT count(*) FROM temp.{firsts}") or 0)
        new_rows = f"""(SELECT s.* FROM {shard_rows} s SEMI JOIN temp.{firsts} n
                       ON s.filename = n.filename AND s.file_row_number = n.file_row_number
                       ORDER BY s.filename, s.file_row_number)"""
        _insert(store, new_rows if result.ingested else None,
                f"(SELECT * FROM {shard_rows} ORDER BY filename, file_row_number)",
                sid, opts, depth, run_id, check_origins, result)
        good = store.execute(
            f"""SELECT g.file, g.unit, g.n, coalesce(n.n, 0) FROM (
                  SELECT file, min(filename) AS unit, min(file_row_number) AS first, count(*) AS n
                  FROM {shard_rows} GROUP BY file) g
                LEFT JOIN (SELECT file, count(*) AS n FROM temp.{firsts} GROUP BY file) n USING (file)
                ORDER BY g.unit, g.first""").fetchall()
    finally:
        store.execute(f"DROP TABLE IF EXISTS temp.{firsts}")
    # Files in the order an in-process run first meets them: by unit, a unit's bad records first.
    unit_of = {f: i for i, f in enumerate(shards.rows)}
    events: list[tuple[int, int, str, str, int]] = [(u, 0, b.file, "quarantined", 1)
                                                    for u, b in zip(shards.bad_units, shards.bad, strict=True)]
    events += [(unit_of[u], 1, f, "good", n) for f, u, n, _ in good]
    per_file: dict[str, dict[str, Any]] = {}
    for _, _, f, key, n in sorted(events, key=lambda e: (e[0], e[1])):
        row = per_file.setdefault(f, {"file": f, "records": 0, "new": 0, "duplicates": 0, "quarantined": 0})
        row["records"] += n
        if key == "quarantined":
            row["quarantined"] += n
        else:
            row["duplicates"] += n
    for f, _, _, n_new in good:
        per_file[f]["new"] += n_new
        per_file[f]["duplicates"] -= n_new
    return per_file


def _quarantine(store: Store, sid: str, run_id: str, bad: list[BadRecord]) -> int:
    if not bad:
        return 0
    from mixline.curation.pii.detectors import scrub_for_display

    # Excerpts are shown to people (`mixline quarantine`): PII in them is replaced first.
    shown = iter(scrub_for_display([b.excerpt for b in bad if b.excerpt]))
    excerpts = [next(shown) if b.excerpt else None for b in bad]
    table = pa.table({
        "run_id": [run_id] * len(bad), "source_id": [sid] * len(bad),
        "file": [b.file for b in bad], "locator": [b.locator for b in bad],
        "reason": [b.reason for b in bad], "excerpt": excerpts,
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


def prefetch(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """Read the next batches on a thread while the store writes this one.

    Arrow's JSON parser and DuckDB both release the GIL, so on two cores reading and
    writing overlap. Reader errors are re-raised in the caller.
    """
    q: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for b in batches:
                if stop.is_set():
                    return
                q.put(b)
            q.put(None)
        except BaseException as exc:
            q.put(exc)

    t = threading.Thread(target=produce, name="mixline-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def total_bytes(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        if p.is_file():
            n += os.path.getsize(p)
        elif p.is_dir():
            n += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return n
