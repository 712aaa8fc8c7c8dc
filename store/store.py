"""A thin typed class over one DuckDB connection: migrations, runs, bulk writes, reads."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from mixline.store import lake
from mixline.store.ids import canonical_json, config_hash, new_run_id
from mixline.store.schema import MIGRATIONS, current_version, reindex_after, schema_version

from mixline.errors import NotFoundError, ReadOnlyError, StoreError, safe_message

DEFAULT_STORE = "mixline.duckdb"
Tracer = Callable[[str, Sequence[Any] | None], None]


def code_version() -> str:
    try:
        return f"mixline {version('mixline')}"
    except PackageNotFoundError:
        return "mixline (not installed)"


def resolve_store_path(path: str | os.PathLike[str] | None) -> str:
    """`--store PATH`, else `MIXLINE_STORE`, else ./mixline.duckdb."""
    if path is not None:
        return str(path)
    return os.environ.get("MIXLINE_STORE", DEFAULT_STORE)


# Whole words of a key: "hub_token" and "password" are secrets, "max_new_tokens" and "author" are not.
_SECRET_KEY = re.compile(r"(?i)(?:^|[_-])(?:token|secret|password|passwd|api_?key|credentials?|auth)(?:$|[_-])")


def redact_secrets(value: Any) -> Any:
    """A run config with the values of secret-looking keys (hub tokens, passwords) replaced."""
    if isinstance(value, dict):
        return {k: "<redacted>" if _SECRET_KEY.search(str(k)) and isinstance(v, str | int) and not isinstance(v, bool)
                else redact_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


# -- read snapshots ------------------------------------------------------------------------------
# DuckDB lets one process write a file and no other process open it meanwhile. So that readers
# (`stats`, `trace`, `sql`, `runs`, `mix show`, the dashboard) keep working while a run writes,
# every committed run publishes a read snapshot beside the store: the file is checkpointed and
# cloned (a reflink where the filesystem has them, else a copy up to MIXLINE_SNAPSHOT_MAX_BYTES),
# then renamed into place. A reader that finds the store locked opens the newest snapshot and
# says which run it reflects. MIXLINE_SNAPSHOTS=off turns publishing off.

def snapshot_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{path}.snapshot")


def snapshot_info(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    meta = Path(f"{path}.snapshot.json")
    if not snapshot_path(path).exists() or not meta.exists():
        return None
    try:
        info: dict[str, Any] = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return info


def _clone(src: Path, dst: Path, limit: int) -> bool:
    """Clone src to dst by reflink (instant, no extra space), else copy when src is at most `limit` bytes."""
    with contextlib.suppress(OSError):
        import fcntl

        with open(src, "rb") as fs, open(dst, "wb") as fd:
            fcntl.ioctl(fd.fileno(), 0x40049409, fs.fileno())  # FICLONE
        return True
    if src.stat().st_size > limit:
        dst.unlink(missing_ok=True)
        return False
    shutil.copyfile(src, dst)
    return True


def is_lock_error(exc: BaseException) -> bool:
    return "lock" in str(exc).lower()


def _locked_message(path: str, raw: str, read_only: bool) -> str:
    """What to do when another process holds a single-file store, in mixline's words."""
    import re

    pid = re.search(r"\(PID (\d+)\)", raw)
    holder = f"process {pid.group(1)}" if pid else "another process"
    if not read_only:
        return (f"store {path} is held by {holder}. Only one process may write to a store at a time; wait for "
                "the other mixline command to finish (MIXLINE_LOCK_WAIT sets how long a writer waits), "
                "or open it read-only")
    snap = snapshot_path(path)
    why = (f"{snap} is incomplete (its .json is missing)" if snap.exists() else
           f"it has no read snapshot beside it ({snap.name}, which each committed run publishes): its first "
           "run is still writing, or it was copied without its snapshot")
    return (f"store {path} is being written by {holder}, and {why}. Only one process may write to a store "
            "at a time. Wait for that run to commit and read again; a store copied elsewhere needs its "
            f"{snap.name} and {snap.name}.json copied with it, or copy it while no run is writing. "
            "Readers never block on a DuckLake store (`mixline init --catalog URL`)")


