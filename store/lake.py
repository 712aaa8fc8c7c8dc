"""A store in a DuckLake catalog: many writers, and readers that never wait for them.

The single-file store allows one writing process and no reader meanwhile (readers fall back
to a published snapshot). A DuckLake store keeps its catalog in PostgreSQL (many writers on
many machines) or SQLite (many processes on one machine) and its rows in Parquet files under
a data path. Every commit is a numbered snapshot: readers see the last one, writers commit
with optimistic concurrency, and an old snapshot can be read again (time travel).

A store is named by its catalog URL wherever a store path is accepted:

    postgresql://user@host:5432/dbname     (or postgres://...)
    sqlite:///relative/path/catalog.sqlite  sqlite:////absolute/path/catalog.sqlite
    ducklake:<anything DuckLake's ATTACH takes>

The DuckDB extensions come from PyPI (`pip install mixline[lake]`: duckdb-extension-ducklake,
-sqlite and -postgres, built for the pinned duckdb) and are installed from those packages
into a local extension folder, never downloaded.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from mixline.errors import ConfigError, StoreError

ALIAS = "lake"
_PREFIXES = ("postgresql://", "postgres://", "sqlite://", "ducklake:")
# Package name on PyPI (import name) -> extension name inside DuckDB.
_EXTENSIONS = {"ducklake": "ducklake", "sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}


def is_lake(path: str | os.PathLike[str]) -> bool:
    return str(path).startswith(_PREFIXES)


@dataclass(frozen=True)
class LakeTarget:
    """Where a DuckLake store's catalog lives, parsed from its URL."""

    url: str
    backend: str  # "postgres" or "sqlite"
    attach: str  # the ATTACH string, with any password
    sqlite_path: Path | None = None

    @property
    def display(self) -> str:
        """The URL with any password replaced, for messages and logs."""
        return redact_url(self.url)

    def default_data_path(self) -> str | None:
        if self.sqlite_path is not None:
            return f"{self.sqlite_path}.files"
        return None


_URL_PASSWORD = re.compile(r"(://[^:/@\s\"']+:)[^@\s\"']+@")
_KV_PASSWORD = re.compile(r"(?i)(password\s*=\s*)[^\s\"']+")


def redact_url(text: str) -> str:
    """A URL, or any message quoting one, with passwords replaced."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def parse(url: str) -> LakeTarget:
    """The catalog behind a store URL. Relative SQLite paths resolve against the working
    folder now, so that processes started elsewhere (Ray workers) find the same file."""
    if url.startswith(("postgresql://", "postgres://")):
        return LakeTarget(url, "postgres", f"ducklake:postgres:{url}")
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"catalog URL {url}: write sqlite:///relative/path.sqlite or sqlite:////absolute/path.sqlite")
        path = Path(rest[1:]).resolve()
        return LakeTarget(url, "sqlite", f"ducklake:sqlite:{path}", sqlite_path=path)
    if url.startswith("ducklake:"):
        body = url[len("ducklake:"):]
        if body.startswith("sqlite:"):
            path = Path(body[len("sqlite:"):]).resolve()
            return LakeTarget(url, "sqlite", f"ducklake:sqlite:{path}", sqlite_path=path)
        if body.startswith("postgres:"):
            return LakeTarget(url, "postgres", url)
        raise ConfigError(f"catalog URL {redact_url(url)}: mixline supports DuckLake catalogs on postgres: or sqlite:")
    raise ConfigError(f"{url} is not a catalog URL; use postgresql://... or sqlite:///path")


def extension_dir() -> Path:
    """Where the extensions from the PyPI packages are installed for DuckDB to load."""
    env = os.environ.get("MIXLINE_EXTENSION_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mixline" / "duckdb-extensions"


def _package_binary(package: str) -> Path:
    try:
        mod = importlib.import_module(f"duckdb_extension_{package}")
    except ImportError as exc:
        raise ConfigError(
            f"a DuckLake store needs the PyPI package duckdb-extension-{package}=={duckdb.__version__}; "
            "install it with `pip install mixline[lake]`") from exc
    found = sorted(Path(mod.__file__ or "").parent.glob("extensions/*/*.duckdb_extension"))
    if not found:
        raise ConfigError(f"duckdb-extension-{package} ships no extension binary; reinstall it")
    return found[-1]


def load_extensions(con: duckdb.DuckDBPyConnection, backend: str) -> None:
    """Install (from the pip packages, once) and load DuckLake and the catalog's extension."""
    folder = extension_dir()
    folder.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET extension_directory = '{_sql_str(str(folder))}'")
    for package in ("ducklake", backend):
        name = _EXTENSIONS[package]
        try:
            con.execute(f"LOAD {name}")
            continue
        except duckdb.Error:
            pass
        con.execute(f"FORCE INSTALL '{_sql_str(str(_package_binary(package)))}'")
        con.execute(f"LOAD {name}")


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


