"""Readers keep working while a run writes: they read the snapshot the last committed run published."""

from __future__ import annotations

import json
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


def cli(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store), *args]


def test_stats_trace_sql_runs_and_mix_show_work_while_a_run_writes(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    subprocess.run(cli(store, "ingest", "--quiet", str(_jsonl(tmp_path / "a.jsonl", 50, "first")), "--kind", "web",
                       "--source", "a"), check=True)
    (tmp_path / "mix.toml").write_text('name = "m"\nstatus = ["kept", "uncurated"]\n[[groups]]\nname = "all"\nwhere = "TRUE"\n')
    mix = json.loads(subprocess.run(cli(store, "mix", "build", str(tmp_path / "mix.toml"), "--json"), check=True,
                                    capture_output=True, text=True).stdout)["mix_id"]
    info = snapshot_info(store)
    assert info is not None and snapshot_path(store).exists()
    with Store(store, read_only=True) as st:
        sid = st.scalar("SELECT sample_id FROM samples LIMIT 1")
        last_run = st.scalar("SELECT run_id FROM runs WHERE status = 'ok' ORDER BY started_at DESC LIMIT 1")
    assert info["run_id"] == last_run

    writer = subprocess.Popen(cli(store, "ingest", "--quiet", str(_jsonl(tmp_path / "b.jsonl", 300_000, "second")),
                                  "--kind", "web", "--source", "b"))
    try:
        time.sleep(1.5)
        assert writer.poll() is None, "the writer finished too soon; make its input bigger"
        for args in (["stats", "--json"], ["trace", sid, "--json"], ["sql", "SELECT count(*) AS n FROM samples", "--json"],
                     ["runs", "--json"], ["mix", "show", mix, "--json"]):
            res = subprocess.run(cli(store, *args), capture_output=True, text=True)
            assert res.returncode == 0, (args, res.stderr)
            assert writer.poll() is None, "the reader must have run while the writer held the store"
            if args[0] != "sql":
                assert f"reading its snapshot as of run {last_run}" in res.stderr, res.stderr
        counted = json.loads(subprocess.run(cli(store, "sql", "SELECT count(*) AS n FROM samples", "--json"),
                                            capture_output=True, text=True).stdout)
        assert counted[0]["n"] == 50, "the snapshot holds what was committed, not the run in progress"
    finally:
        writer.wait()
    assert writer.returncode == 0
    assert snapshot_info(store)["run_id"] != last_run, "the writer published a new snapshot when it committed"
    with Store(store, read_only=True) as st:
        assert st.snapshot is None and st.scalar("SELECT count(*) FROM samples") == 300_050


def test_a_locked_store_without_a_snapshot_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "s.duckdb"
    monkeypatch.setenv("MIXLINE_SNAPSHOTS", "off")
    with Store(store) as st:
        with st.run("test", "t", {}):
            pass
        res = subprocess.run(cli(store, "stats"), capture_output=True, text=True,
                             env={**__import__("os").environ, "MIXLINE_SNAPSHOTS": "off"})
        assert res.returncode == 5 and "Only one process may write to a store" in res.stderr


def test_a_writer_waits_for_a_brief_reader(tmp_path: Path, monkeypatch) -> None:
    """The dashboard opens the store read-only for each request; a writer starting then waits instead of failing."""
    from mixline.errors import StoreError

    store = tmp_path / "s.duckdb"
    Store(store).close()
    reader = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(store)!r}, read_only=True); "
                               "print('open', flush=True); time.sleep(1.5)"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
    monkeypatch.setenv("MIXLINE_LOCK_WAIT", "0")
    with pytest.raises(StoreError, match="Only one process may write"):
        Store(store)
    monkeypatch.setenv("MIXLINE_LOCK_WAIT", "20")
    started = time.monotonic()
    with Store(store) as st:
        assert st.scalar("SELECT 1") == 1
    assert 0.2 < time.monotonic() - started < 20
    reader.wait()
