"""Bad input is quarantined with file, line or offset, and reason; nothing is lost."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mixline.pipelines.ingest import IngestOptions, ingest


def test_every_kind_of_bad_record_is_quarantined_with_its_line(store, tmp_path):
    lines = [
        json.dumps({"text": "good one"}).encode(),
        b'{"text": "unterminated',
        b'{"text": "bad \xff utf8"}',
        json.dumps({"text": ""}).encode(),
        json.dumps({"text": "   \n "}).encode(),
        json.dumps({"body": "no text field"}).encode(),
        json.dumps({"text": 42}).encode(),
        json.dumps({"text": "x" * 200}).encode(),
        json.dumps([1, 2]).encode(),
        json.dumps({"text": "good two"}).encode(),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    r = ingest(store, path, IngestOptions(kind="web", source="bad", max_bytes=100, allow_bad=True))
    assert (r.ingested, r.quarantined) == (2, 8)
    got = {q["locator"]: q["reason"] for q in store.rows("SELECT locator, reason FROM quarantine")}
    assert got["line 2"].startswith("malformed JSON at column")
    assert got["line 3"].startswith("invalid UTF-8")
    assert got["line 4"] == got["line 5"] == "empty text (nothing but whitespace)"
    assert got["line 6"].startswith("missing text field 'text'")
    assert got["line 7"] == "field 'text' is a int, expected a string"
    assert got["line 8"].startswith("text of 200 bytes exceeds --max-bytes 100")
    assert got["line 9"] == "record is a JSON list, expected an object"
    assert {q["file"] for q in store.rows("SELECT file FROM quarantine")} == {str(path.resolve())}


def test_truncated_gzip_keeps_what_came_before(store, tmp_path):
    data = gzip.compress(b"".join(json.dumps({"text": f"doc {i} " * 20}).encode() + b"\n" for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    r = ingest(store, path, IngestOptions(kind="web", source="cut"))
    whole = _decodable(path).count(b"\n")
    assert whole > 0 and (r.ingested, r.quarantined) == (whole, 1)
    reasons = [q[0] for q in store.execute("SELECT reason FROM quarantine").fetchall()]
    assert reasons[0].startswith(f"line {whole + 1} is cut off: compressed stream ends early, at byte ")


def _decodable(path: Path) -> bytes:
    """Every byte of a damaged gzip file that zlib can decode, independently of mixline's reader."""
    import zlib

    d = zlib.decompressobj(wbits=31)
    return d.decompress(path.read_bytes())


def test_cli_reports_count_and_first_reasons(mixline, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{oops\n{"text": ""}\n')
    out = mixline("ingest", str(path), "--kind", "web", "--source", "b", "--allow-bad").stdout
    assert "1 new samples" in out and "2 quarantined" in out
    assert f"{path.resolve()}:line 2: malformed JSON" in out
    data = mixline.json("quarantine")
    assert data["total"] == 2


def _big_jsonl(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": i, "text": f"record {i} " + "lorem ipsum dolor sit amet " * 40}) + "\n")


def test_killed_ingest_leaves_store_unchanged_and_rerun_completes(tmp_path):
    store_path = tmp_path / "s.duckdb"
    small = tmp_path / "small.jsonl"
    small.write_text('{"text": "already here"}\n')
    big = tmp_path / "big.jsonl"
    _big_jsonl(big, 250_000)
    cmd = [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store_path), "ingest", "--quiet", "--kind", "web", "--source"]
    subprocess.run([*cmd, "small", str(small)], check=True)
    proc = subprocess.Popen([*cmd, "big", str(big)], env={**os.environ, "MIXLINE_MEMORY_LIMIT": "512MB"})
    time.sleep(2.5)
    assert proc.poll() is None, "ingest finished before it could be killed; make the file bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from mixline.store import Store

    with Store(store_path) as st:
        assert st.scalar("SELECT count(*) FROM samples") == 1
        assert st.scalar("SELECT count(*) FROM sample_origins") == 1
    subprocess.run([*cmd, "big", str(big)], check=True)
    with Store(store_path, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM samples") == 250_001
