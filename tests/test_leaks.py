"""Leaks: spools, quarantine excerpts, trace before the pii step, secrets in run configs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from mixline.curation.pipeline import curate
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.store import Store
from mixline.store.lineage import trace

EMAIL = "maria.okafor@mailhost.io"


def _big(path: Path, n: int = 200_000) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"record {i} written by {EMAIL} " + "lorem ipsum dolor sit amet " * 30}) + "\n")
    return path


def _spools(folder: Path) -> list[Path]:
    return list(folder.glob(".mixline-spool-*"))


def test_sigterm_and_sigkill_leave_no_spool_of_raw_text(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    big = _big(tmp_path / "big.jsonl")
    cmd = [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store), "ingest", "--quiet", "--kind", "web", "--source"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen([*cmd, f"big-{sig.name}", str(big)])
        for _ in range(300):  # wait until the spool holds text
            time.sleep(0.02)
            if any(p.stat().st_size > 0 for d in _spools(tmp_path) for p in d.iterdir()):
                break
        assert proc.poll() is None and _spools(tmp_path), "ingest ended before it spooled; make the file bigger"
        proc.send_signal(sig)
        proc.wait()
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and _spools(tmp_path) == [], "SIGTERM must clean up on the way out"
    assert _spools(tmp_path), "a SIGKILLed run cannot clean up; its spool stays until the next writer"
    with Store(store) as st:
        assert st.scalar("SELECT count(*) FROM runs WHERE status = 'running'") == 1  # the killed one
        ingest(st, [_small(tmp_path)], IngestOptions(kind="web", source="next"))
        assert st.scalar("SELECT count(*) FROM runs WHERE status = 'aborted'") == 2  # SIGTERM's, and SIGKILL's
    assert _spools(tmp_path) == [], "the next writer deletes a dead run's spool"


def _small(tmp_path: Path) -> Path:
    p = tmp_path / "small.jsonl"
    p.write_text(json.dumps({"text": "a short clean record of text"}) + "\n")
    return p


def test_quarantine_excerpts_are_scrubbed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"body": f"write to {EMAIL} or call +44 20 7946 0958"}) + "\n"
                    + json.dumps({"text": "fine record"}) + "\n")
    ingest(store, path, IngestOptions(kind="web", source="b", allow_bad=True))
    excerpt = store.scalar("SELECT excerpt FROM quarantine")
    assert EMAIL not in excerpt and "7946" not in excerpt and "<EMAIL>" in excerpt


def test_trace_withholds_text_until_the_pii_step_has_seen_it(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    from tests.test_curation_filters import GOOD as text

    path.write_text(json.dumps({"text": text}) + "\n")
    ingest(store, path, IngestOptions(kind="web", source="a"))
    sid = store.scalar("SELECT sample_id FROM samples")
    before = trace(store, sid).sample
    assert before["withheld"] and "no pii step" in before["text"]
    curate(store)
    after = trace(store, sid).sample
    assert after["text"] == text and not after.get("withheld")


def test_secrets_in_configs_are_not_stored(store: Store) -> None:
    with store.run("test", "t", {"hub_token": "hf_abcdefghijklmnop", "max_new_tokens": 64, "nested": {"password": "pw1234"}}):
        pass
    cfg = json.loads(store.scalar("SELECT config FROM runs WHERE kind = 'test'"))
    assert cfg == {"hub_token": "<redacted>", "max_new_tokens": 64, "nested": {"password": "<redacted>"}}
