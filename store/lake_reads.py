"""Point reads on a DuckLake store, planned with one catalog query instead of one per table.

DuckLake plans every table a query touches with its own catalog queries (data files, delete
files, column statistics, inlined rows), 20-70 ms a table on a SQLite catalog even when the
table is empty. A trace touches about fifteen tables, so on a lake its cost was that
planning, not reading. Here one query of the catalog finds, for a snapshot, the data files of
every table asked for, and the tables' rows are read with `read_parquet` on those files
directly. The plan of a snapshot never changes, so it is kept for the next read at the same
snapshot. A table is read through DuckLake as before wherever this reader cannot be exact:
rows inlined in the catalog, delete files, files written before a column was added, files
whose rows belong to several snapshots and are read at an older one, encryption, or a file
format other than Parquet.

`mixline optimize` sorts the sample-keyed tables by `sample_id` in small row groups (see
`sort_by_sample`), so a point read opens one row group per file instead of scanning it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import duckdb
from mixline.store.lake import ALIAS, _sql_str, lock_wait_seconds
from mixline.store.store import Store

# Tables read by sample_id in a trace; optimize keeps them sorted by it.
SAMPLE_KEYED = ("sample_rows", "sample_annotations", "sample_origins", "decisions", "generations", "clusters",
                "mix_members", "redactions", "classifier_scores", "canary_copies")
# Rows per row group in the sorted files: a point read decodes one group's sample_id column.
SORTED_ROW_GROUP = 16384

# DuckLake's type names, as its catalog stores them, and DuckDB's.
_TYPES = {"varchar": "VARCHAR", "int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
          "uint8": "UTINYINT", "uint16": "USMALLINT", "uint32": "UINTEGER", "uint64": "UBIGINT",
          "float32": "FLOAT", "float64": "DOUBLE", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP",
          "timestamptz": "TIMESTAMPTZ", "date": "DATE", "json": "JSON", "blob": "BLOB", "uuid": "UUID",
          "int128": "HUGEINT", "time": "TIME", "interval": "INTERVAL"}


def enabled() -> bool:
    """MIXLINE_LAKE_POINT_READS=0 reads every table through DuckLake (for comparison)."""
    return os.environ.get("MIXLINE_LAKE_POINT_READS", "1") != "0"


@dataclass
class TablePlan:
    """How to read one table at one snapshot: its files, or None to read it through DuckLake."""

    name: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type), in table order
    files: list[str] = field(default_factory=list)
    rows: int = 0
    why_not: str | None = None  # set when this table is read through DuckLake

    def relation(self, where: str = "") -> str:
        """A SQL relation with the table's columns, typed as the table types them."""
        if self.why_not is not None:
            return f"{ALIAS}.main.{self.name}"
        cols = ", ".join(f"CAST({_ident(c)} AS {t}) AS {_ident(c)}" for c, t in self.columns)
        if not self.files:
            nulls = ", ".join(f"CAST(NULL AS {t}) AS {_ident(c)}" for c, t in self.columns)
            return f"(SELECT {nulls} WHERE false)"
        listed = ", ".join(f"'{_sql_str(f)}'" for f in self.files)
        return f"(SELECT {cols} FROM read_parquet([{listed}], union_by_name = true) AS p{' WHERE p.' + where if where else ''})"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# One query in SQL that SQLite and PostgreSQL both run, sent to the catalog database itself:
