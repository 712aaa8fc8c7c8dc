import pytest
from mixline.store import Store
from mixline.store.schema import schema_version

from mixline.errors import ReadOnlyError, StoreError


def test_migrations_apply_once_and_are_recorded(store_path):
    with Store(store_path) as st:
        assert st.schema_version() == schema_version()
        assert st.migrate() == []
    with Store(store_path) as st:
        versions = [r[0] for r in st.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        assert versions == list(range(1, schema_version() + 1))


def test_newer_store_is_refused(store_path):
    with Store(store_path) as st:
        st.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(StoreError, match="newer than this mixline"):
        Store(store_path)


def test_run_commits_all_or_nothing(store):
    with pytest.raises(RuntimeError), store.run("ingest", "test_v1", {"x": 1}) as run:
        store.append_rows("quarantine", [{"run_id": run.run_id, "file": "f", "locator": "line 1", "reason": "r"}])
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM quarantine") == 0
    row = store.rows("SELECT status, error, config_hash FROM runs")
    assert row == [{"status": "failed", "error": "RuntimeError: boom", "config_hash": row[0]["config_hash"]}]


def test_run_row_holds_resolved_config_and_hash(store):
    with store.run("ingest", "test_v1", {"b": 2, "a": 1}) as run:
        run.stats["n"] = 3
    r = store.rows("SELECT config, config_hash, status, stats FROM runs")[0]
    assert r["config"] == '{"a":1,"b":2}'
    assert r["status"] == "ok" and r["stats"] == '{"n":3}'
    assert len(r["config_hash"]) == 16


def test_read_only_store_refuses_writes(store_path):
    Store(store_path).close()
    with Store(store_path, read_only=True) as st:
        with pytest.raises(ReadOnlyError), st.run("ingest", "x", {}):
            pass
        with pytest.raises(ReadOnlyError):
            st.execute("DELETE FROM sample_rows")


def test_tracer_sees_every_statement():
    seen = []
    st = Store(":memory:", tracer=lambda sql, params: seen.append(sql))
    st.scalar("SELECT 42")
    assert "SELECT 42" in seen


def test_bulk_append_goes_through_arrow(store):
    rows = [{"run_id": "r", "file": "f", "locator": f"line {i}", "reason": "x"} for i in range(10_000)]
    assert store.append_rows("quarantine", rows) == 10_000
    assert store.scalar("SELECT count(DISTINCT locator) FROM quarantine") == 10_000


def test_a_dead_run_is_marked_aborted_by_name_or_by_the_next_writer(store):
    """A 'running' row in a single-file store is dead (one writer at a time): `runs --abort`
    marks the one named, and the next run marks the rest."""
    import os
    import socket
    import subprocess

    from mixline.store.store import owner_is_dead

    for rid in ("run-a", "run-b"):
        store.execute("INSERT INTO runs (run_id, kind, step, step_version, config, config_hash, code_version, "
                      "started_at, status) VALUES (?, 'ingest', 'x', 1, '{}', 'h', 'v', now()::TIMESTAMP, 'running')", [rid])
    assert store.mark_aborted("run-a") == 1 and store.mark_aborted("run-a") == 0
    status = dict(store.execute("SELECT run_id, status FROM runs").fetchall())
    assert status == {"run-a": "aborted", "run-b": "running"}
    with store.run("ingest", "test_v1", {}):
        pass
    assert store.scalar("SELECT status FROM runs WHERE run_id = 'run-b'") == "aborted"
    # Which owners a writer may declare dead: only processes on this machine that are gone.
    host = socket.gethostname()
    assert not owner_is_dead(f"{host}:{os.getpid()}")
    assert not owner_is_dead("another-host:1")
    assert not owner_is_dead(None)
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert owner_is_dead(f"{host}:{dead.pid}")


SID = "5e1f00aa5e1f00aa5e1f00aa5e1f00aa"


def test_an_optimized_store_from_before_annotations_migrates(store_path):
    """v16 kept languages in `samples` itself and `optimize` indexed it; v17 renames it to
    `sample_rows` (index and all) and shows it, annotated, through the `samples` view."""
    import duckdb
    from mixline.store.schema import MIGRATIONS, current_version

    con = duckdb.connect(str(store_path))
    current_version(con)
    for m in MIGRATIONS:
        if m.version <= 16:
            m.apply(con)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [m.version, m.name])
    con.execute("""INSERT INTO samples (sample_id, source_id, source, kind, text, content_hash, lang, n_chars, created_run_id)
                   VALUES (?, 'src', 'src', 'web', 'Guten Morgen', 'h1', 'de', 12, 'r0')""", [SID])
    for name, target in (("samples_sample_id", "samples (sample_id)"), ("edges_child_key", "edges (child_key)")):
        con.execute(f"CREATE INDEX {name} ON {target}")  # as `mixline optimize` left it
    con.close()
    with Store(store_path) as st:
        assert st.schema_version() == 17
        assert st.rows("SELECT sample_id, lang, n_tokens FROM samples") == [{"sample_id": SID, "lang": "de", "n_tokens": None}]
        assert dict(st.execute("SELECT index_name, table_name FROM duckdb_indexes() WHERE index_name LIKE '%sample_id'")
                    .fetchall()) == {"samples_sample_id": "sample_rows", "annotations_sample_id": "sample_annotations"}
        # A later annotation wins; the row itself is never updated.
        st.execute("""INSERT INTO sample_annotations (sample_id, run_id, kind, annotated_at, lang, script, lang_score)
                      VALUES ($1, 'r1', 'language', TIMESTAMP '2026-01-01', 'nl', 'Latn', 0.5),
                             ($1, 'r2', 'language', TIMESTAMP '2026-01-02', 'en', 'Latn', 0.9),
                             ($1, 'r3', 'tokens', TIMESTAMP '2026-01-03', NULL, NULL, NULL)""", [SID])
        st.execute("UPDATE sample_annotations SET n_tokens = 4 WHERE run_id = 'r3'")
        assert st.rows("SELECT lang, script, lang_score, n_tokens FROM samples") == [
            {"lang": "en", "script": "Latn", "lang_score": 0.9, "n_tokens": 4}]
        assert st.scalar("SELECT lang FROM sample_rows") == "de"
        from mixline.store.lineage import trace

        shown = trace(st, SID).sample  # trace reads the row and applies the same rule
        assert (shown["lang"], shown["n_tokens"]) == ("en", 4)


def test_doctor_finds_annotations_of_nothing(store):
    from mixline.store.doctor import doctor

    assert doctor(store).healthy
    store.execute("INSERT INTO sample_annotations (sample_id, run_id, kind, annotated_at, lang) "
                  "VALUES (?, 'run-never', 'language', TIMESTAMP '2026-01-01', 'fr')", [SID])
    report = doctor(store)
    assert not report.healthy
    assert report.checks["annotations_without_sample"] == 1 and report.checks["annotations_without_run"] == 1