class CatalogLock:
    """One writer at a time on a SQLite catalog, queued on a lock file beside it.

    SQLite gives a transaction that has read the catalog no way to become a writer once another
    writer has committed: DuckLake's commit then fails at once with "database is locked", and no
    busy timeout helps. So a writer holds this lock from its transaction's start to its end;
    another waits, with backoff, up to MIXLINE_LOCK_WAIT seconds, then fails with a message
    that names the holder. The lock is re-entrant and dies with its process.
    """

    def __init__(self, catalog: Path) -> None:
        self.path = Path(f"{catalog}.writer.lock")
        self.display = str(catalog)
        self._fh: Any = None
        self._depth = 0

    def __enter__(self) -> CatalogLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        import fcntl
        import socket
        import time
        from datetime import UTC, datetime

        if self._depth:
            self._depth += 1
            return
        wait = lock_wait_seconds()
        deadline = time.monotonic() + wait
        delay = 0.05
        fh = self.path.open("a+", encoding="utf-8")
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() + delay > deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    fh.close()
                    raise StoreError(
                        f"the SQLite catalog {self.display} has one writer at a time, and {holder} has held it "
                        f"for longer than this writer waits ({wait:g} s); nothing was written. Run again when it "
                        "is done, raise MIXLINE_LOCK_WAIT to queue for longer, or use a PostgreSQL catalog, "
                        "where writers work at the same time") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()} on {socket.gethostname()} (since "
                 f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC)")
        fh.flush()
        self._fh, self._depth = fh, 1

    def release(self) -> None:
        import fcntl

        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            fh, self._fh = self._fh, None
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def lock_wait_seconds() -> float:
    """How long a writer waits for a lock that another holds (MIXLINE_LOCK_WAIT, default 10 s)."""
    return float(os.environ.get("MIXLINE_LOCK_WAIT", "10"))


def attach(con: duckdb.DuckDBPyConnection, target: LakeTarget, *, read_only: bool = False,
           data_path: str | None = None, snapshot: int | None = None, alias: str = ALIAS) -> None:
    """Attach the lake under `alias`; with `snapshot`, read-only as of that snapshot."""
    load_extensions(con, target.backend)
    opts = []
    if data_path is not None:
        opts.append(f"DATA_PATH '{_sql_str(str(data_path))}'")
    if read_only or snapshot is not None:
        opts.append("READ_ONLY")
    if target.backend == "sqlite":
        # A SQLite catalog has one write lock: a writer that meets it waits (bounded), not fails.
        opts.append(f"META_BUSY_TIMEOUT {int(lock_wait_seconds() * 1000)}")
    if snapshot is not None:
        opts.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    if target.backend == "sqlite" and target.sqlite_path is not None and not target.sqlite_path.exists() and data_path is None:
        raise StoreError(f"no DuckLake catalog at {target.sqlite_path}; create it with "
                         f"`mixline init --catalog {target.display}`")
    clause = f" ({', '.join(opts)})" if opts else ""
    # Small writes go to Parquet files, not rows inlined in the catalog: two runs that write
    # their own runs rows then never conflict over the inlined table. Set for this session,
    # not with set_option, which is a catalog write that a busy SQLite catalog refuses.
    con.execute("SET ducklake_default_data_inlining_row_limit = 0")
    try:
        con.execute(f"ATTACH '{_sql_str(target.attach)}' AS {alias}{clause}")
    except duckdb.Error as exc:
        msg = redact_url(str(exc).strip().splitlines()[0])
        hint = ("; create the catalog first with `mixline init --catalog URL --data-path DIR`"
                if "DATA_PATH" in str(exc) or "data path" in str(exc).lower() else "")
        raise StoreError(f"cannot open the DuckLake catalog {target.display}: {msg}{hint}") from exc
    con.execute(f"USE {alias}")
    # Retry commits that conflict with another writer's, with backoff (DuckLake's own loop).
    con.execute("SET ducklake_max_retry_count = 20")


