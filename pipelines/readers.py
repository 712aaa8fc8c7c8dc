"""Readers turn input files into Arrow batches of candidate samples plus bad records.

Every batch has the columns of `BATCH_SCHEMA`; `meta` may instead be a struct column that
the ingest step serialises to JSON. A reader never drops a record silently: anything it
cannot use becomes a `BadRecord` with its file, line or byte offset, and the reason.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.json as pa_json
from mixline.curation.chat import render
from mixline.pipelines import chat
from mixline.store.ids import canonical_json

from mixline.errors import InputError, UnknownFormatError

BATCH_SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("messages", pa.string()),
        ("file", pa.string()),
        ("locator", pa.string()),
        ("original_id", pa.string()),
        ("url", pa.string()),
        ("meta", pa.string()),
    ]
)
CHUNK_BYTES = 8 << 20
EXCERPT_CHARS = 200
FORMATS = ("jsonl", "json", "parquet", "csv", "tsv", "txt", "warc", "yaml", "hf")


@dataclass(frozen=True)
class FieldMap:
    """Which input fields hold the text (joined with a blank line), the id and the url."""

    text: tuple[str, ...] = ("text",)
    id: str | None = None
    url: str | None = None
    csv_header: bool = True
    # Limits against hostile input (a compression bomb, a line with no end): a line past
    # max_record_bytes is quarantined and skipped; reading stops past max_file_bytes decompressed.
    max_record_bytes: int | None = None
    max_file_bytes: int | None = None

    def id_fields(self) -> tuple[str, ...]:
        return (self.id,) if self.id else ("id", "_id", "doc_id", "uuid", "message_id")

    def url_fields(self) -> tuple[str, ...]:
        return (self.url,) if self.url else ("url", "source_url", "link")


@dataclass
class BadRecord:
    file: str
    locator: str
    reason: str
    excerpt: str | None = None
    keys: tuple[str, ...] | None = None  # a JSON record's field names, to say which field holds the text


@dataclass
class Batch:
    table: pa.Table
    bad: list[BadRecord] = field(default_factory=list)
    bytes_read: int = 0


# -- format detection ------------------------------------------------------------------------

def detect_format(path: Path) -> str:
    """The format of a path, from its name, else from its first bytes."""
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return "hf"
        return "dir"
    name = path.name.lower()
    for suffix in (".gz", ".zst", ".zstd", ".bz2"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".warc", ".arc")):
        return "warc"
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    by_ext = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "json", "parquet": "parquet",
              "csv": "csv", "tsv": "tsv", "txt": "txt", "md": "txt", "yml": "yaml", "yaml": "yaml"}
    if ext in by_ext:
        return by_ext[ext]
    head = _open(path).read(64).lstrip()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"WARC/"):
        return "warc"
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"["):
        return "json"
    raise UnknownFormatError(
        f"{path}: cannot tell its format from the name or the first bytes; rename it with one of "
        ".jsonl .json .parquet .csv .tsv .txt .warc.gz .yaml (optionally .gz/.zst), or pass --format"
    )


class DamagedStreamError(OSError):
    """A compressed file that is corrupt or ends early; every byte before the damage was returned."""


def _decompressor(name: str) -> Callable[[], Any] | None:
    if name.endswith(".gz"):
        return lambda: zlib.decompressobj(wbits=47)  # gzip or zlib header, one member at a time
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return lambda: zstandard.ZstdDecompressor().decompressobj()
    if name.endswith(".bz2"):
        return bz2.BZ2Decompressor
    return None


class TooLargeError(OSError):
    """A file whose content passes --max-file-bytes once decompressed."""


def _pieces(path: Path, size: int = 1 << 16, limit: int | None = None) -> Iterator[bytes]:
    total = 0
    for piece in _raw_pieces(path, size):
        total += len(piece)
        if limit is not None and total > limit:
            raise TooLargeError(f"content passes --max-file-bytes {limit} once decompressed (a compression bomb?); "
                                "raise --max-file-bytes if the file is genuine")
        yield piece


def _raw_pieces(path: Path, size: int = 1 << 16) -> Iterator[bytes]:
    """The decompressed bytes of a file, piece by piece, across every gzip member, zstd frame
    or bz2 stream. Damage raises DamagedStreamError after all the bytes before it: a file cut
    at a frame boundary ends inside the next frame's header or not at all, and either is seen.

    Each piece is bounded (a compression bomb is never inflated in one call): gzip and bz2
    take an output limit; zstd, which does not, is fed 1 KiB of input at a time.
    """
    name = path.name.lower()
    new = _decompressor(name)
    with open(path, "rb") as fh:
        if new is None:
            while piece := fh.read(size):
                yield piece
            return
        zstd = name.endswith((".zst", ".zstd"))
        d, started, offset = new(), False, 0
        while raw := fh.read(1024 if zstd else size):
            offset += len(raw)
            data = raw
            while data:
                try:
                    yield from _inflate(d, data, size, "zst" if zstd else "bz2" if name.endswith(".bz2") else "gz")
                except DamagedStreamError:
                    raise
                except Exception as exc:  # zlib.error, zstd.ZstdError, OSError, EOFError
                    raise DamagedStreamError(f"compressed data is corrupt before byte {offset} ({exc})") from None
                started = True
                if d.eof:  # end of a member or frame: what follows is the next one
                    data, d, started = d.unused_data, new(), False
                else:
                    data = b""
        if started and not d.eof:
            raise DamagedStreamError(f"compressed stream ends early, at byte {offset}, inside a member or frame")


def _inflate(d: Any, data: bytes, size: int, kind: str) -> Iterator[bytes]:
    """All output of one input slice, at most `size` bytes a piece where the decompressor allows."""
    if kind == "bz2":
        out = d.decompress(data, size)
        while True:
            if out:
                yield out
            if d.eof or d.needs_input:
                return
            out = d.decompress(b"", size)
    if kind == "gz":
        while True:
            out = d.decompress(data, size)
            if out:
                yield out
            data = d.unconsumed_tail
            if d.eof or not data:
                return
    out = d.decompress(data)  # zstd
    if out:
        yield out


class _Stream(io.RawIOBase):
    """A readable file over `_pieces`."""

    def __init__(self, path: Path, limit: int | None = None) -> None:
        self._it = _pieces(path, limit=limit)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            self._buf = next(self._it, b"")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _open(path: Path, limit: int | None = None) -> IO[bytes]:
    if _decompressor(path.name.lower()) is None and limit is None:
        return open(path, "rb")
    return io.BufferedReader(_Stream(path, limit), buffer_size=1 << 16)


@dataclass(frozen=True)
class Span:
    """A piece of one large file that a task reads alone. For JSONL, the lines whose first byte
    lies in [start, end), `first` being the number of the line at `start` (1 + the newlines
    before it); for Parquet, row groups [start, end), `first` being the number of rows before."""

    start: int
    end: int
    first: int
    quotes: int = 0  # CSV: the double quotes before `start`, whose parity says if it is inside a field


class SpanFallback(Exception):
    """A span that cannot be read alone exactly as a whole-file read would read it (bad UTF-8,
    a malformed row, a bare carriage return, damage): its file is read whole instead."""


def splittable(path: Path, fmt: str) -> bool:
    """Whether a file can be read in spans: uncompressed JSONL and CSV, Parquet, and WARC
    (uncompressed, or gzip with one member per record, as Common Crawl writes it)."""
    name = path.name.lower()
    if fmt == "parquet":
        return True
    if fmt == "warc":
        return _decompressor(name) is None or name.endswith(".gz")
    return fmt in ("jsonl", "csv", "tsv") and _decompressor(name) is None


def count_bytes(path: Path, start: int, end: int, needles: tuple[bytes, ...] = (b"\n",)) -> list[int]:
    """How often each byte in `needles` occurs in bytes [start, end) of a file."""
    n = [0] * len(needles)
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0 and (piece := fh.read(min(left, 1 << 24))):
            for i, b in enumerate(needles):
                n[i] += piece.count(b)
            left -= len(piece)
    return n


def read_span(path: Path, fields: FieldMap, fmt: str, span: Span, batch_rows: int = 20_000,
              bounds: dict[str, int] | None = None) -> Iterator[Batch]:
    """The batches of one span of a file: together, a file's spans give exactly its batches'
    rows, locators and bad records, in order.

    CSV and WARC spans guess where their first record starts; `bounds` gets the offsets of the
    span's first record and of the record after its last ("start", "end"), and the caller checks
    that a file's spans meet end to end (else it reads the file whole). A span that cannot be
    read alone raises SpanFallback."""
    bounds = {} if bounds is None else bounds
    if fmt == "parquet":
        yield from _read_parquet(path, fields, batch_rows, span)
    elif fmt == "jsonl":
        yield from _read_jsonl(path, fields, batch_rows, span)
    elif fmt in ("csv", "tsv"):
        yield from _read_csv_span(path, fields, "," if fmt == "csv" else "\t", span, bounds, batch_rows)
    elif fmt == "warc":
        yield from _read_warc(path, fields, batch_rows, span, bounds)
    else:
        raise ValueError(f"{path}: a {fmt} file is not read in spans")


def _span_pieces(path: Path, span: Span, size: int = 1 << 16) -> tuple[Iterator[bytes], int, int]:
    """The bytes of a JSONL span's lines, the number of its first line and its offset. A span starting
    inside a line leaves that line to the span before it; the span's last line runs past
    `end` to its newline."""
    fh = open(path, "rb")  # noqa: SIM115 (closed by the generator)
    start, skipped = _record_start(fh, span, quoted=False)
    first = span.first + skipped
    fh.seek(start)

    def pieces() -> Iterator[bytes]:
        with fh:
            pos = start
            if pos >= span.end:
                return
            # Pieces end where a whole-file read's do (multiples of `size`), so a line too long
            # for one record is found at the same byte either way.
            while piece := fh.read(size - pos % size):
                if pos + len(piece) >= span.end:  # the piece holds byte end - 1: stop at the newline from there
                    nl = piece.find(b"\n", max(0, span.end - 1 - pos))
                    if nl >= 0:
                        yield piece[: nl + 1]
                        return
                yield piece
                pos += len(piece)

    return pieces(), first, start


def read(path: Path, fields: FieldMap, fmt: str | None = None, *, split: str | None = None,
         batch_rows: int = 20_000) -> Iterator[Batch]:
    """Every batch of a file, a folder (recursively) or a Hugging Face dataset."""
    if fmt is None and isinstance(path, Path) and not path.exists() and path.as_posix().startswith("hf:"):
        fmt = "hf"
    if fmt != "hf" and not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if fmt is not None and fmt not in FORMATS:
        raise UnknownFormatError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    fmt = fmt or detect_format(path)
    if fmt == "dir" or (fmt != "hf" and path.is_dir()):
        # A folder: formats are detected per file, or --format applies to every file.
        yield from _read_dir(path, fields, batch_rows, None if fmt == "dir" else fmt)
        return
    readers: dict[str, Callable[[], Iterator[Batch]]] = {
        "jsonl": lambda: _read_jsonl(path, fields, batch_rows),
        "json": lambda: _read_json_array(path, fields, batch_rows),
        "parquet": lambda: _read_parquet(path, fields, batch_rows),
        "csv": lambda: _read_csv(path, fields, ",", batch_rows),
        "tsv": lambda: _read_csv(path, fields, "\t", batch_rows),
        "txt": lambda: _read_txt([path], path.parent, fields.max_file_bytes),
        "warc": lambda: _read_warc(path, fields, batch_rows),
        "yaml": lambda: _read_yaml(path, fields.max_file_bytes),
        "hf": lambda: _read_hf(path, fields, split, batch_rows),
    }
    try:
        yield from readers[fmt]()
    except OSError as exc:  # damage or a bomb in a whole-file format: the file is quarantined, the call goes on
        yield Batch(_empty(), [BadRecord(str(path), "file", f"{exc}; re-create or re-download the file")])


def dir_files(path: Path, fmt: str | None) -> tuple[list[Path], list[Path]]:
    """A folder's files in reading order: its text files (read together, first), then the
    rest, sorted; hidden files are skipped."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    txt = [p for p in files if p.suffix.lower() in (".txt", ".md")] if fmt in (None, "txt") else []
    chosen = set(txt)
    return txt, [p for p in files if p not in chosen]


