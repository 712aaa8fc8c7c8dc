"""DuckLake stores: same results as a single file, time travel, many writers, readers during writes.

SQLite catalogs run everywhere. The PostgreSQL tests use the cluster `.ci/run` starts
(MIXLINE_TEST_PG) or start a throwaway one themselves (tests/pgcluster.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mixline.store import Store
from mixline.store.lake import parse, redact_url
from mixline.store.select import run_user_query

from mixline.errors import ConfigError, ReadOnlyError, StoreError

pytest.importorskip("duckdb_extension_ducklake", reason="DuckLake tests need `pip install mixline[lake]`")

MEDICAL = "domain_medical/medquad_qa.jsonl.gz"
WEB = "web/dolma_cc_en_head-0091.jsonl.gz"
MIX = 'name = "m"\nseed = 3\ntotal_tokens = 30000\n[[groups]]\nname = "all"\nwhere = "TRUE"\nweight = 1.0\n'


def cli(store: str | Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store), *args]


def run(store: str | Path, *args: str) -> dict | list:
    res = subprocess.run(cli(store, *args, "--json"), capture_output=True, text=True)
    assert res.returncode == 0, (args, res.stderr)
    return json.loads(res.stdout)


_WORDS = ["the", "river", "town", "market", "people", "walked", "along", "water", "morning", "bread", "were", "with", "their", "from", "children", "and", "into", "small", "boats", "old", "bridge", "before", "evening", "light", "over", "hills", "while", "farmers", "carried", "baskets", "of", "apples", "down", "narrow", "streets", "where", "a", "baker", "sold", "warm", "loaves", "to", "travellers", "who", "had", "come", "far"]


def _jsonl(path: Path, n: int, tag: str) -> Path:
    """n distinct prose-like documents that the default web filters keep."""
    import random

    with path.open("w") as fh:
        for i in range(n):
            rng = random.Random(f"{tag}-{i}")
            sentences = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
                         for _ in range(8)]
            fh.write(json.dumps({"text": f"{tag.capitalize()} note {i}. " + " ".join(sentences)}) + "\n")
    return path


def _medical_subset(realdata: Path, out: Path, n: int) -> Path:
    import gzip

    with gzip.open(realdata / MEDICAL, "rt") as fh, out.open("w") as dst:
        for i, line in enumerate(fh):
            if i >= n:
                break
            dst.write(line)
    return out


def _outcome(store: str | Path) -> dict:
    """What a pipeline decided, in a form that does not depend on where the store lives."""
    with Store(store, read_only=True) as st:
        return {
            "samples": st.execute("SELECT sample_id FROM samples ORDER BY 1").fetchall(),
            "decisions": st.execute("SELECT sample_id, step, verdict, reason, score FROM decisions ORDER BY ALL").fetchall(),
            "clusters": st.execute("SELECT sample_id, cluster_id, method, kept FROM clusters ORDER BY ALL").fetchall(),
            "edges": st.execute("SELECT child_id, parent_id, relation FROM edges ORDER BY ALL").fetchall(),
            "redactions": st.execute('SELECT sample_id, entity_type, "start", "end" FROM redactions ORDER BY ALL').fetchall(),
        }


def test_a_sqlite_lake_gives_the_single_file_stores_results_on_real_data(tmp_path: Path, realdata: Path) -> None:
    med = _medical_subset(realdata, tmp_path / "med.jsonl", 1500)
    (tmp_path / "mix.toml").write_text(MIX)
    file_store = tmp_path / "one.duckdb"
    lake_url = "sqlite:///" + str(tmp_path / "cat.sqlite")  # an absolute path after the third slash
    out = run(lake_url, "init", "--catalog", lake_url)
    assert out["backend"] == "sqlite" and out["schema_version"] >= 11
    mixes = []
    for store in (file_store, lake_url):
        run(store, "ingest", str(med), "--kind", "domain", "--domain", "medical", "--text-field", "answer", "--quiet")
        run(store, "ingest", str(realdata / WEB), "--kind", "web", "--quiet")
        run(store, "curate", "--quiet")
        mixes.append(run(store, "mix", "build", str(tmp_path / "mix.toml"))["mix_id"])
    assert mixes[0] == mixes[1]
    a, b = _outcome(file_store), _outcome(lake_url)
    assert len(a["decisions"]) > 1500 and any(r[2] == "dropped" for r in a["decisions"])
    for key in a:
        assert a[key] == b[key], key
    assert list((tmp_path / "cat.sqlite.files").rglob("*.parquet")), "the lake's rows live in Parquet files"


def test_time_travel_rebuilds_a_mix_at_its_snapshot(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    run(url, "ingest", str(_jsonl(tmp_path / "a.jsonl", 300, "alpha")), "--kind", "web", "--quiet")
    run(url, "curate", "--quiet")
    (tmp_path / "mix.toml").write_text(MIX)
    first = run(url, "mix", "build", str(tmp_path / "mix.toml"))
    shown = run(url, "mix", "show", first["mix_id"])
    snap = shown["snapshot_id"]
    assert isinstance(snap, int) and snap > 0
    runs = run(url, "runs")
    assert all(r["snapshot_id"] is not None for r in runs if r["status"] == "ok")
    assert len({r["snapshot_id"] for r in runs if r["status"] == "ok"}) == len([r for r in runs if r["status"] == "ok"])
    # New data and a new curation run change what the recipe selects now...
    run(url, "ingest", str(_jsonl(tmp_path / "b.jsonl", 300, "beta")), "--kind", "web", "--quiet")
    run(url, "curate", "--quiet")
    now = run(url, "mix", "build", str(tmp_path / "mix.toml"))
    assert now["mix_id"] != first["mix_id"]
    # ...and the same recipe at the first mix's snapshot gives the first mix back.
    again = run(url, "mix", "build", str(tmp_path / "mix.toml"), "--snapshot", str(snap))
    assert again["mix_id"] == first["mix_id"] and again["created"] is False
    with Store(url, at_snapshot=snap) as old:
        assert old.scalar("SELECT count(*) FROM samples WHERE text LIKE 'beta%'") == 0
    bad = subprocess.run(cli(url, "mix", "build", str(tmp_path / "mix.toml"), "--snapshot", "99999"),
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "snapshot 99999 does not exist" in bad.stderr

    # optimize merges the small files every run commits; time travel is unchanged.
    with Store(url, read_only=True) as st:
        files_before = st.scalar("SELECT count(*) FROM ducklake_list_files('lake', 'runs')")
        # DuckDB's progress bar prints to stdout, where the CLI's JSON goes (a slow ATTACH once broke it).
        assert st.scalar("SELECT current_setting('enable_progress_bar')") is False
    on_disk = sum(1 for _ in Path(f"{tmp_path / 'cat.sqlite'}.files").rglob("*.parquet"))
    out = run(url, "optimize")
    assert out["files_merged"] > out["files_created"] > 0
    # The replaced files stay for readers in flight, until a pass after the grace period.
    assert out["files_deleted"] == 0 and out["files_waiting"] >= out["files_merged"]
    with Store(url, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM ducklake_list_files('lake', 'runs')") < files_before
    again = run(url, "mix", "build", str(tmp_path / "mix.toml"), "--snapshot", str(snap))
    assert again["mix_id"] == first["mix_id"]
    # Expiring every older snapshot keeps the ones mixes were built at. With no grace period
    # left, the files the merge replaced are deleted first.
    os.environ["MIXLINE_LAKE_CLEANUP_GRACE_S"] = "0"
    try:
        out = run(url, "optimize", "--expire-days", "0")
    finally:
        del os.environ["MIXLINE_LAKE_CLEANUP_GRACE_S"]
    assert out["snapshots_expired"] > 0 and out["snapshots_kept"] >= 1
    assert out["files_deleted"] > 0
    assert sum(1 for _ in Path(f"{tmp_path / 'cat.sqlite'}.files").rglob("*.parquet")) < on_disk
    with Store(url, read_only=True) as st:
        alive = {r[0] for r in st.execute("SELECT snapshot_id FROM lake.snapshots()").fetchall()}
    assert snap in alive and snap - 1 not in alive
    again = run(url, "mix", "build", str(tmp_path / "mix.toml"), "--snapshot", str(snap))
    assert again["mix_id"] == first["mix_id"]
    gone = subprocess.run(cli(url, "mix", "build", str(tmp_path / "mix.toml"), "--snapshot", str(snap - 1)),
                          capture_output=True, text=True)
    assert gone.returncode != 0 and f"snapshot {snap - 1} was expired" in gone.stderr
    assert run(url, "doctor")["healthy"]


def test_single_file_stores_refuse_time_travel_and_catalog_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="time travel needs a DuckLake store"):
        Store(tmp_path / "s.duckdb", at_snapshot=1)
    with pytest.raises(StoreError, match="no DuckLake catalog"):
        Store("sqlite:///" + str(tmp_path / "missing.sqlite"))
    with pytest.raises(ConfigError, match="sqlite:///relative"):
        parse("sqlite://x.sqlite")
    res = subprocess.run(cli(tmp_path / "s.duckdb", "init", "--catalog", "postgresql://u:hunter2@127.0.0.1:1/x"),
                         capture_output=True, text=True)
    assert res.returncode != 0 and "--data-path" in res.stderr
    assert redact_url("postgresql://u:hunter2@h:5/db") == "postgresql://u:***@h:5/db"


def test_sql_on_a_lake_reads_tables_but_not_files_or_the_key(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    run(url, "ingest", str(_jsonl(tmp_path / "a.jsonl", 200, "alpha")), "--kind", "web", "--quiet")
    assert run_user_query(url, "SELECT count(*) AS n FROM samples")[0]["n"] == 200
    files = sorted((tmp_path / "cat.sqlite.files").rglob("*.parquet"))
    assert files
    with pytest.raises(ReadOnlyError, match="not files"):
        run_user_query(url, f"SELECT * FROM '{files[0]}'")
    with pytest.raises(ReadOnlyError, match="refused"):
        run_user_query(url, f"SELECT * FROM read_parquet('{files[0]}')")
    with pytest.raises(ReadOnlyError, match="hidden"):
        run_user_query(url, "SELECT * FROM store_secrets")


def test_concurrent_sqlite_writers_queue_and_all_commit(tmp_path: Path) -> None:
    """A SQLite catalog takes one writer at a time: three ingests and a curate started together
    queue for it (DuckLake alone fails all but one with "database is locked")."""
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    run(url, "ingest", str(_jsonl(tmp_path / "base.jsonl", 2000, "base")), "--kind", "web", "--source", "base", "--quiet")
    cmds = [["curate", "--quiet"]] + [["ingest", str(_jsonl(tmp_path / f"{t}.jsonl", 2000, t)), "--kind", "web",
                                        "--source", t, "--quiet"] for t in ("left", "middle", "right")]
    procs = [subprocess.Popen(cli(url, *c), stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "MIXLINE_LOCK_WAIT": "300"}) for c in cmds]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errs
    with Store(url, read_only=True) as st:
        per = dict(st.execute("SELECT source, count(*) FROM samples GROUP BY 1").fetchall())
        assert per == {"base": 2000, "left": 2000, "middle": 2000, "right": 2000}
        statuses = sorted(r[0] for r in st.execute("SELECT status FROM runs").fetchall())
        assert statuses == ["ok"] * 5  # base, the curate, three ingests
        assert st.scalar("SELECT count(DISTINCT sample_id) FROM decisions") >= 2000


def test_a_sqlite_writer_that_waits_too_long_gets_a_clear_error(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from mixline.store import Store
with Store({url!r}) as st, st.transaction():
    print('holding', flush=True)
    time.sleep(4)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        data = _jsonl(tmp_path / "a.jsonl", 50, "a")
        res = subprocess.run(cli(url, "ingest", str(data), "--kind", "web", "--quiet"), capture_output=True, text=True,
                             env={**os.environ, "MIXLINE_LOCK_WAIT": "0.5"})
        assert res.returncode == 5, res.stderr
        assert f"has one writer at a time, and process {holder.pid} on" in res.stderr
        assert "nothing was written" in res.stderr and "MIXLINE_LOCK_WAIT" in res.stderr
        assert "database is locked" not in res.stderr
        # With the default wait, the next writer queues behind the holder and commits.
        res = subprocess.run(cli(url, "ingest", str(data), "--kind", "web", "--quiet"), capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    finally:
        holder.wait(timeout=60)
    with Store(url, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM samples") == 50


# -- PostgreSQL (the pg_base and pg_url fixtures are in conftest.py) --------------------------------


def test_postgres_two_ingests_at_once_both_commit(pg_url: str, tmp_path: Path) -> None:
    files = {t: _jsonl(tmp_path / f"{t}.jsonl", 20_000, t) for t in ("left", "right")}
    # One sample in both files: whichever commits second must not store it twice.
    for f in files.values():
        with f.open("a") as fh:
            fh.write(json.dumps({"text": "a sentence both sources carry, the same in each of them, word for word."}) + "\n")
    procs = [subprocess.Popen(cli(pg_url, "ingest", str(f), "--kind", "web", "--source", t, "--quiet"),
                              stderr=subprocess.PIPE, text=True) for t, f in files.items()]
    errs = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    with Store(pg_url, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM samples") in (40_001, 40_002)
        runs = st.rows(f"SELECT status, snapshot_id FROM {st.runs_sql()} WHERE kind = 'ingest'")
        assert [r["status"] for r in runs] == ["ok", "ok"] and len({r["snapshot_id"] for r in runs}) == 2
        assert st.scalar("SELECT count(*) FROM sample_origins") == 40_002
    # Maintenance on a PostgreSQL catalog: the small files merge, and nothing changes.
    out = run(pg_url, "optimize")
    assert out["files_merged"] > 0 and out["files_deleted"] == 0
    with Store(pg_url, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM samples") in (40_001, 40_002)


def test_postgres_trace_and_stats_work_while_a_curate_runs(pg_url: str, tmp_path: Path) -> None:
    subprocess.run(cli(pg_url, "ingest", str(_jsonl(tmp_path / "a.jsonl", 20_000, "alpha")), "--kind", "web",
                       "--quiet"), check=True)
    with Store(pg_url, read_only=True) as st:
        sid = st.scalar("SELECT sample_id FROM samples ORDER BY sample_id LIMIT 1")
    writer = subprocess.Popen(cli(pg_url, "curate", "--quiet"))
    reads, seen_running = 0, 0
    try:
        while writer.poll() is None:
            t = time.monotonic()
            out = run(pg_url, "trace", sid)
            assert isinstance(out, dict) and out["sample"]["sample_id"] == sid
            stats = run(pg_url, "stats")
            assert stats["samples"] == 20_000
            curates = [r for r in run(pg_url, "runs") if r["kind"] == "curate"]
            assert len(curates) <= 1
            seen_running += bool(curates) and curates[0]["status"] == "running"
            reads += 1
            assert time.monotonic() - t < 30
    finally:
        writer.wait()
    assert writer.returncode == 0
    assert reads >= 2, "the readers must have run while the curate wrote"
    assert seen_running, "`mixline runs` must show the curate as running while it works"
    with Store(pg_url, read_only=True) as st:
        assert st.scalar("SELECT count(DISTINCT sample_id) FROM decisions") == 20_000
        assert st.scalar("SELECT status FROM runs WHERE kind = 'curate'") == "ok"
        assert st.rows(f"SELECT status FROM {st.runs_sql()} WHERE kind = 'curate'") == [{"status": "ok"}]


def test_postgres_a_run_shows_running_and_a_dead_one_is_marked_aborted(pg_url: str, tmp_path: Path) -> None:
    """A lake run is visible while it works; one killed on this machine is marked aborted by the
    next writer, and one owned by another machine only when its operator names it."""
    import signal

    from mixline.store.doctor import doctor

    url = pg_url
    docs = _jsonl(tmp_path / "a.jsonl", 3000, "alpha")
    subprocess.run(cli(url, "ingest", str(docs), "--kind", "web", "--quiet"), check=True)
    writer = subprocess.Popen(cli(url, "curate", "--quiet"), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        running: list = []
        while not running and writer.poll() is None and time.monotonic() < deadline:
            running = [r for r in run(url, "runs") if r["status"] == "running"]
            time.sleep(0.2)
        assert running and running[0]["kind"] == "curate", "the curate never showed as running"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    run_id = running[0]["run_id"]
    with Store(url, read_only=True) as st:
        report = doctor(st)
        assert report.healthy and report.checks["runs_left_running"] == 1
        assert st.scalar("SELECT count(*) FROM decisions") == 0
    # A run started on another machine, whose process this machine cannot check.
    with Store(url) as st:
        st.execute("INSERT INTO run_starts (run_id, kind, step, config, started_at, owner) "
                   "VALUES ('run-remote', 'curate', 'curate', '{}', now()::TIMESTAMP, 'another-host:4242')")
    # The next writer marks the dead local run aborted, and leaves the remote one running.
    subprocess.run(cli(url, "ingest", str(_jsonl(tmp_path / "b.jsonl", 10, "beta")), "--kind", "web", "--quiet"),
                   check=True)
    status = {r["run_id"]: r["status"] for r in run(url, "runs")}
    assert status[run_id] == "aborted" and status["run-remote"] == "running"
    res = subprocess.run(cli(url, "runs", "--abort", "run-remote", "--json"), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    status = {r["run_id"]: r["status"] for r in json.loads(res.stdout)}
    assert status["run-remote"] == "aborted"
    res = subprocess.run(cli(url, "runs", "--abort", "run-remote"), capture_output=True, text=True)
    assert res.returncode != 0 and "no run run-remote is left running" in res.stderr
    # A dry run leaves nothing behind, not even its start.
    res = subprocess.run(cli(url, "curate", "--dry-run", "--quiet"), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with Store(url, read_only=True) as st:
        assert doctor(st).checks["runs_left_running"] == 0
        assert st.scalar("SELECT count(*) FROM runs WHERE kind = 'curate'") == 2
        assert st.scalar(f"SELECT count(*) FROM {st.runs_sql()}") == st.scalar("SELECT count(*) FROM runs")
    # The whole curate, run again, commits.
    subprocess.run(cli(url, "curate", "--quiet"), check=True)
    with Store(url, read_only=True) as st:
        assert st.scalar("SELECT count(DISTINCT sample_id) FROM decisions") == 3010


def _annotated(store: str | Path) -> dict:
    """_outcome, and what readers see of every sample: its text and its annotations."""
    with Store(store, read_only=True) as st:
        return {**_outcome(store),
                "rows": st.execute("SELECT sample_id, source, text, lang, script, round(lang_score, 6), "
                                   "lang_mix::VARCHAR, n_tokens FROM samples ORDER BY 1").fetchall()}


def test_postgres_three_ingests_and_a_curate_started_together_all_commit(pg_url: str, tmp_path: Path) -> None:
    """The nightly case: new data lands while a curate runs. The curate writes its language
    annotations as rows of their own, so no writer fails, and the store equals a serial run."""
    base = _jsonl(tmp_path / "base.jsonl", 6000, "alpha")
    news = [_jsonl(tmp_path / f"{t}.jsonl", 1500, t) for t in ("beta", "gamma", "delta")]
    run(pg_url, "ingest", str(base), "--kind", "web", "--source", "base", "--quiet")
    curate = ["curate", "--where", "source = 'base'", "--quiet"]
    ingests = [["ingest", str(f), "--kind", "web", "--source", f.stem, "--quiet"] for f in news]
    procs = [subprocess.Popen(cli(pg_url, *args), stderr=subprocess.PIPE, text=True) for args in [curate, *ingests]]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errs
    with Store(pg_url, read_only=True) as st:
        runs = st.rows(f"SELECT kind, status, snapshot_id FROM {st.runs_sql()} WHERE kind IN ('ingest', 'curate')")
        assert sorted((r["kind"], r["status"]) for r in runs) == [("curate", "ok")] + [("ingest", "ok")] * 4
        assert len({r["snapshot_id"] for r in runs}) == 5
        times = st.rows(f"SELECT kind, config, started_at, finished_at FROM {st.runs_sql()} WHERE kind IN ('ingest', 'curate')")
    cur = next(r for r in times if r["kind"] == "curate")
    late = [r for r in times if r["kind"] == "ingest" and "base.jsonl" not in r["config"]]
    # The point of the test: ingests committed while the curate was working.
    assert any(cur["started_at"] < r["finished_at"] < cur["finished_at"] for r in late), (cur, late)
    # The same commands one after another, on a single-file store.
    serial = tmp_path / "serial.duckdb"
    for args in [["ingest", str(base), "--kind", "web", "--source", "base", "--quiet"], curate, *ingests]:
        run(serial, *args)
    together, alone = _annotated(pg_url), _annotated(serial)
    assert together == alone
    assert len(together["rows"]) == 10_500 and sum(1 for r in together["rows"] if r[3] is not None) >= 6000
    assert run(pg_url, "doctor")["healthy"]


def test_postgres_password_never_reaches_messages_or_runs(pg_base: str) -> None:
    url = pg_base.replace("postgres@", "postgres:sekrit-pw@") + "/does_not_exist"
    res = subprocess.run(cli(url, "stats"), capture_output=True, text=True)
    assert res.returncode != 0 and "sekrit-pw" not in res.stderr + res.stdout
    assert "***" in res.stderr or "does_not_exist" in res.stderr


def test_the_dashboard_reads_a_lake_store(tmp_path: Path) -> None:
    from mixline.dashboards.app import create_app
    from starlette.testclient import TestClient

    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    run(url, "ingest", str(_jsonl(tmp_path / "a.jsonl", 300, "alpha")), "--kind", "web", "--quiet")
    run(url, "curate", "--quiet")
    (tmp_path / "mix.toml").write_text(MIX)
    mix = run(url, "mix", "build", str(tmp_path / "mix.toml"))["mix_id"]
    with Store(url, read_only=True) as st:
        sid = st.scalar("SELECT sample_id FROM samples ORDER BY sample_id LIMIT 1")
    client = TestClient(create_app(url), base_url="http://127.0.0.1")
    for path in ("/", "/samples", f"/samples/{sid}", "/mixes", f"/mixes/{mix}", "/runs"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "Data as of run" in r.text
    assert client.get("/api/overview").json()["freshness"]["latest_run"]["run_id"].startswith("run-")
