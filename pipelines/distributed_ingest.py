"""Ingest on Ray: inputs are split into units, each read, validated and hashed by a task into
Parquet shards; the driver keeps exactly the samples an in-process ingest keeps, in input order.

A unit is a whole file, or a span of a large one:
- a byte range of an uncompressed JSONL file: a line belongs to the range holding its first
  byte, and line numbers come from a first pass of newline counts, in tasks;
- a byte range of an uncompressed CSV or TSV file: a span starts at the first newline whose
  double-quote parity (counted in the same first pass) says it ends a record;
- a byte range of a WARC file (uncompressed, or gzip with a member per record): a span starts
  at the first gzip member, or line, that is a WARC header;
- a run of a Parquet file's row groups.
CSV and WARC spans guess their first record, so each reports where its records start and
end; a file whose spans do not meet end to end, or one of which cannot be read alone (bad
UTF-8, a malformed row, damage), is read whole by one more task, so results never depend on
a guess. A folder becomes one unit per file (its text files one unit together), as the
in-process reader walks it. Compressed JSONL and CSV, JSON arrays and YAML are read whole.

The driver never reads the rows back. Which rows are new (not in the store, first in the run
by input order) is one anti-join in the driver's DuckDB over the shards' ids, and the new
samples and all origins go in with `INSERT ... SELECT` from the shards, so the driver's
Python holds only counts and bad records.

The Ray plumbing (starting Ray, actor pools, the work folder) is `curation.distributed`.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from mixline.curation.distributed import RayExecutor, publish, stash, unstash
from mixline.pipelines.ingest import HASHED, _validate, hash_rows
from mixline.pipelines.readers import (
    BadRecord,
    Span,
    SpanFallback,
    count_bytes,
    detect_format,
    dir_files,
    read,
    read_span,
    splittable,
)
from mixline.store.store import Store

from mixline.errors import UnknownFormatError

BAD = pa.schema([("file", pa.string()), ("locator", pa.string()), ("reason", pa.string()), ("excerpt", pa.string()),
                 ("keys", pa.list_(pa.string()))])


def span_bytes() -> int:
    """How big a span of a large file is: MIXLINE_INGEST_SPAN_BYTES (64 MB by default), rounded
    to whole reader chunks, so that a span is read in exactly the chunks a whole-file read uses."""
    from mixline.pipelines import readers

    want = int(os.environ.get("MIXLINE_INGEST_SPAN_BYTES", str(64 << 20)))
    return max(1, round(want / readers.CHUNK_BYTES)) * readers.CHUNK_BYTES


@dataclass(frozen=True)
class Unit:
    """What one ingest task reads."""

    path: str                          # a file, a folder (its text files) or a dataset
    fmt: str | None                    # None: as the reader detects it
    span: Span | None = None           # part of a large file
    txt: tuple[str, ...] = ()          # a folder's text files, read together as in-process
    error: str | None = None           # a folder's file whose format cannot be told: one bad record
    name: str | None = None            # its folder in the work folder, if not unit-<number>


@dataclass
class Shards:
    """A Ray ingest's output: row shards in input order, bad records, counts."""

    rows: list[str]
    bad: list[BadRecord] = field(default_factory=list)
    bad_units: list[int] = field(default_factory=list)  # the unit of each bad record
    n_good: int = 0


def plan(ex: RayExecutor, paths: list[Path], fields: Any, fmt: str | None) -> list[Unit]:
    """The units of these inputs, in the order an in-process ingest reads their records."""
    units: list[Unit] = []
    counted: list[tuple[int, Path, str, list[tuple[int, int]]]] = []  # (unit slot, file, format, byte ranges)
    step = max(1, span_bytes())

    def add_file(p: Path, file_fmt: str | None) -> None:
        try:
            detected = file_fmt or detect_format(p)
        except (UnknownFormatError, OSError):
            units.append(Unit(str(p), file_fmt))  # the task raises or reports exactly as in-process
            return
        if not splittable(p, detected):
            units.append(Unit(str(p), file_fmt))
        elif detected == "parquet":
            units.extend(_parquet_units(p, file_fmt, step))
        else:
            size = p.stat().st_size
            if size <= step or (fields.max_file_bytes is not None and size > fields.max_file_bytes):
                units.append(Unit(str(p), file_fmt))
                return
            ranges = [(s, min(s + step, size)) for s in range(0, size, step)]
            if detected == "warc":  # locators are byte offsets: no first pass
                units.extend(Unit(str(p), "warc", span=Span(s, e, 0)) for s, e in ranges)
                return
            counted.append((len(units), p, detected, ranges))
            units.append(Unit(str(p), file_fmt))  # replaced by its spans below

    for p in paths:
        if p.as_posix().startswith("hf:") or fmt == "hf" or not p.exists():
            units.append(Unit(str(p), fmt))  # a dataset, or a missing path the task reports
            continue
        if not p.is_dir():
            add_file(p, fmt)
            continue
        if fmt is None and detect_format(p) == "hf":
            units.append(Unit(str(p), fmt))
            continue
        dir_fmt = None if fmt == "dir" else fmt
        txt, rest = dir_files(p, dir_fmt)
        if txt:
            units.append(Unit(str(p), "txt", txt=tuple(str(f) for f in txt)))
        for f in rest:
            try:
                add_file(f, dir_fmt or detect_format(f))
            except UnknownFormatError as exc:
                units.append(Unit(str(f), None, error=str(exc)))
    if not counted:
        return units
    # Line numbers (and, for CSV, quote parity): each range's newlines and quotes, counted in
    # tasks, summed in order.
    counts = iter(ex.tasks(count_bytes, [(p, s, e, (b"\n", b'"')) for _, p, _, ranges in counted for s, e in ranges]))
    spans: dict[int, list[Unit]] = {}
    for slot, p, detected, ranges in counted:
        first, quotes, parts = 1, 0, []
        for s, e in ranges:
            parts.append(Unit(str(p), detected, span=Span(s, e, first, quotes)))
            n_lines, n_quotes = next(counts)
            first, quotes = first + n_lines, quotes + n_quotes
        spans[slot] = parts
    return [u for i, unit in enumerate(units) for u in spans.get(i, [unit])]


