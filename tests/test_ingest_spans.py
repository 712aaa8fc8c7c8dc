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
from mixline.pipelines.readers import FieldMap, Span, count_newlines, read, read_span, splittable


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
        first += count_newlines(path, s, e)
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


def test_only_uncompressed_jsonl_and_parquet_are_split(tmp_path: Path) -> None:
    assert splittable(tmp_path / "a.jsonl", "jsonl") and splittable(tmp_path / "a.parquet", "parquet")
    assert not splittable(tmp_path / "a.jsonl.gz", "jsonl")
    assert not splittable(tmp_path / "a.csv", "csv") and not splittable(tmp_path / "a.warc", "warc")