class Rollback(Exception):  # noqa: N818 - a control signal, not an error
    """Raised inside `Store.run` to undo every write of the run and leave no runs row (a dry run)."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__("rolled back")
        self.payload = payload


@dataclass
class Run:
    """A write in progress. Stats given here land in the run row when it commits."""

    run_id: str
    kind: str
    step: str
    config: dict[str, Any]
    config_hash: str
    stats: dict[str, Any] = field(default_factory=dict)


class Store:
    """The system of record. Pass it explicitly; it owns one connection."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        read_only: bool = False,
        tracer: Tracer | None = None,
        memory_limit: str | None = None,
        data_path: str | os.PathLike[str] | None = None,
        at_snapshot: int | None = None,
    ) -> None:
        self.path = str(path)
        self.read_only = read_only or at_snapshot is not None
        self.lake_snapshot = at_snapshot  # a DuckLake store opened as of this snapshot (time travel)
        read_only = self.read_only
        self._tracer = tracer
        config: dict[str, Any] = {"autoinstall_known_extensions": False}
        # An explicit limit (the argument or MIXLINE_MEMORY_LIMIT); None means DuckDB's default.
        self.memory_limit = memory_limit or os.environ.get("MIXLINE_MEMORY_LIMIT") or None
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if os.environ.get("MIXLINE_THREADS"):
            # DuckDB's threads for this process (one worker per core when several share a machine).
            config["threads"] = int(os.environ["MIXLINE_THREADS"])
        # A DuckLake store: the catalog URL names it (see store/lake.py).
        self.lake: lake.LakeTarget | None = lake.parse(self.path) if lake.is_lake(self.path) else None
        # When a reader falls back to the read snapshot: which run it reflects, and when.
        self.snapshot: dict[str, Any] | None = None
        # A SQLite catalog's writers queue for it, one at a time (see lake.CatalogLock).
        self._catalog_lock = (lake.CatalogLock(self.lake.sqlite_path) if self.lake is not None and not read_only
                              and self.lake.backend == "sqlite" and self.lake.sqlite_path is not None else None)
        if self.lake is not None:
            self.con = duckdb.connect(":memory:", config=config)
            # Before the ATTACH: its bar, on a slow machine, would print into the CLI's JSON on stdout.
            self.con.execute("SET enable_progress_bar = false")
            try:
                lake.attach(self.con, self.lake, read_only=read_only, snapshot=at_snapshot,
                            data_path=None if data_path is None else str(data_path))
            except BaseException:
                self.con.close()
                raise
            self._after_connect(read_only)
            return
        if at_snapshot is not None:
            raise StoreError(f"store {self.path} is a single DuckDB file, which keeps no numbered snapshots; "
                             "time travel needs a DuckLake store (`mixline init --catalog URL`)")
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise NotFoundError(
                f"store {self.path} does not exist; create it with `mixline --store {self.path} init` "
                "or ingest something first"
            )
        try:
            self.con = self._connect(read_only, config)
        except duckdb.IOException as exc:
            info = snapshot_info(self.path) if read_only and is_lock_error(exc) else None
            if info is not None:
                self.con = duckdb.connect(str(snapshot_path(self.path)), read_only=True, config=config)
                self.snapshot = info
                self._after_connect(read_only)
                return
            if not is_lock_error(exc) and not Path(self.path).parent.is_dir():
                raise StoreError(f"cannot create store {self.path}: its folder {Path(self.path).parent} does not exist; "
                                 "create the folder or pass another --store path") from exc
            if not is_lock_error(exc):
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            raise StoreError(_locked_message(self.path, str(exc), read_only)) from exc
        self._after_connect(read_only)

    def _connect(self, read_only: bool, config: dict[str, Any]) -> duckdb.DuckDBPyConnection:
        """Open the file. A writer that finds it locked waits up to MIXLINE_LOCK_WAIT seconds
        (default 10): readers such as the dashboard hold the file for a moment per request."""
        deadline = time.monotonic() + (0.0 if read_only else float(os.environ.get("MIXLINE_LOCK_WAIT", "10")))
        delay = 0.05
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if not is_lock_error(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _after_connect(self, read_only: bool) -> None:
        self.con.execute("SET enable_progress_bar = false")
        self._in_tx = False
        self._committed_run: str | None = None  # the newest run inside the open transaction
        self._tx_runs: list[str] = []  # runs that commit with the open transaction
        self._events: Any = None  # the OpenLineage emitter, made on the first run when one is configured
        self._events_url: str | None = None
        # Read-side helpers built from this store's files (the lineage index), opened once.
        self.attachments: dict[str, Any] = {}
        if read_only:
            have = current_version_ro(self.con)
            if have < schema_version():
                raise StoreError(
                    f"store {self.path} is at schema v{have}, this mixline needs v{schema_version()}; "
                    "run any writing command (for example `mixline init`) once to migrate it"
                )
        else:
            self.migrate()

    @property
    def display_path(self) -> str:
        """The store's name for messages: a catalog URL without its password."""
        return self.lake.display if self.lake is not None else self.path

    @property
    def is_lake(self) -> bool:
        return self.lake is not None

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (its writes are not in the catalog until it commits)."""
        return self._in_tx

    def runs_sql(self) -> str:
        """A FROM-clause relation of `runs` whose snapshot_id is each run's committed snapshot.

        A DuckLake store reads it from the catalog (each commit's message names its runs), so
        that finishing a run never updates another row of `runs`.
        """
        if self.lake is None:
            return "runs"
        # Runs that announced their start and have no outcome yet read as 'running'. Should two
        # outcomes race (an abort marked while the run committed), 'ok' wins.
        return f"""(SELECT r.* EXCLUDE (snapshot_id), s.snapshot_id FROM (
                      SELECT * FROM runs
                      QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY status = 'ok' DESC, finished_at) = 1
                      UNION ALL BY NAME
                      SELECT *, NULL::TIMESTAMP AS finished_at,
                             'running' AS status, NULL::JSON AS stats, NULL::VARCHAR AS error
                      FROM run_starts WHERE run_id NOT IN (SELECT run_id FROM runs)
                   ) r LEFT JOIN (
                      SELECT unnest(json_extract_string(commit_extra_info, '$.runs[*]')) AS run_id, snapshot_id
                      FROM {lake.ALIAS}.snapshots() WHERE author = 'mixline') s USING (run_id))"""

    def current_snapshot(self) -> int | None:
        """The DuckLake snapshot this connection reads (None for a single-file store)."""
        return lake.current_snapshot(self.con) if self.lake is not None else None

    @classmethod
    def open(cls, path: str | os.PathLike[str], read_only: bool = False) -> Store:
        """Open (and create or migrate, unless read-only) the store at `path`.

        >>> with Store.open("mixline.duckdb", read_only=True) as st:
        ...     st.scalar("SELECT count(*) FROM samples")
        """
        return cls(path, read_only=read_only)

    # -- connection ------------------------------------------------------------------------
    def close(self) -> None:
        reads = self.attachments.pop("point_reads", None)
        if reads is not None:
            reads.close()
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyConnection:
        if self._tracer is not None:
            self._tracer(sql, params)
        try:
            return self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        except duckdb.InvalidInputException as exc:
            if self.read_only and "read-only" in str(exc).lower():
                raise ReadOnlyError(f"the store is open read-only: {exc}") from exc
            raise

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts."""
        cur = self.execute(sql, params)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...]:
        """The single row of an aggregate query."""
        row = self.execute(sql, params).fetchone()
        if row is None:
            raise StoreError(f"query returned no row: {sql[:200]}")
        return tuple(row)

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def table_exists(self, name: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            )
        )

    # -- schema ----------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations, each in its own transaction. Returns the versions applied."""
        applied: list[int] = []
        have = current_version(self.con)
        if have > schema_version():
            raise StoreError(
                f"store {self.path} is at schema v{have}, newer than this mixline "
                f"(v{schema_version()}); upgrade mixline"
            )
        for m in MIGRATIONS:
            if m.version <= have:
                continue
            with self._writer():
                if current_version(self.con) >= m.version:  # another writer migrated while this one queued
                    continue
                self.con.execute("BEGIN TRANSACTION")
                try:
                    m.apply(self.con)
                    self.con.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [m.version, m.name]
                    )
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise
            applied.append(m.version)
        if applied and self.lake is None:
            reindex_after(self.con, applied)
        return applied

    def _writer(self) -> contextlib.AbstractContextManager[Any]:
        """Held around every write to a SQLite catalog; nothing elsewhere."""
        return self._catalog_lock if self._catalog_lock is not None else contextlib.nullcontext()

    def schema_version(self) -> int:
        return int(self.scalar("SELECT max(version) FROM schema_migrations") or 0)

    # -- transactions and runs --------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:
            yield
            return
        with self._writer():
            yield from self._outer_transaction()

    def _outer_transaction(self) -> Iterator[None]:
        self.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._in_tx = False
            self._committed_run = None
            self._tx_runs = []
            self.execute("ROLLBACK")
            raise
        self._in_tx = False
        runs, self._tx_runs = self._tx_runs, []
        if self.lake is not None and runs:
            # The snapshot this commit creates names its runs, so each run can find it.
            self.execute(f"CALL {lake.ALIAS}.set_commit_message('mixline', ?, extra_info => ?)",
                         [runs[-1], json.dumps({"runs": runs})])
        try:
            self.execute("COMMIT")
        except duckdb.Error as exc:
            self._committed_run = None
            if self.lake is None:
                raise
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise StoreError(
                f"the commit to {self.display_path} failed: {lake.redact_url(safe_message(exc))}. Another writer "
                "changed the same rows or held the catalog; nothing of this run was written. Run it again") from exc
        # Readers see a run once the outermost transaction holding it commits (a loop stage
        # wraps its runs in one), so the snapshot is published here, not at each run's end.
        if self._committed_run is not None:
            run_id, self._committed_run = self._committed_run, None
            self.publish_snapshot(run_id)

    @contextmanager
    def run(
        self,
        kind: str,
        step: str,
        config: Mapping[str, Any],
        *,
        step_version: int = 1,
        parent_run_id: str | None = None,
    ) -> Iterator[Run]:
        """One writing command: all its writes commit together, or none do.

        The run's row is written first, with status 'running', in a transaction of its own;
        the run's writes then commit together with the row's change to 'ok'. A failed run
        keeps its row as 'failed' with the error, so that `mixline runs` shows what was
        attempted. A process killed mid-run leaves 'running' behind, and the next writer
        marks it 'aborted' (only one writer can hold the store, so it cannot be live).

        On a DuckLake store the `runs` row is inserted once, with the outcome. On a PostgreSQL
        catalog the start goes to `run_starts` first, in its own commit (see `runs_sql` and
        `mark_aborted`).
        """
        if self.read_only:
            raise ReadOnlyError(f"cannot start a {kind} run: store {self.path} is open read-only")
        cfg = redact_secrets(json.loads(canonical_json(dict(config))))
        chash = config_hash(cfg)
        run = Run(new_run_id(chash), kind, step, cfg, chash)
        started = datetime.now(UTC).replace(tzinfo=None)
        insert = ("INSERT INTO runs (run_id, kind, step, step_version, config, config_hash, code_version,"
                  " parent_run_id, started_at, finished_at, status, stats, error, owner)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

        def row(status: str, finished: datetime | None, error: str | None) -> list[Any]:
            return [run.run_id, kind, step, step_version, canonical_json(cfg), chash, code_version(), parent_run_id,
                    started, finished, status, None if status == "running" else canonical_json(run.stats), error,
                    run_owner()]

        # A DuckLake store has many writers, and DuckLake refuses a commit that inserts into a
        # table another transaction deleted from (an UPDATE is both). So there a run's row is
        # only ever inserted, once, with its outcome: in the run's commit, or after a failure.
        lake_mode = self.lake is not None
        # A lake run on PostgreSQL announces itself in a commit of its own, so that readers see
        # it while it works. A SQLite catalog has one write lock, and the extra commit made
        # concurrent writers fail, so runs there appear when they end.
        announce = lake_mode and not self._in_tx and self.lake is not None and self.lake.backend == "postgres"
        if not self._in_tx and (announce or not lake_mode):  # a nested run must not touch the outer 'running' row
            self.mark_aborted()
        if not lake_mode:
            self.execute(insert, row("running", None, None))
        elif announce:
            self._write_retrying(
                "INSERT INTO run_starts (run_id, kind, step, step_version, config, config_hash, code_version,"
                " parent_run_id, started_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run.run_id, kind, step, step_version, canonical_json(cfg), chash, code_version(), parent_run_id,
                 started, run_owner()])
        finish = "UPDATE runs SET finished_at = ?, status = ?, stats = ?, error = ? WHERE run_id = ?"
        events = self._lineage_events()

        def emit(state: str, error: str | None = None) -> None:
            if events is not None:
                events.emit(state, run_id=run.run_id, step=step, kind=kind, store_path=self.display_path, config=cfg,
                            config_hash=chash, stats=run.stats, parent_run_id=parent_run_id, error=error)

        emit("START")
        try:
            with self.transaction():
                yield run
                now = datetime.now(UTC).replace(tzinfo=None)
                if lake_mode:
                    self.execute(insert, row("ok", now, None))
                else:
                    self.execute(finish, [now, "ok", canonical_json(run.stats), None, run.run_id])
                self._committed_run = run.run_id
                self._tx_runs.append(run.run_id)
        except Rollback:  # a dry run leaves no trace
            if not lake_mode:
                self.execute("DELETE FROM runs WHERE run_id = ?", [run.run_id])
            elif announce:
                self._write_retrying("DELETE FROM run_starts WHERE run_id = ?", [run.run_id])
            emit("ABORT")
            raise
        except BaseException as exc:
            # A signal (SIGTERM, Ctrl-C) is an abort; inside a query DuckDB reports it as "Query interrupted".
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit) or "Query interrupted" in str(exc)
            status = "aborted" if interrupted else "failed"
            # If the connection itself is gone, the next writer marks the run aborted.
            with contextlib.suppress(duckdb.Error):
                now = datetime.now(UTC).replace(tzinfo=None)
                if lake_mode:
                    if not self._in_tx:  # inside an outer transaction, the outer run records the failure
                        self._write_retrying(insert, row(status, now, safe_message(exc)))
                else:
                    self.execute(finish, [now, status, canonical_json(run.stats), safe_message(exc), run.run_id])
            emit("ABORT" if interrupted else "FAIL", safe_message(exc))
            raise
        emit("COMPLETE")

    def _write_retrying(self, sql: str, params: list[Any], tries: int = 8) -> None:
        """A small write in a commit of its own, which another writer may briefly block (a SQLite
        catalog is locked while one commits, a DuckLake commit may conflict): retried with backoff."""
        for i in range(tries):
            try:
                with self._writer():
                    self.execute(sql, params)
                return
            except duckdb.Error:
                if i == tries - 1:
                    raise
                time.sleep(0.1 * 2 ** i)

    def _lineage_events(self) -> Any:
        """The OpenLineage emitter when one is configured (see `store.openlineage`), else None."""
        from mixline.store.openlineage import configured_url

        url = configured_url()
        if url is None:
            return None
        if self._events is None or self._events_url != url:
            from mixline.store.openlineage import Emitter

            self._events, self._events_url = Emitter(url), url
        return self._events

    def publish_snapshot(self, run_id: str) -> bool:
        """Publish the read snapshot that readers open while a later run holds the store."""
        if self.path == ":memory:" or self.lake is not None or self.read_only or os.environ.get("MIXLINE_SNAPSHOTS", "on") == "off":
            return False
        src, dst = Path(self.path), snapshot_path(self.path)
        tmp = dst.with_name(f".{dst.name}.partial")
        self.execute("CHECKPOINT")
        if not _clone(src, tmp, int(os.environ.get("MIXLINE_SNAPSHOT_MAX_BYTES", 4 << 30))):
            return False
        meta = {"run_id": run_id, "published_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
                "bytes": tmp.stat().st_size}
        os.replace(tmp, dst)
        meta_tmp = tmp.with_suffix(".json")
        meta_tmp.write_text(json.dumps(meta))
        os.replace(meta_tmp, Path(f"{self.path}.snapshot.json"))
        return True

    def mark_aborted(self, run_id: str | None = None) -> int:
        """Mark runs whose process died before they committed as 'aborted'. Only a writer calls this.

        A single-file store has one writer, so any 'running' row there is dead. A DuckLake store
        has many, on many machines: a run that announced its start and has no outcome is marked
        here when its owner is a process on this machine that no longer exists. A run owned by
        another machine is marked only when named (`mixline runs --abort RUN_ID`), because only
        its operator knows that it died.
        """
        error = "the process ended before the run committed; none of its writes were kept"
        if self.lake is None:
            where = "status = 'running'" + (" AND run_id = ?" if run_id else "")
            row = self.execute(
                f"UPDATE runs SET status = 'aborted', finished_at = coalesce(finished_at, started_at), error = ? "
                f"WHERE {where}", [error, *([run_id] if run_id else [])]).fetchone()
            return int(row[0]) if row else 0
        open_runs = self.rows("SELECT * FROM run_starts WHERE run_id NOT IN (SELECT run_id FROM runs)"
                              + (" AND run_id = ?" if run_id else ""), [run_id] if run_id else [])
        dead = [r for r in open_runs if run_id is not None or owner_is_dead(r["owner"])]
        if run_id is not None and dead and not owner_is_dead(dead[0]["owner"]) and _owner_is_local(dead[0]["owner"]):
            raise StoreError(f"run {run_id} is still running here (process {dead[0]['owner']}); stop it first")
        now = datetime.now(UTC).replace(tzinfo=None)
        for r in dead:
            self._write_retrying(
                "INSERT INTO runs (run_id, kind, step, step_version, config, config_hash, code_version, parent_run_id,"
                " started_at, finished_at, status, stats, error, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'aborted', NULL, ?, ?)",
                [r["run_id"], r["kind"], r["step"], r["step_version"] or 1, r["config"] or "{}", r["config_hash"] or "",
                 r["code_version"] or "", r["parent_run_id"], r["started_at"], now, error, r["owner"]])
        return len(dead)

    # -- bulk writes --------------------------------------------------------------------------
    def append(self, table: str, data: pa.Table | pa.RecordBatch) -> int:
        """Append an Arrow table to a store table by column name. Never row by row.

        `samples` is a view (rows joined with their annotations): its rows go to `sample_rows`."""
        if data.num_rows == 0:
            return 0
        table = "sample_rows" if table == "samples" else table
        view = f"_append_{table}"
        self.con.register(view, data)
        try:
            self.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")
        finally:
            self.con.unregister(view)
        return data.num_rows

    def add_edges(self, data: pa.Table | Sequence[Mapping[str, Any]]) -> int:
        """Append lineage edges (child_id, parent_id, relation, run_id, step), adding their keys."""
        if not isinstance(data, pa.Table):
            rows = list(data)
            if not rows:
                return 0
            data = pa.table({c: [r.get(c) for r in rows] for c in ("child_id", "parent_id", "relation", "run_id", "step")})
        if data.num_rows == 0:
            return 0
        if "step" not in data.column_names:
            data = data.append_column("step", pa.nulls(data.num_rows, pa.string()))
        self.con.register("_edges_in", data)
        try:
            self.execute(
                f"""INSERT INTO edges (child_id, parent_id, relation, run_id, step, child_key, parent_key)
                SELECT child_id, parent_id, relation, run_id, step, {id_key('child_id')}, {id_key('parent_id')}
                FROM _edges_in"""
            )
        finally:
            self.con.unregister("_edges_in")
        return data.num_rows

    def insert_new_samples(self, rows: pa.Table) -> None:
        """Insert samples (an Arrow table of `samples` columns) whose ids the store does not hold yet."""
        self.con.register("_new_samples", rows)
        try:
            self.execute("""INSERT INTO sample_rows BY NAME SELECT DISTINCT ON (sample_id) * FROM _new_samples r
                            WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.sample_id = r.sample_id)""")
        finally:
            self.con.unregister("_new_samples")

    def append_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append small lists of dict rows, through Arrow."""
        if not rows:
            return 0
        names = list(dict.fromkeys(k for r in rows for k in r))
        return self.append(table, pa.table({n: [r.get(n) for r in rows] for n in names}))


def annotation_time() -> datetime:
    """When an annotation row is written (UTC, to the microsecond): a sample's newest one wins
    in `samples`, run id breaking a tie, so runs in one transaction are told apart too."""
    return datetime.now(UTC).replace(tzinfo=None)


def run_owner() -> str:
    """Which process runs a run, so that another writer can tell a live run from a dead one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_local(owner: str | None) -> bool:
    return bool(owner) and str(owner).rpartition(":")[0] == socket.gethostname()


def owner_is_dead(owner: str | None) -> bool:
    """True when `owner` (host:pid) names a process on this machine that no longer exists.
    A process on another machine cannot be checked from here, and counts as alive."""
    if not _owner_is_local(owner):
        return False
    try:
        os.kill(int(str(owner).rpartition(":")[2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def id_key(column: str) -> str:
    """SQL for the 64-bit integer key of a hex id column (its first 16 hex digits)."""
    return f"('0x' || substr({column}, 1, 16))::UBIGINT"


def key_of(sample_id: str) -> int:
    return int(sample_id[:16], 16)


def current_version_ro(con: duckdb.DuckDBPyConnection) -> int:
    try:
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    except duckdb.CatalogException:
        return 0
    return int(row[0]) if row else 0
