"""Nothing lost and failing loudly: damaged compressed files, bad bytes, no usable record, too many bad ones."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
import zstandard
from mixline.pipelines.ingest import IngestOptions, ingest

from mixline.errors import InputError

LINES = [json.dumps({"text": f"record number {i} with a few words in it"}) for i in range(1000)]
DATA = ("\n".join(LINES) + "\n").encode()


def opts(**kw) -> IngestOptions:
    return IngestOptions(**{"kind": "web", "source": "t", **kw})


def test_zstd_cut_at_a_frame_boundary_is_quarantined_not_silent(store, tmp_path):
    c = zstandard.ZstdCompressor()
    first, second = c.compress(b"".join(x.encode() + b"\n" for x in LINES[:500])), c.compress(b"".join(x.encode() + b"\n" for x in LINES[500:]))
    whole = tmp_path / "whole.jsonl.zst"
    whole.write_bytes(first + second)
    assert ingest(store, whole, opts()).ingested == 1000, "every frame is read, not only the first"
    for name, data in (("half.jsonl.zst", first + second[: len(second) // 2]), ("header.jsonl.zst", first + second[:6])):
        path = tmp_path / name
        path.write_bytes(data)
        r = ingest(store, path, opts(source=name))
        assert (r.records, r.quarantined) == (501, 1), name
        reason = store.scalar("SELECT reason FROM quarantine WHERE file = ?", [str(path.resolve())])
        assert reason.startswith("line 501 is cut off: compressed stream ends early"), reason


def test_gzip_members_are_all_read_and_a_cut_keeps_every_whole_line(store, tmp_path):
    multi = tmp_path / "multi.jsonl.gz"
    cut_at = DATA.index(b"\n", len(DATA) // 2) + 1
    multi.write_bytes(gzip.compress(DATA[:cut_at]) + gzip.compress(DATA[cut_at:]))
    assert ingest(store, multi, opts()).ingested == 1000
    cut = tmp_path / "cut.jsonl.gz"
    blob = gzip.compress(DATA)
    cut.write_bytes(blob[: int(len(blob) * 0.9)])
    whole = zlib.decompressobj(wbits=31).decompress(cut.read_bytes()).count(b"\n")
    r = ingest(store, cut, opts(source="cut"))
    assert (r.records, r.quarantined) == (whole + 1, 1) and 800 < whole < 1000


def test_bad_bytes_and_lone_surrogates_are_quarantined_one_by_one(store, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": "a good record in another file"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text":"ok one"}\n{"text":"bad \xff byte"}\n{"text":"ok two"}\n{"text":"lone \\ud800 x"}\n'
                    b'{"text":"fine", "meta":"\\udfff"}\n{"text":"ok three"}\n')
    r = ingest(store, [good, bad], opts())
    assert (r.ingested, r.quarantined) == (4, 3)
    got = dict(store.execute("SELECT locator, reason FROM quarantine").fetchall())
    assert got["line 2"].startswith("invalid UTF-8") and "lone surrogate" in got["line 4"]
    assert got["line 5"].startswith("other fields holds a lone surrogate")


def test_a_bad_text_file_last_in_a_folder_is_quarantined(store, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a good file of plain text")
    (folder / "z.txt").write_bytes(b"bad \xff\xfe bytes")
    r = ingest(store, folder, opts())
    assert (r.ingested, r.quarantined) == (1, 1)
    assert store.scalar("SELECT file FROM quarantine").endswith("z.txt")


def test_no_usable_record_exits_3_and_quarantines_nothing(mixline, tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": "q?", "answer": f"a {i}"}) + "\n" for i in range(20)))
    res = mixline("ingest", str(path), "--kind", "web", "--source", "qa", ok=False)
    assert res.exit_code == 3
    assert res.stderr.strip().splitlines()[-1] == (
        "error: no usable record in 20 read: every record lacks field 'text'; records have: question, answer. "
        "Set --text-field to the field that holds the text")
    assert "Traceback" not in res.stderr
    assert mixline.json("quarantine")["total"] == 0
    assert mixline.json("stats")["samples"] == 0


def test_too_many_bad_records_roll_back_unless_allowed(store, tmp_path):
    path = tmp_path / "mostly_bad.jsonl"
    path.write_text('{"text": "good one"}\n{oops\n{oops\n{"text": "good two"}\n{oops\n')
    with pytest.raises(InputError, match=r"3 of 5 records \(60%\) are bad, over --max-bad-share 50%.*--allow-bad"):
        ingest(store, path, opts())
    assert store.scalar("SELECT count(*) FROM samples") == 0 and store.scalar("SELECT count(*) FROM quarantine") == 0
    assert ingest(store, path, opts(max_bad_share=0.7)).ingested == 2
    r = ingest(store, path, opts(source="t2", allow_bad=True))
    assert (r.duplicates, r.quarantined) == (2, 3)


def test_records_read_equal_new_plus_duplicates_plus_quarantined_per_file(store, tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"text": "one"}\n{"text": "two"}\n{"text": "one"}\n{bad\n{"text": ""}\n')
    b = tmp_path / "b.jsonl.gz"
    b.write_bytes(gzip.compress(b'{"text": "two"}\n{"text": "three"}\n'))
    r = ingest(store, [a, b], opts(allow_bad=True))
    files = {f["file"].rsplit("/", 1)[-1]: f for f in r.files}
    assert files["a.jsonl"] == {"file": str(a.resolve()), "records": 5, "new": 2, "duplicates": 1, "quarantined": 2}
    assert files["b.jsonl.gz"] == {"file": str(b.resolve()), "records": 2, "new": 1, "duplicates": 1, "quarantined": 0}
    for f in r.files:
        assert f["records"] == f["new"] + f["duplicates"] + f["quarantined"]
    assert sum(f["records"] for f in r.files) == r.records == r.ingested + r.duplicates + r.quarantined


def test_paths_that_used_to_end_in_tracebacks_are_one_line_errors(mixline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    res = mixline("ingest", str(tmp_path / "a"), "--kind", "web", "--source", "loop", ok=False)
    assert res.exit_code == 3 and "symlink loop" in res.stderr and "Traceback" not in res.output
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "x.data").write_text('{"text": "a record in a file with no known extension"}\n')
    assert "1 new samples" in mixline("ingest", str(folder), "--format", "jsonl", "--kind", "web", "--source", "d").stdout
    # A JSONL export whose text holds U+2028 verifies; --out naming a file is a clear error.
    (tmp_path / "u.jsonl").write_text(json.dumps({"text": "one line\u2028with a separator in it"}, ensure_ascii=False) + "\n")
    mixline("ingest", str(tmp_path / "u.jsonl"), "--kind", "web", "--source", "u")
    (tmp_path / "mix.toml").write_text('name = "m"\nstatus = ["kept", "uncurated"]\n[[groups]]\nname = "all"\nwhere = "source = \'u\'"\n')
    mix_id = mixline.json("mix", "build", str(tmp_path / "mix.toml"))["mix_id"]
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    mixline("mix", "export", mix_id, "--format", "jsonl", "--out", str(tmp_path / "exp"))
    assert "OK (1 rows checked)" in mixline("mix", "verify", str(tmp_path / "exp")).stdout
    (tmp_path / "afile").write_text("")
    res = mixline("mix", "export", mix_id, "--format", "jsonl", "--out", str(tmp_path / "afile"), ok=False)
    assert res.exit_code == 2 and "is a file" in res.stderr