def span_groups(units: list[Unit]) -> dict[int, list[int]]:
    """The CSV and WARC spans of each file read in spans, by the unit of its first span (the
    same file may be an input twice)."""
    groups: dict[int, list[int]] = {}
    first = -1
    for i, u in enumerate(units):
        if u.span is not None and u.fmt in ("csv", "tsv", "warc"):
            if u.span.start == 0:
                first = i
            groups.setdefault(first, []).append(i)
    return groups


def _fallbacks(units: list[Unit], groups: dict[int, list[int]], metas: list[dict[str, Any]]) -> dict[int, Unit]:
    """Files read in CSV or WARC spans whose spans do not meet end to end, or one of which could
    not be read alone: each is read whole instead, as a unit named after its first span."""
    out: dict[int, Unit] = {}
    for first, idx in groups.items():
        path = units[first].path
        if not spans_meet([metas[i] for i in idx], Path(path).stat().st_size):
            out[first] = Unit(path, units[first].fmt, name=f"unit-{first:06d}.whole")
    return out


def _meta(unit: Path) -> dict[str, Any]:
    """A finished unit's counts and bounds."""
    row: dict[str, Any] = pq.read_table(unit / "meta.parquet").to_pylist()[0]
    return row


def spans_meet(bounds: list[dict[str, Any]], size: int) -> bool:
    """Whether a file's spans, in order, read it end to end from its first byte to its last,
    each span that read anything starting where the one before ended; then their records are
    exactly a whole-file read's."""
    pos = 0
    for b in bounds:
        if b.get("fallback"):
            return False
        if b["end"] > b["start"]:
            if b["start"] != pos:
                return False
            pos = b["end"]
    return pos == size


def _parquet_units(p: Path, file_fmt: str | None, step: int) -> list[Unit]:
    try:
        meta = pq.ParquetFile(p).metadata
    except (pa.ArrowInvalid, OSError):
        return [Unit(str(p), file_fmt)]  # the task reports the damage as in-process
    units: list[Unit] = []
    start = first = rows = size = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        rows += rg.num_rows
        size += rg.total_byte_size
        if size >= step or g == meta.num_row_groups - 1:
            units.append(Unit(str(p), "parquet", span=Span(start, g + 1, first)))
            start, first, size = g + 1, rows, 0
    return units if len(units) > 1 else [Unit(str(p), file_fmt)]


