"""Every parser under hypothesis, and hostile inputs: the only outcomes are a typed error or a
quarantined record with its reason. Each test prints how many cases it tried.

Parsers: JSONL (plain, .gz, .zst), JSON arrays, CSV, TSV, Parquet, WARC, chat records
(OpenAI, ShareGPT, Open-Assistant trees), YAML, curation recipes, mix recipes, loop files
and predicates.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from mixline.curation.recipe import Recipe
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.loop import LoopConfig
from mixline.pipelines.mix import MixRecipe
from mixline.pipelines.readers import FieldMap, read
from mixline.store import Store
from mixline.store.select import validate_where

from mixline.errors import MixlineError

EXAMPLES = int(os.environ.get("MIXLINE_FUZZ_EXAMPLES", 150))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])
TRIED: dict[str, int] = {}
LIMITS = FieldMap(max_record_bytes=1 << 20, max_file_bytes=8 << 20)


def consume(path: Path, fmt: str | None = None, fields: FieldMap = LIMITS) -> tuple[int, int]:
    """Read a file to the end: (rows, bad records). A MixlineError is an allowed outcome too."""
    rows = bad = 0
    try:
        for batch in read(path, fields, fmt):
            rows += batch.table.num_rows
            bad += len(batch.bad)
            for b in batch.bad:
                assert b.reason and b.locator, b
    except MixlineError:
        pass
    return rows, bad


def ingested(path: Path, fmt: str | None = None) -> None:
    """The same file through a whole ingest (validation, hashing, spool, insert) into a fresh store."""
    with Store(":memory:") as st:
        try:
            r = ingest(st, path, IngestOptions(kind="web", source="fuzz", format=fmt, allow_bad=True,
                                               max_bytes=1 << 18, max_file_bytes=8 << 20))
        except MixlineError:
            return
        assert r.records == r.ingested + r.duplicates + r.quarantined
        assert st.scalar("SELECT count(*) FROM samples") == r.ingested


def count(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nfuzz cases tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))


# Text that is hard on parsers: quotes, braces, separators, NUL, lone surrogates, odd unicode.
_NASTY = hs.text(alphabet=hs.characters(codec=None, categories=None, blacklist_categories=()), max_size=40) | hs.sampled_from(
    ["", "\x00", "\ud800", "\udfff", '"', "\\", "{", "[", ",", "\t", "\n", "\r\n", "\u2028", "\ufeff", "é", "\U0001f600"])
_JSONISH = hs.recursive(hs.none() | hs.booleans() | hs.integers() | hs.floats(allow_nan=True) | _NASTY,
                        lambda c: hs.lists(c, max_size=4) | hs.dictionaries(hs.sampled_from(["text", "messages", "conversations", "role",
                                                                                             "content", "from", "value", "replies", "id", "x"]) | _NASTY, c, max_size=4),
                        max_leaves=12)


def _bytes_of(value: object) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return b"{}"


@FUZZ
@given(hs.lists(_JSONISH.map(_bytes_of) | hs.binary(max_size=60), max_size=12), hs.sampled_from(["", ".gz", ".zst"]),
       hs.integers(0, 100))
def test_jsonl(tmp_path_factory, records, compression, cut):
    data = b"\n".join(records) + b"\n"
    if compression == ".gz":
        data = gzip.compress(data)
    elif compression == ".zst":
        data = zstandard.ZstdCompressor().compress(data)
    data = data[: max(1, len(data) * cut // 100)] if compression and cut < 100 else data
    path = tmp_path_factory.mktemp("f") / f"x.jsonl{compression}"
    path.write_bytes(data)
    consume(path)
    ingested(path)
    count("jsonl")


@FUZZ
@given(_JSONISH, hs.booleans())
def test_json_array_and_chat_records(tmp_path_factory, value, wrap):
    path = tmp_path_factory.mktemp("f") / "x.json"
    path.write_bytes(_bytes_of([value] if wrap else value))
    consume(path, "json")
    ingested(path, "json")
    count("json and chats")


@FUZZ
@given(hs.lists(hs.lists(_NASTY, max_size=4), max_size=6), hs.sampled_from([",", "\t"]), hs.booleans())
def test_csv_tsv(tmp_path_factory, rows, delimiter, header):
    text = "\n".join(delimiter.join(f'"{c}"' if i % 2 else c for i, c in enumerate(r)) for r in [["text", "id"], *rows])
    path = tmp_path_factory.mktemp("f") / ("x.csv" if delimiter == "," else "x.tsv")
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    consume(path, fields=FieldMap(csv_header=header, max_record_bytes=1 << 20, max_file_bytes=8 << 20))
    count("csv/tsv")


@FUZZ
@given(hs.lists(hs.none() | hs.text(max_size=30), min_size=0, max_size=8), hs.integers(0, 100))
def test_parquet(tmp_path_factory, texts, cut):
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), buf)
    data = buf.getvalue()
    path = tmp_path_factory.mktemp("f") / "x.parquet"
    path.write_bytes(data if cut == 100 else data[: len(data) * cut // 100])
    consume(path)
    count("parquet")


def _warc(html: bytes, ctype: str) -> bytes:
    http = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n" + html
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.org/\r\n"
            f"WARC-Record-ID: <urn:uuid:1>\r\nContent-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http)}\r\n\r\n").encode()
    return head + http + b"\r\n\r\n"


@FUZZ
@given(hs.binary(max_size=200) | _NASTY.map(lambda t: f"<html><body><p>{t}</p></body></html>".encode("utf-8", "surrogatepass")),
       hs.sampled_from(["text/html", "text/html; charset=latin-1", "application/pdf"]), hs.integers(0, 100), hs.booleans())
def test_warc(tmp_path_factory, html, ctype, cut, compress):
    data = _warc(html, ctype)
    data = data if cut == 100 else data[: len(data) * cut // 100]
    path = tmp_path_factory.mktemp("f") / ("x.warc.gz" if compress else "x.warc")
    path.write_bytes(gzip.compress(data) if compress else data)
    consume(path)
    count("warc")


@FUZZ
@given(hs.binary(max_size=120) | hs.lists(hs.lists(_NASTY, max_size=3) | _NASTY, max_size=4).map(
    lambda c: ("conversations:\n" + "".join(f"- {json.dumps(x, ensure_ascii=False)}\n" for x in c)).encode("utf-8", "surrogatepass")))
def test_yaml(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("f") / "x.yml"
    path.write_bytes(data)
    consume(path)
    count("yaml")


_RECIPE_VALUE = hs.recursive(hs.none() | hs.booleans() | hs.integers(-5, 10**6) | hs.floats(allow_nan=True) | _NASTY,
                             lambda c: hs.lists(c, max_size=3) | hs.dictionaries(_NASTY, c, max_size=3), max_leaves=8)
_STEP_KEYS = hs.sampled_from(["type", "kinds", "where", "min_chars", "mode", "threshold", "policy", "names", "domains", "n"])


@FUZZ
@given(hs.dictionaries(hs.sampled_from(["name", "keep", "steps", "groups", "seed", "total_tokens", "holdout", "status",
                                        "max_synthetic_share", "real_where", "generations", "strategies", "gate", "tiny"]),
                       _RECIPE_VALUE | hs.lists(hs.dictionaries(_STEP_KEYS, _RECIPE_VALUE | hs.sampled_from(
                           ["length", "toxicity", "pii", "minhash_dedup", "web", "drop", "tag"]), max_size=4), max_size=3),
                       max_size=6))
def test_recipe_mix_and_loop_files(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("f")
    for name, parse in (("recipe", lambda p: Recipe.from_file(p).build()), ("mix", MixRecipe.from_file),
                        ("loop", LoopConfig.from_file)):
        path = folder / f"{name}.json"
        path.write_text(json.dumps(data, default=str), encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(MixlineError):
            parse(path)
    count("recipe/mix/loop files")


@FUZZ
@given(_NASTY | hs.lists(hs.sampled_from(["kind", "=", "'web'", "(", ")", "OR", "AND", "TRUE", ";", "store_secrets",
                                          "read_text('/etc/passwd')", "SELECT", "1", "--", "n_chars", ">"]), max_size=10).map(" ".join))
def test_predicates(predicate):
    with Store(":memory:") as st:
        try:
            expr = validate_where(st, predicate)
        except MixlineError:
            count("predicates")
            return
        st.execute(f"SELECT count(*) FROM samples WHERE {expr}").fetchall()
    count("predicates")


# -- hostile inputs ---------------------------------------------------------------------------

def test_gzip_bomb_stops_at_the_file_limit(store, tmp_path):
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    line = json.dumps({"text": "a " * 50}).encode() + b"\n"
    chunk = line * 20000
    parts = [comp.compress(chunk) for _ in range(200)]  # about 2 GB once decompressed
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(b"".join(parts) + comp.flush())
    assert path.stat().st_size < 20 << 20
    r = ingest(store, path, IngestOptions(kind="web", source="bomb", max_file_bytes=8 << 20, allow_bad=True))
    assert r.quarantined == 1 and r.records < 100_000
    assert "passes --max-file-bytes" in store.scalar("SELECT reason FROM quarantine")


def test_a_100mb_record_is_skipped_without_holding_it(store, tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as fh:
        fh.write(json.dumps({"text": "before"}).encode() + b"\n")
        fh.write(b'{"text": "' + b"x" * (100 << 20) + b'"}\n')
        fh.write(json.dumps({"text": "after"}).encode() + b"\n")
    r = ingest(store, path, IngestOptions(kind="web", source="huge", max_bytes=1 << 20, allow_bad=True))
    assert (r.ingested, r.quarantined) == (2, 1)
    assert store.scalar("SELECT locator FROM quarantine") == "line 2"


def test_nul_bytes_surrogates_and_mixed_encodings(store, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"text": "nul \\u0000 inside"}\n{"text": "latin-1 caf\xe9"}\n{"text": "utf-8 caf\xc3\xa9"}\n'
                     b'{"text": "\\ud83d alone"}\n{"text": "pair \\ud83d\\ude00 ok"}\n\x00\x00\x00\n')
    r = ingest(store, path, IngestOptions(kind="web", source="m", allow_bad=True))
    assert r.records == 6 and r.ingested + r.quarantined == 6
    reasons = " ".join(x for (x,) in store.execute("SELECT reason FROM quarantine").fetchall())
    assert "invalid UTF-8" in reasons and "lone surrogate" in reasons


def test_symlink_loop_and_directory_as_a_file(store, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(MixlineError, match="symlink loop"):
        ingest(store, tmp_path / "a", IngestOptions(kind="web", source="l"))
    folder = tmp_path / "folder.jsonl"  # a folder named like a file
    folder.mkdir()
    (folder / "x.jsonl").write_text(json.dumps({"text": "inside a folder"}) + "\n")
    assert ingest(store, folder, IngestOptions(kind="web", source="f")).ingested == 1