def _read_dir(path: Path, fields: FieldMap, batch_rows: int, fmt: str | None = None) -> Iterator[Batch]:
    txt, rest = dir_files(path, fmt)
    if txt:
        yield from _read_txt(txt, path, fields.max_file_bytes)
    for p in rest:
        try:
            file_fmt = fmt or detect_format(p)
        except UnknownFormatError as exc:
            yield Batch(_empty(), [BadRecord(str(p), "file", str(exc))])
            continue
        yield from read(p, fields, file_fmt, batch_rows=batch_rows)


# -- rows to batches -----------------------------------------------------------------------------

def _empty() -> pa.Table:
    return BATCH_SCHEMA.empty_table()


def _excerpt(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    s = raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)
    return s[:EXCERPT_CHARS]


def _utf8_ok(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first(record: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for n in names:
        v = record.get(n)
        if v is not None and v != "":
            return str(v)
    return None


class RowBuilder:
    """Collects records (dicts) into a batch, turning each into text or messages, or a BadRecord."""

    def __init__(self, file: str, fields: FieldMap) -> None:
        self.file = file
        self.fields = fields
        self.cols: dict[str, list[Any]] = {n: [] for n in BATCH_SCHEMA.names}
        self.bad: list[BadRecord] = []

    def __len__(self) -> int:
        return len(self.cols["text"])

    def add_row(self, locator: str, text: str | None, messages: str | None, original_id: str | None,
                url: str | None, meta: dict[str, Any] | None) -> None:
        meta_json = json.dumps(meta, ensure_ascii=False, default=str) if meta else None
        for name, value in (("text", text), ("messages", messages), ("id", original_id), ("url", url), ("other fields", meta_json)):
            if value is not None and not _utf8_ok(value):
                self.bad.append(BadRecord(self.file, locator, f"{name} holds a lone surrogate (a \\ud800-\\udfff escape "
                                          "that is half of a UTF-16 pair); fix or remove the escape",
                                          _excerpt(value.encode("utf-8", "backslashreplace").decode("ascii", "replace"))))
                return
        c = self.cols
        c["text"].append(text)
        c["messages"].append(messages)
        c["file"].append(self.file)
        c["locator"].append(locator)
        c["original_id"].append(original_id)
        c["url"].append(url)
        c["meta"].append(meta_json)

    def add_record(self, locator: str, record: Any) -> None:
        """A JSON-like record: a chat in a known format, or a document with text fields."""
        if not isinstance(record, dict):
            self.bad.append(BadRecord(self.file, locator, f"record is a JSON {type(record).__name__}, expected an object", _excerpt(record)))
            return
        fmt = chat.detect(record) if self.fields.text == ("text",) or "text" not in record else None
        try:
            if fmt == "oasst":
                for i, (msgs, ids) in enumerate(chat.oasst_threads(record)):
                    meta = {k: v for k, v in record.items() if k not in ("replies", "text")}
                    meta.update(ids)
                    self.add_row(f"{locator} thread {i}", render(msgs), canonical_json(msgs),
                                 str(ids["tree_id"]), None, meta)
                return
            if fmt in ("openai", "sharegpt"):
                msgs = chat.from_openai(record["messages"]) if fmt == "openai" else chat.from_sharegpt(record["conversations"])
                meta = {k: v for k, v in record.items() if k not in ("messages", "conversations")}
                self.add_row(locator, render(msgs), canonical_json(msgs),
                             _first(record, self.fields.id_fields()), _first(record, self.fields.url_fields()), meta)
                return
        except chat.ChatFormatError as exc:
            self.bad.append(BadRecord(self.file, locator, f"bad {fmt} conversation: {exc}", _excerpt(record)))
            return
        parts = []
        for name in self.fields.text:
            if name not in record or record[name] is None:
                self.bad.append(BadRecord(self.file, locator, f"missing text field {name!r} (set --text-field to the field that holds the text)",
                                          _excerpt(record), tuple(map(str, record))))
                return
            value = record[name]
            if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
                value = "\n\n".join(value)
            if not isinstance(value, str):
                self.bad.append(BadRecord(self.file, locator, f"field {name!r} is a {type(value).__name__}, expected a string", _excerpt(record)))
                return
            parts.append(value)
        meta = {k: v for k, v in record.items() if k not in self.fields.text}
        if len(parts) == 1 and chat.is_transcript(parts[0]):
            msgs = chat.from_transcript(parts[0])
            self.add_row(locator, render(msgs), canonical_json(msgs), _first(record, self.fields.id_fields()),
                         _first(record, self.fields.url_fields()), meta or None)
            return
        self.add_row(locator, "\n\n".join(parts), None, _first(record, self.fields.id_fields()),
                     _first(record, self.fields.url_fields()), meta or None)

    def flush(self, bytes_read: int = 0) -> Batch:
        batch = Batch(pa.table(self.cols, schema=BATCH_SCHEMA), self.bad, bytes_read)
        self.cols = {n: [] for n in BATCH_SCHEMA.names}
        self.bad = []
        return batch


def from_arrow(table: pa.Table, file: str, first_row: int, fields: FieldMap, unit: str = "row") -> Batch:
    """A batch from an Arrow table (Parquet, CSV, HF datasets, fast-path JSONL)."""
    names = set(table.column_names)
    is_chat = ("messages" in names or "conversations" in names or "replies" in names) and not (set(fields.text) <= names and fields.text != ("text",))
    strings = set(fields.text) <= names and all(pa.types.is_string(table.schema.field(n).type) or pa.types.is_large_string(table.schema.field(n).type) for n in fields.text)
    if strings and len(fields.text) == 1:
        import pyarrow.compute as pc

        # Human/Assistant transcripts become messages, which the per-record path does.
        is_chat = is_chat or bool(pc.any(pc.match_substring_regex(table.column(fields.text[0]), r"^\n*Human:")).as_py())
    if is_chat or not strings or any(table.column(f).null_count for f in fields.text):
        # Slow path: per-record conversion gives each bad row its own reason (a null text is a
        # missing field, said with the fields the record has).
        rb = RowBuilder(file, fields)
        for i, rec in enumerate(table.to_pylist()):
            rb.add_record(f"{unit} {first_row + i}", rec)
        return rb.flush()
    n = table.num_rows
    if len(fields.text) == 1:
        text = table.column(fields.text[0])
    else:
        import pyarrow.compute as pc

        text = pc.binary_join_element_wise(*[table.column(f) for f in fields.text], "\n\n")
    rest = [c for c in table.column_names if c not in fields.text]

    def pick(names_: tuple[str, ...]) -> pa.Array:
        for nm in names_:
            if nm in names:
                return table.column(nm).cast(pa.string())
        return pa.nulls(n, pa.string())

    cols = {
        "text": text.cast(pa.string()),
        "messages": pa.nulls(n, pa.string()),
        "file": pa.array([file] * n, pa.string()),
        "locator": pa.array([f"{unit} {first_row + i}" for i in range(n)], pa.string()),
        "original_id": pick(fields.id_fields()),
        "url": pick(fields.url_fields()),
    }
    out = pa.table(cols)
    if rest:
        meta = pa.StructArray.from_arrays([table.column(c).combine_chunks() for c in rest], names=rest)
        out = out.append_column("meta", meta)
    else:
        out = out.append_column("meta", pa.nulls(n, pa.string()))
    return Batch(out)


# -- JSONL ------------------------------------------------------------------------------------

def _chunks(path: Path, max_line: int | None = None, max_file: int | None = None,
            span: Span | None = None) -> Iterator[tuple[bytes, int, int, str | None]]:
    """Chunks of whole lines: (bytes, first line number, bytes read so far, error at that point).

    Reads in small pieces so that a truncated compressed stream still yields every whole
    line before the damage. A line longer than `max_line` is reported and skipped without
    being held in memory; reading stops once `max_file` decompressed bytes have been read.
    """
    if span is None:
        pieces, line_no, base = _pieces(path, limit=max_file), 1, 0
    else:
        pieces, line_no, base = _span_pieces(path, span)
    buf = bytearray()
    read_total = 0
    error: str | None = None
    skipping = False
    while True:
        try:
            piece = next(pieces, b"")
        except OSError as exc:
            error = f"{exc}; every whole line before it was read"
            piece = b""
        if piece:
            read_total += len(piece)
            if skipping:
                nl = piece.find(b"\n")
                if nl < 0:
                    continue
                piece, skipping = piece[nl + 1:], False
                line_no += 1
            buf += piece
            # A chunk is the lines whose first byte lies in one CHUNK_BYTES-aligned block of the
            # stream, so a span of a file (a multiple of blocks) is read in the same chunks.
            while True:
                buf_start = base + read_total - len(buf)
                boundary = (buf_start // CHUNK_BYTES + 1) * CHUNK_BYTES
                if buf_start + len(buf) < boundary:
                    break
                nl = buf.find(b"\n", boundary - 1 - buf_start)
                if nl < 0:
                    break
                whole = bytes(buf[: nl + 1])
                del buf[: nl + 1]
                yield whole, line_no, read_total, None
                line_no += whole.count(b"\n")
            last = buf.rfind(b"\n")
            if max_line is not None and len(buf) - (last + 1) > max_line:
                # The line being read has no end in sight: pass the whole lines, report it, skip it.
                if last >= 0:
                    whole = bytes(buf[: last + 1])
                    yield whole, line_no, read_total, None
                    line_no += whole.count(b"\n")
                yield b"", line_no, read_total, (f"line {line_no} is longer than {max_line:,} bytes, the limit for one "
                                                 "record (4 x --max-bytes); it was skipped (split the record, or raise --max-bytes)")
                buf.clear()
                skipping = True
            continue
        # End of stream (or damage): whole lines go through, a partial last line is reported.
        if error and buf:
            cut = buf.rfind(b"\n")
            whole = bytes(buf[: cut + 1])
            if whole:
                yield whole, line_no, read_total, None
                line_no += whole.count(b"\n")
            yield b"", line_no, read_total, f"line {line_no} is cut off: {error}"
        elif buf:
            yield bytes(buf), line_no, read_total, error
        elif error:
            yield b"", line_no, read_total, error
        return


def _read_jsonl(path: Path, fields: FieldMap, batch_rows: int, span: Span | None = None) -> Iterator[Batch]:
    file = str(path)
    for chunk, first_line, read_total, error in _chunks(path, fields.max_record_bytes, fields.max_file_bytes, span):
        if chunk:
            yield from _jsonl_chunk(chunk, first_line, file, fields, batch_rows, read_total)
        if error:
            yield Batch(_empty(), [BadRecord(file, f"line {first_line}", error)], 0)


def _jsonl_chunk(chunk: bytes, first_line: int, file: str, fields: FieldMap, batch_rows: int, read_total: int) -> Iterator[Batch]:
    n_lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    # Arrow's reader only for lines that are all objects: pyarrow 26 crashes (SIGSEGV) on a
    # chunk of bare `null` lines, and other top-level values are bad records anyway.
    clean = (chunk.startswith(b"{") and chunk.count(b"\n{") == n_lines - 1 and b"\r" not in chunk)
    if clean:
        batch = None
        try:
            table = pa_json.read_json(io.BytesIO(chunk), read_options=pa_json.ReadOptions(block_size=1 << 20))
            if table.num_rows == n_lines:
                batch = from_arrow(table, file, first_line, fields, unit="line")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, UnicodeDecodeError):
            pass  # the per-line path below gives each bad line its own reason (a key in bad UTF-8, say)
        if batch is not None:
            batch.bytes_read = read_total
            yield batch
            return
    rb = RowBuilder(file, fields)
    offset = 0
    for i, raw in enumerate(chunk.split(b"\n")):
        line_no = first_line + i
        start = offset
        offset += len(raw) + 1
        if not raw.strip():
            continue
        loc = f"line {line_no}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rb.bad.append(BadRecord(file, loc, f"invalid UTF-8 at byte {exc.start} of the line (chunk offset {start + exc.start}); re-encode the file as UTF-8", _excerpt(raw)))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            rb.bad.append(BadRecord(file, loc, f"malformed JSON at column {exc.colno}: {exc.msg}", _excerpt(line)))
            continue
        rb.add_record(loc, record)
        if len(rb) >= batch_rows:
            yield rb.flush()
    yield rb.flush(read_total)


def _read_json_array(path: Path, fields: FieldMap, batch_rows: int) -> Iterator[Batch]:
    file = str(path)
    with _open(path, fields.max_file_bytes) as fh:
        raw = fh.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield Batch(_empty(), [BadRecord(file, f"byte {exc.start}", "invalid UTF-8; re-encode the file as UTF-8")])
        return
    except json.JSONDecodeError as exc:
        if raw.lstrip().startswith(b"{"):
            yield from _read_jsonl(path, fields, batch_rows)
            return
        yield Batch(_empty(), [BadRecord(file, f"line {exc.lineno}", f"malformed JSON at column {exc.colno}: {exc.msg}")])
        return
    records = data if isinstance(data, list) else [data]
    rb = RowBuilder(file, fields)
    for i, rec in enumerate(records):
        rb.add_record(f"item {i}", rec)
        if len(rb) >= batch_rows:
            yield rb.flush()
    yield rb.flush(len(raw))


# -- columnar ---------------------------------------------------------------------------------

def _read_parquet(path: Path, fields: FieldMap, batch_rows: int, span: Span | None = None) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        yield Batch(_empty(), [BadRecord(str(path), "file", f"not a readable Parquet file: {exc}")])
        return
    row = 0 if span is None else span.first
    groups = None if span is None else list(range(span.start, span.end))
    for rb in pf.iter_batches(batch_size=batch_rows, row_groups=groups):
        table = pa.Table.from_batches([rb])
        yield from_arrow(table, str(path), row, fields)
        row += table.num_rows


def _read_csv(path: Path, fields: FieldMap, delimiter: str, batch_rows: int = 20_000) -> Iterator[Batch]:
    file = str(path)
    rb = RowBuilder(file, fields)
    with _open(path, fields.max_file_bytes) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="strict", newline="")
        # Without a header row, columns are named by position: "0", "1", ...
        reader = csv.DictReader(text, delimiter=delimiter) if fields.csv_header else _NumberedReader(text, delimiter)
        try:
            for rec in reader:
                _csv_record(rb, f"line {reader.line_num}", rec)
                if len(rb) >= batch_rows:  # memory stays flat however long the file
                    yield rb.flush()
        except UnicodeDecodeError as exc:
            rb.bad.append(BadRecord(file, f"line {reader.line_num + 1}", f"invalid UTF-8 ({exc.reason}); rows after it were not read; re-encode the file as UTF-8"))
        except csv.Error as exc:
            rb.bad.append(BadRecord(file, f"line {reader.line_num}", f"malformed CSV: {exc}"))
    yield rb.flush()


def _csv_record(rb: RowBuilder, loc: str, rec: dict[str | None, Any]) -> None:
    if None in rec:
        rb.bad.append(BadRecord(rb.file, loc, f"row has {len(rec) - 1 + len(rec[None])} fields, the header has {len(rec) - 1}", _excerpt(str(rec[None]))))
        return
    rb.add_record(loc, rec)


class _LineFeed:
    """A file's physical lines from a byte offset, decoded, with the offset after the last one
    read. Anything a whole-file read would see differently (bad UTF-8, which it meets a block
    at a time; a bare carriage return, which ends its lines) raises SpanFallback."""

    def __init__(self, fh: IO[bytes], offset: int) -> None:
        self.fh, self.offset = fh, offset

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        raw = self.fh.readline()
        if not raw:
            raise StopIteration
        if raw.count(b"\r") != raw.count(b"\r\n"):
            raise SpanFallback("a bare carriage return")
        self.offset += len(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SpanFallback("invalid UTF-8") from None


def _record_start(fh: IO[bytes], span: Span, quoted: bool) -> tuple[int, int]:
    """The first line start at or after the span's start, and the newlines skipped to reach it.
    With `quoted` (CSV), a newline inside a double-quoted field is not a line's end: the parity
    of the quotes before the span says whether it starts inside one."""
    if span.start == 0:
        return 0, 0
    fh.seek(span.start - 1)
    inside = quoted and span.quotes % 2 == 1
    if fh.read(1) == b"\n" and not inside:
        return span.start, 0
    pos, skipped = span.start, 0
    while piece := fh.read(1 << 16):
        i = 0
        while True:
            q = piece.find(b'"', i) if quoted else -1
            n = -1 if inside else piece.find(b"\n", i)
            if n >= 0 and (q < 0 or n < q):
                return pos + n + 1, skipped + 1
            if q < 0:
                skipped += piece.count(b"\n", i)
                break
            skipped += piece.count(b"\n", i, q)
            inside, i = not inside, q + 1
        pos += len(piece)
    return pos, skipped  # no line starts in the rest of the file


def _read_csv_span(path: Path, fields: FieldMap, delimiter: str, span: Span, bounds: dict[str, int],
                   batch_rows: int = 20_000) -> Iterator[Batch]:
    rb = RowBuilder(str(path), fields)
    with open(path, "rb") as fh:
        names = None
        if span.start > 0 and fields.csv_header:  # the header row, from the file's start
            names = next(csv.reader(_LineFeed(fh, 0), delimiter=delimiter), [])
        start, skipped = _record_start(fh, span, quoted=True)
        fh.seek(start)
        feed = _LineFeed(fh, start)
        bounds["start"] = start
        reader = csv.DictReader(feed, fieldnames=names, delimiter=delimiter) if fields.csv_header else _NumberedReader(feed, delimiter)
        before = span.first - 1 + skipped  # lines before the span's first record
        try:
            while feed.offset < span.end:
                rec = next(iter(reader), None)
                if rec is None:
                    break
                _csv_record(rb, f"line {before + reader.line_num}", rec)
                if len(rb) >= batch_rows:
                    yield rb.flush()
        except csv.Error as exc:
            raise SpanFallback(f"malformed CSV: {exc}") from None
        bounds["end"] = feed.offset
    yield rb.flush()


class _NumberedReader:
    """csv.DictReader's interface for files without a header row."""

    def __init__(self, fh: Iterable[str], delimiter: str) -> None:
        self._reader = csv.reader(fh, delimiter=delimiter)

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    def __iter__(self) -> Iterator[dict[str | None, Any]]:
        for row in self._reader:
            yield {str(i): v for i, v in enumerate(row)}


# -- text, WARC, YAML, HF ------------------------------------------------------------------------

def _read_txt(paths: list[Path], root: Path, limit: int | None = None) -> Iterator[Batch]:
    rb = RowBuilder("", FieldMap())
    for p in paths:
        rb.file = str(p)
        try:
            with _open(p, limit) as fh:
                raw = fh.read()
        except OSError as exc:
            rb.bad.append(BadRecord(str(p), "file", f"{exc}; re-create or re-download the file"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rb.bad.append(BadRecord(str(p), f"byte {exc.start}", "invalid UTF-8; re-encode the file as UTF-8", _excerpt(raw[max(0, exc.start - 40): exc.start + 40])))
            continue
        rb.add_row("file", text, None, str(p.relative_to(root)) if p.is_relative_to(root) else p.name, None, None)
        # Each file is its own record; flush keeps file names right per row.
        yield rb.flush(len(raw))
    if rb.bad:  # a bad last file is reported too
        yield rb.flush()


def html_to_text(html: bytes | str) -> str:
    """Visible text of an HTML page, one line per block. Boilerplate is left to curation's filters."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html if isinstance(html, str) else html.decode("utf-8", "replace"))
    for tag in ("script", "style", "noscript", "svg", "iframe", "template"):
        for node in tree.css(tag):
            node.decompose()
    body = tree.body or tree.root
    if body is None:
        return ""
    text = body.text(separator="\n", strip=True)
    lines = [ln.strip() for ln in text.splitlines()]
    return "\n".join(ln for ln in lines if ln)


def _read_warc(path: Path, fields: FieldMap, batch_rows: int, span: Span | None = None,
               bounds: dict[str, int] | None = None) -> Iterator[Batch]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    file = str(path)
    rb = RowBuilder(file, fields)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if span is not None:  # the records whose first byte lies in the span
            fh.seek(_warc_record_start(fh, span.start, path.name.lower().endswith(".gz")))
            if bounds is not None:
                bounds["start"] = bounds["end"] = fh.tell()
            if fh.tell() >= span.end:
                yield rb.flush(0)
                return
        it = ArchiveIterator(fh)
        stop = size  # where the span's records end: the next record's offset, or the file's end
        try:
            for record in it:
                if span is not None and it.offset >= span.end:
                    stop = it.offset
                    break
                if record.rec_type != "response":
                    continue
                headers = record.http_headers
                ctype = (headers.get_header("Content-Type") if headers else "") or ""
                if "html" not in ctype.lower():
                    continue
                payload = record.content_stream().read()
                # The offset must be asked for after the payload is read: asking first skips it.
                loc = f"offset {it.get_record_offset()}"
                text = html_to_text(payload)
                url = record.rec_headers.get_header("WARC-Target-URI")
                rid = record.rec_headers.get_header("WARC-Record-ID")
                meta = {"warc_record_id": rid, "warc_date": record.rec_headers.get_header("WARC-Date"),
                        "content_type": ctype, "http_status": headers.get_statuscode() if headers else None}
                if not text.strip():
                    rb.bad.append(BadRecord(file, loc, f"HTML response for {url} has no visible text"))
                    continue
                rb.add_row(loc, text, None, rid, url, meta)
                if len(rb) >= batch_rows:
                    yield rb.flush()
        except (ArchiveLoadFailed, EOFError, zlib.error, OSError, ValueError, AttributeError, TypeError, IndexError,
                KeyError, UnicodeError) as exc:
            # warcio meets damaged headers with any of these; the records before the damage stay.
            if span is not None:
                raise SpanFallback(f"corrupt or truncated WARC ({type(exc).__name__})") from None
            rb.bad.append(BadRecord(file, f"offset {it.offset}", f"corrupt or truncated WARC ({type(exc).__name__}: {exc})"))
        else:
            if bounds is not None:
                bounds["end"] = stop
    yield rb.flush(size if span is None else min(span.end, size) - span.start)


def _warc_record_start(fh: IO[bytes], offset: int, gz: bool) -> int:
    """The first record at or after `offset`: a gzip member that inflates to a WARC header, or
    a line that is one. A guess inside a payload is caught by the spans' end-to-end check."""
    import re

    head = re.compile(rb"WARC/1\.[01]\r?\n")
    before = b"\n"  # the byte before `offset`: a header line must follow a newline
    if offset > 0:
        fh.seek(offset - 1)
        before = fh.read(1)
    pos = offset
    fh.seek(pos)
    carry = b""
    while True:
        piece = fh.read(1 << 16)
        if not piece:
            return pos + len(carry)
        data, base = carry + piece, pos
        i = 0
        while True:
            i = data.find(b"\x1f\x8b\x08" if gz else b"WARC/1.", i)
            if i < 0 or len(data) - i < 64:
                break
            at = base + i
            if gz:
                try:
                    ok = zlib.decompressobj(wbits=31).decompress(data[i:i + 4096], 16).startswith(b"WARC/")
                except zlib.error:
                    ok = False
            else:
                ok = (data[i - 1:i] if i else before) == b"\n" and head.match(data, i) is not None
            if ok:
                return at
            i += 1
        keep = min(len(data), 64)
        carry, pos = data[-keep:], base + len(data) - keep



def _read_yaml(path: Path, limit: int | None = None) -> Iterator[Batch]:
    """Chatterbot-style YAML: `conversations:` as lists of alternating user/assistant turns."""
    import yaml

    file = str(path)
    rb = RowBuilder(file, FieldMap())
    try:
        with _open(path, limit) as fh:
            data = yaml.safe_load(fh.read().decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        rb.bad.append(BadRecord(file, "file", f"not valid UTF-8 YAML: {exc}"))
        yield rb.flush()
        return
    convs = data.get("conversations") if isinstance(data, dict) else None
    if not isinstance(convs, list):
        rb.bad.append(BadRecord(file, "file", "YAML has no 'conversations' list; only chatterbot-style YAML is read"))
        yield rb.flush()
        return
    cats = data.get("categories")
    for i, conv in enumerate(convs):
        loc = f"conversation {i}"
        if not isinstance(conv, list) or not conv or not all(isinstance(t, str) for t in conv):
            rb.bad.append(BadRecord(file, loc, "a conversation must be a list of strings", _excerpt(conv)))
            continue
        msgs = [{"role": "user" if j % 2 == 0 else "assistant", "content": t} for j, t in enumerate(conv)]
        rb.add_row(loc, render(msgs), canonical_json(msgs), None, None, {"categories": cats})
    yield rb.flush()


def _read_hf(path: Path, fields: FieldMap, split: str | None, batch_rows: int) -> Iterator[Batch]:
    """A saved dataset folder (`save_to_disk`), or `hf:NAME` on the hub for users who are online."""
    import datasets

    name = path.as_posix()
    if name.startswith("hf:"):
        ds: Any = datasets.load_dataset(name[3:], split=split or "train")
        label = name
    else:
        ds = datasets.load_from_disk(str(path))
        label = str(path)
        if isinstance(ds, datasets.DatasetDict):
            if split is None and len(ds) > 1:
                raise InputError(f"{path} holds splits {sorted(ds)}; choose one with --split")
            ds = ds[split or next(iter(ds))]
    row = 0
    for table in ds.with_format("arrow").iter(batch_size=batch_rows):
        yield from_arrow(table, label, row, fields)
        row += table.num_rows

