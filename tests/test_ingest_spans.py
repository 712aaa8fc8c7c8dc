"""Large files read in spans (one Ray task each) give exactly the whole file's rows, locators and
bad records. These run the span readers directly; test_ray.py runs them on Ray."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mixline.pipelines import readers
from mixline.pipelines.readers import FieldMap, Span, count_bytes, read, read_span, splittable


def _rows(batches: object) -> tuple[list[tuple], list[tuple]]:
    rows: list[tuple] = []
    bad: list[tuple] = []
    for b in batches:  # type: ignore[attr-defined]
        t = b.table
        rows += list(zip(*(t.column(c).to_pylist() for c in ("text", "file", "locator", "original_id", "meta")), strict=True))
        bad += [(r.file, r.locator, r.reason, r.excerpt) for r in b.bad]
    return rows, bad


def _jsonl_spans(path: Path, step: int) -> list[Span]:
    size = path.stat().st_size
    spans, first = [], 1
    for s in range(0, size, step):
        e = min(s + step, size)
        spans.append(Span(s, e, first))
        first += count_bytes(path, s, e)[0]
    return spans


def _messy_jsonl(path: Path, n: int, seed: int, trailing_newline: bool = True) -> None:
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        r = rnd.random()
        if r < 0.05:
            lines.append("")  # blank
        elif r < 0.10:
            lines.append("{not json")
        elif r < 0.13:
            lines.append(json.dumps({"body": "no text field"}))
        elif r < 0.15:
            lines.append(json.dumps({"text": "x" * rnd.choice([5_000, 100_000])}))  # past the record limit below
        elif r < 0.17:
            lines.append('{"text": "caf\\u00e9 \u00fcber", "id": "u' + str(i) + '"}')
        else:
            words = " ".join(rnd.choice(["alpha", "beta", "gamma", "delta", "épsilon", "ζήτα"]) for _ in range(rnd.randint(1, 60)))
            lines.append(json.dumps({"text": words, "id": f"r{i}", "tag": rnd.randint(0, 9)}, ensure_ascii=rnd.random() < 0.5))
    body = "\n".join(lines) + ("\n" if trailing_newline else "")
    path.write_bytes(body.encode())


@pytest.mark.parametrize(("chunk", "blocks"), [(64, 1), (64, 3), (1000, 1), (4096, 2), (8 << 20, 1)])
@pytest.mark.parametrize("trailing", [True, False])
def test_jsonl_spans_equal_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, blocks: int,
                                          trailing: bool) -> None:
    # A span is whole reader chunks; small chunks put both fast (Arrow) and per-line chunks in one file.
    monkeypatch.setattr(readers, "CHUNK_BYTES", chunk)
    step = chunk * blocks
    path = tmp_path / "messy.jsonl"
    _messy_jsonl(path, 400, seed=step, trailing_newline=trailing)
    fields = FieldMap(("text",), ("id",), max_record_bytes=2000)
    whole = _rows(read(path, fields))
    assert whole[0] and whole[1]  # the file has both good and bad records
    assert any("longer than" in b[2] for b in whole[1])
    spans = _jsonl_spans(path, step)
    parts: tuple[list, list] = ([], [])
    for sp in spans:
        r, b = _rows(read_span(path, fields, "jsonl", sp))
        parts[0].extend(r)
        parts[1].extend(b)
    assert parts == whole
    assert len(spans) == -(-path.stat().st_size // step)


def test_a_span_inside_one_long_line_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"text": "y" * 1000}) + "\n" + json.dumps({"text": "second"}) + "\n")
    fields = FieldMap(("text",))
    assert _rows(read_span(path, fields, "jsonl", Span(100, 200, 1))) == ([], [])
    first, second = (_rows(read_span(path, fields, "jsonl", sp))[0] for sp in (Span(0, 100, 1), Span(200, path.stat().st_size, 1)))
    assert [r[2] for r in first] == ["line 1"] and [(r[0], r[2]) for r in second] == [("second", "line 2")]


def test_parquet_row_group_spans_equal_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    texts = [f"document number {i}" if i % 13 else "" for i in range(2_500)]
    pq.write_table(pa.table({"text": texts, "id": [f"d{i}" for i in range(2_500)]}), path, row_group_size=300)
    fields = FieldMap(("text",), ("id",))
    whole = _rows(read(path, fields))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 9
    parts: tuple[list, list] = ([], [])
    first = 0
    for start, end in ((0, 2), (2, 3), (3, 9)):
        r, b = _rows(read_span(path, fields, "parquet", Span(start, end, first)))
        parts[0].extend(r)
        parts[1].extend(b)
        first += sum(meta.row_group(g).num_rows for g in range(start, end))
    assert parts == whole
    assert whole[0][-1][2] == "row 2499"


def test_which_files_are_split(tmp_path: Path) -> None:
    for name, fmt in (("a.jsonl", "jsonl"), ("a.parquet", "parquet"), ("a.csv", "csv"), ("a.tsv", "tsv"),
                      ("a.warc", "warc"), ("a.warc.gz", "warc")):
        assert splittable(tmp_path / name, fmt), name
    # A byte offset in a compressed stream is no place to start reading.
    for name, fmt in (("a.jsonl.gz", "jsonl"), ("a.csv.zst", "csv"), ("a.warc.bz2", "warc"), ("a.json", "json"),
                      ("a.yaml", "yaml")):
        assert not splittable(tmp_path / name, fmt), name


def _read_in_spans(path: Path, fields: FieldMap, fmt: str, step: int) -> tuple[tuple[list, list], bool]:
    """What the Ray planner and workers do, in one process: spans, then the end-to-end check."""
    from mixline.pipelines.distributed_ingest import spans_meet
    from mixline.pipelines.readers import SpanFallback

    size = path.stat().st_size
    rows: tuple[list, list] = ([], [])
    bounds = []
    first, quotes = 1, 0
    for s in range(0, size, step):
        e = min(s + step, size)
        b: dict = {"start": -1, "end": -1, "fallback": False}
        try:
            r, bad = _rows(read_span(path, fields, fmt, Span(s, e, first, quotes), bounds=b))
            rows[0].extend(r)
            rows[1].extend(bad)
        except SpanFallback:
            b["fallback"] = True
        bounds.append(b)
        n_lines, n_quotes = count_bytes(path, s, e, (b"\n", b'"'))
        first, quotes = first + n_lines, quotes + n_quotes
    return rows, spans_meet(bounds, size)


def _csv(path: Path, n: int, seed: int, delimiter: str = ",") -> None:
    import csv

    rnd = random.Random(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(["id", "text", "note"])
        for i in range(n):
            text = " ".join(rnd.choice(["plain", "with, comma", 'a "quoted" word', "two\nlines", "tab\there", "ünï"])
                            for _ in range(rnd.randint(1, 8)))
            row = [f"r{i}", text, rnd.choice(["", "x", "multi\nline\nnote"])]
            if rnd.random() < 0.03:
                row.append("an extra field")  # a bad record: more fields than the header
            w.writerow(row)


@pytest.mark.parametrize("step", [50, 333, 4096])
@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_csv_spans_with_quoted_newlines_meet_and_equal_the_whole_file(tmp_path: Path, step: int, delimiter: str) -> None:
    path = tmp_path / ("rows.csv" if delimiter == "," else "rows.tsv")
    _csv(path, 300, seed=step, delimiter=delimiter)
    fmt = "csv" if delimiter == "," else "tsv"
    fields = FieldMap(("text",), ("id",))
    whole = _rows(read(path, fields, fmt))
    assert len(whole[0]) > 250 and whole[1] and "two\nlines" in "".join(r[0] for r in whole[0])
    parts, met = _read_in_spans(path, fields, fmt, step)
    assert met  # quote parity finds every record start: no file falls back to a whole read
    assert parts == whole


@pytest.mark.parametrize("damage", ["stray quote", "bare CR", "bad UTF-8"])
def test_csv_spans_that_could_differ_from_a_whole_read_do_not_meet(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "rows.csv"
    _csv(path, 300, seed=1)
    body = path.read_bytes()
    cut = body.index(b"\n", len(body) // 2) + 1
    insert = {"stray quote": b'r-x,an "odd quote,"\n', "bare CR": b"r-y,old mac\rline,\n",
              "bad UTF-8": b"r-z,\xff\xfe bytes,\n"}[damage]
    path.write_bytes(body[:cut] + insert + body[cut:])
    fields = FieldMap(("text",), ("id",))
    whole = _rows(read(path, fields, "csv"))
    parts, met = _read_in_spans(path, fields, "csv", 200)
    # Either the spans met, and then they read exactly what a whole read reads, or the file is
    # read whole. A stray quote in an unquoted field flips the parity guess for every later span.
    assert parts == whole if met else not met
    if damage != "stray quote":
        assert not met


def _warc(path: Path, n: int, gz: bool) -> None:
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    raw = io.BytesIO()
    writer = WARCWriter(raw, gzip=gz)
    for i in range(n):
        html = f"<html><body><p>page {i} says hello</p>{'<p>more</p>' * (i % 7)}</body></html>".encode()
        if i % 11 == 0:
            html = b"<html><body><script>x()</script></body></html>"  # no visible text: a bad record
        ctype = "text/html" if i % 5 else "image/png"
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "response",
                                                      payload=io.BytesIO(html), http_headers=http))
        if i % 4 == 0:
            writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "request",
                                                          payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
    path.write_bytes(raw.getvalue())


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("step", [100, 1500, 10_000])
def test_warc_spans_meet_and_equal_the_whole_file(tmp_path: Path, gz: bool, step: int) -> None:
    path = tmp_path / ("pages.warc.gz" if gz else "pages.warc")
    _warc(path, 120, gz)
    fields = FieldMap()
    whole = _rows(read(path, fields, "warc"))
    assert len(whole[0]) > 60 and whole[1]
    parts, met = _read_in_spans(path, fields, "warc", step)
    assert met
    assert parts == whole


def test_a_damaged_warc_span_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "pages.warc.gz"
    _warc(path, 60, True)
    body = path.read_bytes()
    path.write_bytes(body[: len(body) // 2] + b"\x1f\x8b\x08garbage" + body[len(body) // 2 + 40:])
    _, met = _read_in_spans(path, FieldMap(), "warc", 1000)
    assert not met


def test_a_long_csv_is_read_in_batches_of_bounded_size(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    _csv(path, 300, seed=3)
    fields = FieldMap(("text",), ("id",))
    batches = list(read(path, fields, "csv", batch_rows=50))
    assert len(batches) >= 6 and max(b.table.num_rows for b in batches) <= 50
    assert _rows(batches) == _rows(read(path, fields, "csv", batch_rows=1_000_000))
