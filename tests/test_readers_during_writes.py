"""Readers keep working while a run writes: they read the snapshot the last committed run published."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mixline.store import Store
from mixline.store.store import snapshot_info, snapshot_path


def _jsonl(path: Path, n: int, tag: str) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"{tag} record {i} " + "lorem ipsum dolor sit amet " * 30}) + "\n")
    return path


def _prose(path: Path, n: int, seed: int) -> Path:
    """Documents of varied words, which curation's filters and MinHash must work through."""
    rng = random.Random(seed)
    words = ["the", "river", "data", "model", "north", "sample", "city", "winter", "market", "lineage", "garden",
             "letter", "museum", "train", "history", "village", "music", "paper", "science", "forest", "bridge",
             "harbour", "summer", "school"]
    with path.open("w") as fh:
        for _ in range(n):
            sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 16))).capitalize() + "."
                         for _ in range(rng.randint(6, 12))]
            fh.write(json.dumps({"text": " ".join(sentences)}) + "\n")
    return path


def cli(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store), *args]


def test_stats_trace_sql_runs_and_mix_show_work_while_a_run_writes(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    subprocess.run(cli(store, "ingest", "--quiet", str(_jsonl(tmp_path / "a.jsonl", 50, "first")), "--kind", "web",
                       "--source", "a"), check=True)
    subprocess.run(cli(store, "ingest", "--quiet", str(_prose(tmp_path / "b.jsonl", 8000, 1)), "--kind", "web",
                       "--source", "b"), check=True)
    (tmp_path / "mix.toml").write_text('name = "m"\nstatus = ["kept", "uncurated"]\n[[groups]]\nname = "all"\nwhere = "TRUE"\n')
    mix = json.loads(subprocess.run(cli(store, "mix", "build", str(tmp_path / "mix.toml"), "--json"), check=True,
                                    capture_output=True, text=True).stdout)["mix_id"]
    info = snapshot_info(store)
    assert info is not None and snapshot_path(store).exists()
    with Store(store, read_only=True) as st:
        sid = st.scalar("SELECT sample_id FROM samples LIMIT 1")
        last_run = st.scalar("SELECT run_id FROM runs WHERE status = 'ok' ORDER BY started_at DESC LIMIT 1")
    assert info["run_id"] == last_run

    # The writer: a curate of 8,050 documents holds the store for several times as long as
    # the five reads below take (an ingest of 300k documents was too quick on a loaded machine).
    writer = subprocess.Popen(cli(store, "curate", "--quiet"))
    try:
        time.sleep(1.0)
        assert writer.poll() is None, "the writer finished too soon; make its input bigger"
        for args in (["stats", "--json"], ["trace", sid, "--json"], ["sql", "SELECT count(*) AS n FROM samples", "--json"],
                     ["runs", "--json"], ["mix", "show", mix, "--json"]):
            res = subprocess.run(cli(store, *args), capture_output=True, text=True)
            assert res.returncode == 0, (args, res.stderr)
            assert writer.poll() is None, "the reader must have run while the writer held the store"
            if args[0] != "sql":
                assert f"reading its snapshot as of run {last_run}" in res.stderr, res.stderr
        counted = json.loads(subprocess.run(cli(store, "sql", "SELECT count(*) AS n FROM decisions", "--json"),
                                            capture_output=True, text=True).stdout)
        assert counted[0]["n"] == 0, "the snapshot holds what was committed, not the run in progress"
        assert writer.poll() is None, "the reads must have run while the writer held the store"
    finally:
        writer.wait()
    assert writer.returncode == 0
    assert snapshot_info(store)["run_id"] != last_run, "the writer published a new snapshot when it committed"
    with Store(store, read_only=True) as st:
        assert st.snapshot is None and st.scalar("SELECT count(DISTINCT sample_id) FROM decisions") == 8050


def test_a_locked_store_without_a_snapshot_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "s.duckdb"
    monkeypatch.setenv("MIXLINE_SNAPSHOTS", "off")
    with Store(store) as st:
        with st.run("test", "t", {}):
            pass
        res = subprocess.run(cli(store, "stats"), capture_output=True, text=True,
                             env={**__import__("os").environ, "MIXLINE_SNAPSHOTS": "off"})
        assert res.returncode == 5 and "Only one process may write to a store" in res.stderr
        assert f"is being written by process {__import__('os').getpid()}" in res.stderr
        assert "no read snapshot beside it (s.duckdb.snapshot" in res.stderr and "copied with it" in res.stderr
        assert "IO Error" not in res.stderr and "Could not set lock" not in res.stderr


def test_a_copy_without_its_snapshot_tells_readers_what_to_do(tmp_path: Path) -> None:
    """`cp store.duckdb elsewhere/` leaves the snapshot behind; a reader of the copy while a run writes it is told so."""
    import shutil

    src = tmp_path / "s.duckdb"
    with Store(src) as st, st.run("test", "t", {}):
        pass
    assert snapshot_info(src) is not None
    (tmp_path / "elsewhere").mkdir()
    copy = Path(shutil.copy(src, tmp_path / "elsewhere" / "s.duckdb"))
    with Store(copy):  # a writer holds the copy
        res = subprocess.run(cli(copy, "stats"), capture_output=True, text=True)
    msg = " ".join(res.stderr.split())
    assert res.returncode == 5 and "is being written by process" in msg and "its first run is still writing, or it was copied without its snapshot" in msg
    assert "s.duckdb.snapshot and s.duckdb.snapshot.json copied with it" in msg
    assert "Could not set lock" not in msg


def test_a_writer_waits_for_a_brief_reader(tmp_path: Path, monkeypatch) -> None:
    """The dashboard opens the store read-only for each request; a writer starting then waits instead of failing."""
    from mixline.errors import StoreError

    store = tmp_path / "s.duckdb"
    Store(store).close()
    reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(store)!r}, read_only=True); "
                               "print('open', flush=True); time.sleep(3)"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
    monkeypatch.setenv("MIXLINE_LOCK_WAIT", "0")
    with pytest.raises(StoreError, match="Only one process may write") as err:
        Store(store)
    assert f"is held by process {reader.pid}" in str(err.value) and "Could not set lock" not in str(err.value)
    monkeypatch.setenv("MIXLINE_LOCK_WAIT", "20")
    started = time.monotonic()
    with Store(store) as st:
        assert st.scalar("SELECT 1") == 1
    assert 0.2 < time.monotonic() - started < 20
    reader.wait()