def local_data_path(con: duckdb.DuckDBPyConnection, alias: str = ALIAS) -> Path | None:
    """The lake's data path when it is a local (or mounted) folder, else None (object storage)."""
    row = con.execute(f"SELECT value FROM ducklake_options('{alias}') WHERE option_name = 'data_path'").fetchone()
    if row and row[0] and "://" not in str(row[0]):
        return Path(str(row[0]))
    return None


def current_snapshot(con: duckdb.DuckDBPyConnection, alias: str = ALIAS) -> int:
    row = con.execute(f"SELECT id FROM ducklake_current_snapshot('{alias}')").fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Maintenance:
    """What `mixline optimize` did to a lake's files and snapshots."""

    files_merged: int  # small data files rewritten into fewer, larger ones
    files_created: int
    snapshots_expired: int
    snapshots_kept: int  # older than the cutoff, kept because a mix was built at them
    files_deleted: int  # replaced by an earlier pass, longer ago than the grace period
    files_waiting: int  # replaced, and kept on disk until a pass after the grace period

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def cleanup_grace_seconds() -> float:
    """How long files that a merge or an expiry replaced stay on disk, so that a reader in
    flight, which planned its scan over them, can finish (MIXLINE_LAKE_CLEANUP_GRACE_S)."""
    return float(os.environ.get("MIXLINE_LAKE_CLEANUP_GRACE_S", 3600))


def _cleanup(con: duckdb.DuckDBPyConnection, alias: str) -> int:
    """Delete replaced files, if every one was replaced longer ago than the grace period.

    Called before a maintenance pass replaces more, so a nightly optimize deletes what the
    previous night's replaced. (DuckLake's own `older_than` compares timestamps as text on a
    SQLite catalog, so the age is checked here.)"""
    table = f"__ducklake_metadata_{alias}.ducklake_files_scheduled_for_deletion"
    waiting, recent = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE TRY_CAST(schedule_start AS TIMESTAMPTZ) IS NULL
                                               OR TRY_CAST(schedule_start AS TIMESTAMPTZ)
                                                  > now() - to_microseconds(CAST(? * 1e6 AS BIGINT)))
            FROM {table}""", [cleanup_grace_seconds()]).fetchone() or (0, 0)
    if not waiting or recent:
        return 0
    return len(con.execute(f"CALL ducklake_cleanup_old_files('{alias}', cleanup_all => true)").fetchall())


def maintain(con: duckdb.DuckDBPyConnection, *, expire_days: float | None = None, keep: set[int] | None = None,
             alias: str = ALIAS) -> Maintenance:
    """Compact the lake's small files and, with `expire_days`, expire old snapshots.

    Every run commits a few small Parquet files, so after months of nightly runs a scan opens
    thousands of them. Merging keeps every snapshot readable (time travel is unchanged).
    Expiring drops the snapshots older than `expire_days`, except those in `keep` (the ones
    mixes were built at, so `mix build --snapshot` still reproduces every mix) and the newest.
    """
    deleted = _cleanup(con, alias)
    merged = con.execute(f"CALL ducklake_merge_adjacent_files('{alias}')").fetchall()
    expired, kept = 0, 0
    if expire_days is not None:
        if expire_days < 0:
            raise ConfigError(f"--expire-days {expire_days}: give a number of days, 0 or more")
        old = [int(r[0]) for r in con.execute(
            f"""SELECT snapshot_id FROM {alias}.snapshots()
                WHERE snapshot_time < now() - to_microseconds(CAST(? * 86400e6 AS BIGINT))
                  AND snapshot_id < (SELECT max(snapshot_id) FROM {alias}.snapshots())
                ORDER BY 1""", [float(expire_days)]).fetchall()]
        keep = keep or set()
        versions = [s for s in old if s not in keep]
        kept = len(old) - len(versions)
        if versions:
            con.execute(f"CALL ducklake_expire_snapshots('{alias}', versions => {versions})")
            expired = len(versions)
    row = con.execute(f"SELECT count(*) FROM __ducklake_metadata_{alias}.ducklake_files_scheduled_for_deletion").fetchone()
    waiting = int(row[0]) if row else 0
    return Maintenance(files_merged=sum(int(r[2]) for r in merged), files_created=sum(int(r[3]) for r in merged),
                       snapshots_expired=expired, snapshots_kept=kept, files_deleted=deleted, files_waiting=waiting)
