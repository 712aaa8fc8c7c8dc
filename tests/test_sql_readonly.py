"""`mixline sql` reads the store and nothing else: no files, no extensions, no PII key."""

from __future__ import annotations

from pathlib import Path

import pytest
from mixline.store import Store
from mixline.store.select import run_user_query

from mixline.errors import ReadOnlyError


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        st.execute("INSERT INTO store_secrets VALUES ('pii_key', 'TOPSECRETKEY')")
    (tmp_path / "notes.txt").write_text("private notes")
    return str(path)


@pytest.mark.parametrize("query", [
    "COPY (SELECT 42) TO 'x.csv'",
    "SELECT value FROM store_secrets",
    "SELECT * FROM main.store_secrets",
    'SELECT * FROM "STORE_SECRETS"',
    "WITH k AS (SELECT * FROM store_secrets) SELECT * FROM k",
    "SELECT (SELECT max(value) FROM store_secrets)",
    "SUMMARIZE store_secrets",
    "SELECT * FROM query('SELECT * FROM store_secrets')",
    "SELECT * FROM pragma_storage_info('store_secrets')",
    "SELECT * FROM read_text('notes.txt')",
    "INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH 'other.duckdb'",
    "SET enable_external_access = true",
    "DELETE FROM samples",
    "SELECT text FROM sample_rows",  # raw rows: text is read through `samples`, which withholds PII
    "CREATE TEMP TABLE t AS SELECT 1",
])
def test_refused(db: str, query: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReadOnlyError) as info:
        run_user_query(db, query)
    assert "TOPSECRETKEY" not in str(info.value) and "private notes" not in str(info.value)
    assert not (tmp_path / "x.csv").exists()


def test_copy_onto_the_store_cannot_destroy_it(db: str) -> None:
    with pytest.raises(ReadOnlyError):
        run_user_query(db, f"COPY (SELECT 1) TO '{db}'")
    with Store(db, read_only=True) as st:
        assert st.scalar("SELECT count(*) FROM store_secrets") == 1


def test_ordinary_queries_work(db: str) -> None:
    assert run_user_query(db, "SELECT count(*) AS n FROM samples") == [{"n": 0}]
    tables = {r["name"] for r in run_user_query(db, "SHOW TABLES")}
    assert "samples" in tables
    assert run_user_query(db, "SELECT count(*) AS n FROM duckdb_views() WHERE view_name = 'samples'")[0]["n"] >= 1
    assert "sample_rows" not in tables and "sample_annotations" in tables