def ingest_map(ex: RayExecutor, store: Store, paths: list[Path], fields: Any, opts: Any,
               progress: Any = None) -> Shards:
    """Read, validate and hash every unit on Ray; the shards, in input order."""
    t0 = time.perf_counter()
    units = plan(ex, paths, fields, opts.format)
    t_plan = time.perf_counter() - t0
    # The work folder is named by the options and every unit's file as it is now (a folder's
    # files included), so a resumed run reuses shards only of unchanged files.
    digest = hashlib.sha256(repr(sorted(asdict(opts).items())).encode())
    for u in units:
        p = Path(u.path)
        st = p.stat() if p.exists() else None
        digest.update(f"{u}:{st.st_size if st else ''}:{st.st_mtime_ns if st else ''};".encode())
        for f in u.txt:
            ft = Path(f).stat()
            digest.update(f"{f}:{ft.st_size}:{ft.st_mtime_ns};".encode())
    folder = ex.work_folder(store, f"ingest-{digest.hexdigest()[:20]}")
    done = {int(p.name.split("-")[1]) for p in folder.glob("unit-*") if p.is_dir() and "." not in p.name}
    todo = [i for i in range(len(units)) if i not in done]
    ex.stats = {"partitions": len(units), "inputs": len(paths), "spans": sum(u.span is not None for u in units),
                "resumed": len(done), "work_dir": str(folder), "plan_s": round(t_plan, 3)}
    t0 = time.perf_counter()
    from mixline.pipelines import readers

    cfg = {"units": units, "fields": fields, "split": opts.split, "max_bytes": opts.max_bytes, "folder": str(folder),
           "chunk_bytes": readers.CHUNK_BYTES}
    read_so_far = 0

    def run(parts: list[int], name: str) -> None:
        nonlocal read_so_far
        for out in ex.map_parts(IngestWorker, stash(folder / name, cfg), parts):
            read_so_far += sum(out.column("bytes").to_pylist())
            if progress is not None and read_so_far:
                progress(read_so_far)

    if todo:
        run(todo, "ingest.pkl")
    metas = [_meta(folder / f"unit-{i:06d}") for i in range(len(units))]
    groups = span_groups(units)
    whole = _fallbacks(units, groups, metas)
    if whole:  # files whose spans did not meet: read whole, on workers too
        first = len(units)
        cfg["units"] = units + list(whole.values())
        run(list(range(first, first + len(whole))), "ingest-whole.pkl")
    ex.stats["read_whole"] = len(whole)
    ex.stats["map_s"] = round(time.perf_counter() - t0, 3)
    replaced = {i for first, idx in groups.items() if first in whole for i in idx}
    used: list[tuple[int, Path, dict[str, Any]]] = []  # (unit, its folder, its meta), in input order
    for i in range(len(units)):
        if i in whole:
            d = folder / str(whole[i].name)
            used.append((i, d, _meta(d)))
        elif i not in replaced:
            used.append((i, folder / f"unit-{i:06d}", metas[i]))
    shards = Shards([str(d / "rows.parquet") for _, d, _ in used])
    for i, d, meta in used:
        if (d / "bad.parquet").exists():
            for r in pq.read_table(d / "bad.parquet").to_pylist():
                shards.bad.append(BadRecord(r["file"], r["locator"], r["reason"], r["excerpt"],
                                            tuple(r["keys"]) if r["keys"] else None))
                shards.bad_units.append(i)
        shards.n_good += int(meta["rows"])
    return shards


def _batches(unit: Unit, cfg: dict[str, Any], bounds: dict[str, int]) -> Iterator[Any]:
    from mixline.pipelines import readers
    from mixline.pipelines.readers import Batch, _empty, _read_txt

    readers.CHUNK_BYTES = cfg["chunk_bytes"]  # the driver's, which its spans are multiples of
    fields = cfg["fields"]
    if unit.error is not None:
        yield Batch(_empty(), [BadRecord(unit.path, "file", unit.error)])
    elif unit.txt:
        yield from _read_txt([Path(f) for f in unit.txt], Path(unit.path), fields.max_file_bytes)
    elif unit.span is not None:
        yield from read_span(Path(unit.path), fields, unit.fmt or "jsonl", unit.span, bounds=bounds)
    else:
        yield from read(Path(unit.path), fields, unit.fmt, split=cfg["split"])


class IngestWorker:
    """One Ray actor of ingest's map phase: reads, validates and hashes one unit per call."""

    def __init__(self, payload: str) -> None:
        self.cfg = unstash(payload)
        self.folder = Path(self.cfg["folder"])
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET enable_progress_bar = false")

    def __call__(self, batch: pa.Table) -> pa.Table:
        parts = batch.column("part").to_pylist()
        out = [self.one(int(p)) for p in parts]
        return pa.table({"part": parts, "rows": [o[0] for o in out], "bytes": [o[1] for o in out]})

    def one(self, part: int) -> tuple[int, int]:
        unit = self.cfg["units"][part]
        final = self.folder / (unit.name or f"unit-{part:06d}")
        if final.exists():
            return 0, 0
        if (self.folder.parent / f"_inject_fault_{part}").exists():  # for the fault tests
            raise RuntimeError(f"fault injected in input {part}")
        tmp = self.folder / f"{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        writer = pq.ParquetWriter(tmp / "rows.parquet", HASHED)
        bad: list[dict[str, Any]] = []
        bounds = {"start": -1, "end": -1}
        n = read_bytes = 0
        fallback = False
        try:
            for b in _batches(unit, self.cfg, bounds):
                good, rejected = _validate(b, self.cfg["max_bytes"])
                bad += [{"file": r.file, "locator": r.locator, "reason": r.reason, "excerpt": r.excerpt,
                         "keys": list(r.keys) if r.keys else None} for r in rejected]
                if good.num_rows:
                    writer.write_table(hash_rows(good, self.con))
                    n += good.num_rows
                read_bytes = max(read_bytes, b.bytes_read)
        except SpanFallback:
            fallback = True  # the driver reads this file whole; this span's rows are not used
        finally:
            writer.close()
        if bad:
            pq.write_table(pa.Table.from_pylist(bad, schema=BAD), tmp / "bad.parquet")
        pq.write_table(pa.table({"rows": [n], "bytes": [read_bytes], "start": [bounds["start"]],
                                 "end": [bounds["end"]], "fallback": [fallback]}), tmp / "meta.parquet")
        publish(tmp, final)  # the unit's shards appear whole or not at all
        return n, read_bytes