# through DuckDB's scanners each table of it costs a few ms more. {s} is the snapshot.
_PLAN_SQL = """
WITH tabs AS (
  SELECT t.table_id, t.table_name,
         CASE WHEN CAST(t.path_is_relative AS INTEGER) = 1 THEN (CASE WHEN CAST(sc.path_is_relative AS INTEGER) = 1 THEN {data_path} || sc.path ELSE sc.path END)
                                               || t.path
              ELSE t.path END AS root
  FROM ducklake_table t JOIN ducklake_schema sc ON sc.schema_id = t.schema_id
  WHERE t.table_name IN ({names}) AND sc.schema_name = 'main'
    AND t.begin_snapshot <= {s} AND (t.end_snapshot IS NULL OR t.end_snapshot > {s})
    AND sc.begin_snapshot <= {s} AND (sc.end_snapshot IS NULL OR sc.end_snapshot > {s}))
SELECT 'table' AS what, t.table_name, t.root, NULL AS a, NULL AS b, NULL AS c, NULL AS d,
       CAST((SELECT count(*) FROM ducklake_delete_file d JOIN ducklake_data_file df ON df.data_file_id = d.data_file_id
        WHERE d.table_id = t.table_id
          AND d.begin_snapshot <= {s} AND (d.end_snapshot IS NULL OR d.end_snapshot > {s})
          AND df.begin_snapshot <= {s} AND (df.end_snapshot IS NULL OR df.end_snapshot > {s})) AS VARCHAR) AS e,
       (SELECT count(*) FROM ducklake_snapshot_changes ch WHERE ch.snapshot_id <= {s}
          AND ',' || ch.changes_made || ',' LIKE '%,inlined_insert:' || CAST(t.table_id AS VARCHAR) || ',%') AS f,
       NULL AS g
FROM tabs t
UNION ALL
SELECT 'file', t.table_name, t.root, f.path, f.file_format, f.record_count, f.begin_snapshot,
       CAST(coalesce(f.partial_max, -1) AS VARCHAR), CASE WHEN f.encryption_key IS NULL THEN 0 ELSE 1 END,
       CAST(f.path_is_relative AS INTEGER)
FROM ducklake_data_file f JOIN tabs t ON t.table_id = f.table_id
WHERE f.begin_snapshot <= {s} AND (f.end_snapshot IS NULL OR f.end_snapshot > {s})
UNION ALL
SELECT 'column', t.table_name, NULL, c.column_name, c.column_type, c.column_order, c.begin_snapshot, CAST(c.initial_default AS VARCHAR),
       NULL, NULL
FROM ducklake_column c JOIN tabs t ON t.table_id = c.table_id
WHERE c.parent_column IS NULL AND c.begin_snapshot <= {s} AND (c.end_snapshot IS NULL OR c.end_snapshot > {s})
UNION ALL
SELECT 'ended', t.table_name, NULL, NULL, NULL, NULL, max(c.end_snapshot), CAST(NULL AS VARCHAR), NULL, NULL
FROM ducklake_column c JOIN tabs t ON t.table_id = c.table_id
WHERE c.end_snapshot IS NOT NULL AND c.end_snapshot <= {s}
GROUP BY t.table_name
"""


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PointReads:
    """The file plans of one store's tables, by snapshot."""

    def __init__(self, store: Store) -> None:
        assert store.lake is not None
        self.store = store
        self.target = store.lake
        self._plans: dict[tuple[int, tuple[str, ...]], dict[str, TablePlan]] = {}
        self._sqlite: sqlite3.Connection | None = None
        rows = self.catalog("SELECT value FROM ducklake_metadata WHERE key = 'data_path' AND scope IS NULL")
        self.data_path = str(rows[0][0]) if rows and rows[0][0] else ""
        # Its own connection to the same database, whose default catalog is not the lake: with
        # the lake as default, DuckDB looks up every function and type there first (json,
        # count), and each lookup loads the lake's catalog, 6 ms a query.
        self.con = store.con.cursor()
        self.con.execute("SET enable_progress_bar = false")
        # A footer read once serves every later point read of the same file.
        self.con.execute("SET parquet_metadata_cache = true")

    def close(self) -> None:
        self.con.close()
        if self._sqlite is not None:
            self._sqlite.close()

    def catalog(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query that the catalog database runs itself."""
        if self.target.backend == "sqlite" and self.target.sqlite_path is not None:
            if self._sqlite is None:
                # Autocommit: each query reads the newest committed state, as DuckLake does.
                self._sqlite = sqlite3.connect(f"file:{self.target.sqlite_path}?mode=ro", uri=True,
                                               isolation_level=None, check_same_thread=False)
                self._sqlite.execute(f"PRAGMA busy_timeout = {int(lock_wait_seconds() * 1000)}")
            return self._sqlite.execute(sql).fetchall()
        return self.store.con.execute(f"SELECT * FROM postgres_query('__ducklake_metadata_{ALIAS}', ?)", [sql]).fetchall()

    def snapshot(self) -> int:
        if self.store.lake_snapshot is not None:
            return int(self.store.lake_snapshot)
        rows = self.catalog("SELECT max(snapshot_id) FROM ducklake_snapshot")
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def plan(self, tables: tuple[str, ...]) -> dict[str, TablePlan]:
        snap = self.snapshot()
        key = (snap, tables)
        if key not in self._plans:
            if len(self._plans) > 16:
                self._plans.clear()
            self._plans[key] = self._plan(snap, tables)
        return self._plans[key]

    def _plan(self, snap: int, tables: tuple[str, ...]) -> dict[str, TablePlan]:
        sql = _PLAN_SQL.format(s=int(snap), names=", ".join(_lit(t) for t in tables), data_path=_lit(self.data_path))
        plans = {t: TablePlan(t, why_not="not in the catalog at this snapshot") for t in tables}
        try:
            rows = self.catalog(sql)
        except (sqlite3.Error, duckdb.Error) as exc:
            # A catalog laid out otherwise (a metadata schema of its own, a newer DuckLake
            # format): every table is read through DuckLake, which knows it.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return {t: TablePlan(t, why_not=f"the catalog query failed: {first}") for t in tables}
        cols: dict[str, list[tuple[int, str, str]]] = {}
        # A file written before a column was added reads it as NULL, which is right unless the
        # column has an initial default; one written before a rename or a type change is not read here.
        defaulted: dict[str, int] = {}  # the newest snapshot a column with a default was added at
        ended: dict[str, int] = {}  # the newest snapshot a column was renamed, retyped or dropped at
        for what, name, _root, a, b, c, d, e, f, _ in rows:
            if what == "table":
                p = plans[name] = TablePlan(name)
                if int(e):
                    p.why_not = "delete files"
                elif f:
                    p.why_not = "rows inlined in the catalog"
            elif what == "column":
                cols.setdefault(name, []).append((int(c), str(a), str(b)))
                if e is not None and str(e).upper() != "NULL":
                    defaulted[name] = max(defaulted.get(name, 0), int(d))
            elif what == "ended":
                ended[name] = int(d)
        for what, name, root, a, b, c, d, e, f, g in rows:
            p = plans[name]
            if what != "file" or p.why_not is not None:
                continue
            if str(b).lower() != "parquet" or f:
                p.why_not = "an encrypted or non-Parquet file"
            elif int(e) > snap:
                p.why_not = "a merged file read at an older snapshot"
            elif int(d) < max(defaulted.get(name, 0), ended.get(name, 0)):
                p.why_not = "a file written before a column was renamed, retyped, dropped or added with a default"
            else:
                p.files.append(str(root) + str(a) if g else str(a))
                p.rows += int(c)
        for name, p in plans.items():
            if p.why_not is not None:
                continue
            for _, cname, ctype in sorted(cols.get(name, [])):
                dtype = _TYPES.get(ctype.lower())
                if dtype is None:
                    p.why_not = f"column {cname} has type {ctype}"
                    break
                p.columns.append((cname, dtype))
        return plans


def point_reads(store: Store) -> PointReads | None:
    """The store's point reader, or None where every read goes through DuckLake: a single
    file, a write transaction in flight (its rows are not in the catalog yet), or switched off."""
    if store.lake is None or store.in_transaction or not enabled():
        return None
    found = store.attachments.get("point_reads")
    if found is None:
        found = store.attachments["point_reads"] = PointReads(store)
    return found if isinstance(found, PointReads) else None


def sort_by_sample(store: Store) -> dict[str, int]:
    """Rewrite each sample-keyed table that is not in `sample_id` order, or has delete files,
    sorted by sample_id in row groups of SORTED_ROW_GROUP rows, so a point read prunes to one
    group per file and needs no delete file. Rows of one sample keep their order (by rowid),
    which `mixline why` shows decisions in. Runs inside the caller's transaction; returns the
    rows rewritten per table."""
    out: dict[str, int] = {}
    for t in SAMPLE_KEYED:
        back = store.scalar(f"""SELECT count(*) FROM (SELECT sample_id < lag(sample_id) OVER (ORDER BY rowid) AS back
                                FROM {t}) WHERE back""")
        deletes = store.scalar(f"SELECT count(*) FROM ducklake_list_files('{ALIAS}', '{t}') WHERE delete_file IS NOT NULL")
        if not back and not deletes:
            continue
        top = store.scalar(f"SELECT max(rowid) FROM {t}")
        store.execute(f"CALL {ALIAS}.set_option('parquet_row_group_size', {SORTED_ROW_GROUP}, table_name => '{t}')")
        store.execute(f"INSERT INTO {t} SELECT * FROM {t} ORDER BY sample_id, rowid")
        store.execute(f"DELETE FROM {t} WHERE rowid <= {int(top)}")
        out[t] = int(store.scalar(f"SELECT count(*) FROM {t}"))
    return out


def describe(plans: dict[str, TablePlan]) -> dict[str, Any]:
    """Which tables were read from their files and which through DuckLake, and why."""
    return {name: ("files" if p.why_not is None else p.why_not) for name, p in plans.items()}
