"""The Ray executor: the same recipe, with batches and the dedup pair search on Ray Data.

A run is split into partitions, one per recipe batch (`batch_size` rows of the selection in
sample-id order), so the partitioning, and therefore every id, decision and cluster, does not
depend on the number of workers.

1. The driver writes the selection, sorted by page, as Parquet input files in the run's work
   folder; a partition is a range of pages. The driver's DuckDB works within a memory limit
   (`MIXLINE_DRIVER_MEMORY_LIMIT`, 1 GB by default), spilling to disk past it.
2. Map (`map_batches` on an actor pool): each task runs the filters and rewriters on one
   partition, then each dedup step's map phase (signatures, hashes, embeddings). It writes
   Parquet shards (decisions, scrubbed children, edges, redactions, languages, PII
   fingerprints, surviving rows, features) and, per dedup step, its pair-search rows
   hash-partitioned by key into buckets. The shards go to a temporary folder renamed to
   `part-NNNNNN` when complete, so a killed task leaves nothing half-written and a resumed
   run skips the partitions already done.
3. Reduce, per dedup step in recipe order: one task per bucket finds candidate pairs among the
   rows sharing keys (MinHash band buckets; exact hashes; semantic k-means partitions, which
   the driver assigns because k-means needs every vector). The driver joins the pairs with
   union-find and picks the copy to keep, exactly as in-process.
4. The driver registers every shard in the run's one transaction: the run commits all of
   them or none. The work folder is deleted after the commit (it holds raw text).

The work folder is named by a hash of the recipe and the selection, so rerunning the same
command after a failure resumes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from mixline.curation.distributed_reduce import (
    DECISIONS_SCHEMA,
    Collect,
    Layout,
    key_buckets,
    out_files,
    reduce_step,
)
from mixline.curation.pipeline import CHILDREN_SQL, Plan, Progress, _Decisions, process_batch
from mixline.store.store import Store

from mixline.errors import ConfigError

# Ray remote functions, made once per function.
_REMOTE: dict[Callable[..., Any], Any] = {}

# Shards a map task writes, in the order the driver registers them.
ROW_SHARDS = ("children", "edges", "redactions", "decisions", "clusters", "classifier_scores")
SIDE_SHARDS = ("langs", "pii_fingerprints")


def default_work_dir(store: Store) -> Path:
    """Beside a store file; for a DuckLake store, under its data path when that is a folder."""
    env = os.environ.get("MIXLINE_WORK_DIR")
    if env:
        return Path(env)
    if store.lake is not None:
        from mixline.store.lake import local_data_path

        data = local_data_path(store.con)
        if data is not None:
            return data / "_mixline_work"
        raise ConfigError("the store's data path is not a local folder; give --work-dir on storage every Ray worker reads")
    if store.path == ":memory:":
        raise ConfigError("a Ray run of an in-memory store needs a work folder: set work_dir or MIXLINE_WORK_DIR")
    return Path(f"{store.path}.work")


@dataclass
class RayExecutor:
    """Run curation on Ray. With no `address`, a local Ray instance with `num_cpus` CPUs is
    started (and stopped after); with an address (`auto` or `ray://host:10001`), the run joins
    that cluster, whose workers must reach `work_dir`."""

    address: str | None = None
    num_cpus: int | None = None
    workers: int | None = None
    work_dir: str | Path | None = None
    buckets: int | None = None
    keep_work: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    _folder: Path | None = None
    _started: bool = False
    # Shards moved into a lake's data path and registered there by the run in progress.
    _moved: list[Path] = field(default_factory=list)

    # -- Ray ------------------------------------------------------------------------------------
    def _init(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--executor ray needs Ray Data: `pip install mixline[ray]`") from exc
        if not ray.is_initialized():
            os.environ.setdefault("RAY_DEDUP_LOGS", "0")
            # Hides core_worker's per-run error line about actor arguments in the object store
            # (ours are a file path); Ray then prints one info line saying it read this variable.
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
            # Ray's notice that it turned on its default token authentication, on every run.
            logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if self.address is None:
                kw["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            else:
                kw["address"] = self.address
            ray.init(**kw)
            self._started = True
        import ray.data

        logging.getLogger("ray").setLevel(logging.WARNING)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        return ray

    def shutdown(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _pool(self) -> int:
        import ray

        return max(1, self.workers or int(ray.cluster_resources().get("CPU", 1)))

    # -- the run --------------------------------------------------------------------------------
    def run(self, store: Store, plan: Plan, run_id: str,
            progress: Progress | None) -> tuple[int, str | None, str | list[tuple[str, str]]]:
        self._moved = []
        t0 = time.perf_counter()
        folder = self._prepare(store, plan)
        t_inputs = time.perf_counter() - t0
        self._init()  # _pool() reads the cluster's CPUs
        n_parts = len(plan.batches())
        buckets = self.buckets or max(1, min(64, 2 * self._pool()))
        # Partitions done by an earlier attempt wrote their pair-search rows into that
        # attempt's buckets, so a resumed run keeps them whatever its own pool size.
        fixed = folder / "buckets.txt"
        if fixed.exists() and any(folder.glob("part-*")):
            buckets = int(fixed.read_text())
        else:
            fixed.write_text(str(buckets))
        done = {int(p.name.split("-")[1]) for p in folder.glob("part-*") if p.is_dir() and "." not in p.name}
        todo = [i for i in range(n_parts) if i not in done]
        self.stats = {"partitions": n_parts, "resumed": len(done & set(range(n_parts))), "buckets": buckets,
                      "work_dir": str(folder), "inputs_s": round(t_inputs, 3), "driver_peak_mb": {"inputs": peak_mb()}}
        t0 = time.perf_counter()
        if progress is not None and done:
            bs = int(plan.recipe.batch_size)
            progress(sum(min(bs, plan.total - i * bs) for i in done if i < n_parts))
        if todo:
            payload = stash(folder / "map.pkl", {"plan": plan, "folder": str(folder), "run_id": run_id, "buckets": buckets})
            for out in self.map_parts(MapWorker, payload, todo):
                if progress is not None:
                    progress(int(pc.sum(out.column("rows")).as_py() or 0))
        # Where a run's time goes, for the scaling model in the README: inputs, map and each
        # reduce stage scale with workers; the driver only registers shards and counts rows.
        self.stats["map_s"] = round(time.perf_counter() - t0, 3)
        self.stats["driver_peak_mb"]["map"] = peak_mb()
        t0 = time.perf_counter()
        metas = [_part_meta(folder / f"part-{i:06d}") for i in range(n_parts)]
        read = sum(m["rows"] for m in metas)
        if read != plan.total:  # every selected row went through exactly one partition
            raise RuntimeError(f"the Ray map phase read {read} rows of the {plan.total} selected; "
                               f"delete {folder} and run again")
        lay = Layout.of(folder, [m["alive"] for m in metas], buckets, run_id)
        for i, g in enumerate(plan.globals_):
            t1 = time.perf_counter()
            counts = reduce_step(lay, i, g, self.tasks, stash)
            self.stats[f"reduce_{g.step_name}"] = {**counts, "seconds": round(time.perf_counter() - t1, 3)}
        self.stats["reduce_s"] = round(time.perf_counter() - t0, 3)
        self.stats["driver_peak_mb"]["reduce"] = peak_mb()
        t0 = time.perf_counter()
        self.stats["registered_in_place"] = _register(
            store, folder, n_parts, run_id, out_files(lay, len(plan.globals_), "decisions")
            + out_files(lay, len(plan.globals_), "kept"), out_files(lay, len(plan.globals_), "clusters"), self._moved)
        self.stats["register_s"] = round(time.perf_counter() - t0, 3)
        self.stats["driver_peak_mb"]["register"] = peak_mb()
        langs = _files(folder, n_parts, "langs")
        prints = _files(folder, n_parts, "pii_fingerprints")
        return (sum(m["selected"] for m in metas), f"read_parquet({_sql_list(langs)})" if langs else None,
                f"read_parquet({_sql_list(prints)})" if prints else [])

    def tasks(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        """fn(*a) for each a as Ray tasks, at most `workers` at once; results in order."""
        ray = self._init()
        remote = _REMOTE.get(fn)
        if remote is None:
            remote = _REMOTE[fn] = ray.remote(num_cpus=1, max_retries=3)(fn)
        limit = self._pool()
        out: list[Any] = [None] * len(args)
        pending: dict[Any, int] = {}

        def settle(refs: list[Any]) -> None:
            for ref in refs:
                out[pending.pop(ref)] = ray.get(ref)

        for n, a in enumerate(args):
            if len(pending) >= limit:
                done, _ = ray.wait(list(pending), num_returns=1)
                settle(done)
            pending[remote.remote(*a)] = n
        settle(list(pending))
        return out

    def work_folder(self, store: Store, name: str) -> Path:
        """A private work folder for one run's shards (`name` says what and which input)."""
        base = Path(self.work_dir) if self.work_dir is not None else default_work_dir(store)
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)  # inputs and shards hold raw text: readable by this user only
        self._folder = folder
        return folder

    def map_parts(self, worker: type, payload: str, parts: list[int]) -> Any:
        """Run `worker` (a Ray Data callable class taking a payload path) over partition
        numbers on an actor pool; yields each call's output table."""
        ray = self._init()
        ds = ray.data.from_items([{"part": i} for i in parts], override_num_blocks=len(parts))
        ds = ds.map_batches(worker, batch_size=1, batch_format="pyarrow", fn_constructor_kwargs={"payload": payload},
                            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=min(self._pool(), len(parts))),
                            num_cpus=1)
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow")

    @contextlib.contextmanager
    def driver_memory(self, store: Store) -> Iterator[None]:
        """The driver's DuckDB within MIXLINE_DRIVER_MEMORY_LIMIT (1 GB by default) for the run:
        it selects, sorts and registers past that by spilling to disk, so the driver's memory
        does not grow with the corpus. A limit the store was opened with (MIXLINE_MEMORY_LIMIT
        or Store(memory_limit=...)) governs instead."""
        if getattr(store, "memory_limit", None):
            yield
            return
        store.execute(f"SET memory_limit = '{_sql_str(os.environ.get('MIXLINE_DRIVER_MEMORY_LIMIT', '1GB'))}'")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                store.execute("RESET memory_limit")  # DuckDB's default again

    def abort(self) -> None:
        """The run rolled back: shards it moved into the lake's data path are registered
        nowhere, so they are deleted (the work folder stays, to resume from)."""
        for f in self._moved:
            with contextlib.suppress(OSError):
                f.unlink()
        self._moved = []

    def cleanup(self) -> None:
        """Delete the run's work folder (its inputs hold raw text) once the run has committed."""
        if self._folder is not None and not self.keep_work:
            shutil.rmtree(self._folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                self._folder.parent.rmdir()  # the base folder, when no other run's work is left
        self._folder = None

    def _prepare(self, store: Store, plan: Plan) -> Path:
        """The run's work folder, named by recipe and selection, with its input partitions."""
        digest = hashlib.sha256()
        digest.update(repr(sorted(plan.recipe.config().items())).encode())
        # An order-free digest of the selection (a string of every id would cost the driver
        # memory in proportion to the corpus).
        row = store.execute("SELECT sum(hash(sample_id, anchor, rank))::HUGEINT::VARCHAR FROM _sel").fetchone()
        digest.update(f"{row[0] if row else ''}:{plan.recipe.batch_size}:{plan.total}".encode())
        folder = self.work_folder(store, f"curate-{digest.hexdigest()[:20]}")
        inputs = folder / "input"
        if not (inputs / "_COMPLETE").exists():
            shutil.rmtree(inputs, ignore_errors=True)
            bs = int(plan.recipe.batch_size)
            # The texts join the selection here, on their way from the store to the workers, in
            # page order (DuckDB's sort spills to disk past its memory limit; a partitioned
            # write would hold a buffer per partition), so each partition is a range of row
            # groups. Files roll over at 128 MB.
            store.execute(f"""COPY (SELECT x.*, r.text FROM _sel x JOIN sample_rows r USING (sample_id) ORDER BY x._page)
                              TO '{_sql_str(str(inputs))}' (FORMAT parquet, ROW_GROUP_SIZE {max(1024, min(bs, 122880))},
                                                            FILE_SIZE_BYTES '128MB')""")
            (inputs / "_COMPLETE").write_text("")
        return folder

# -- workers --------------------------------------------------------------------------------------


class MapWorker:
    """One Ray actor: unpickles the prepared steps once, then runs partitions."""

    def __init__(self, payload: str) -> None:
        cfg = unstash(payload)
        self.plan: Plan = cfg["plan"]
        self.folder = Path(cfg["folder"])
        self.run_id: str = cfg["run_id"]
        self.buckets: int = cfg["buckets"]

    def __call__(self, batch: pa.Table) -> pa.Table:
        parts = batch.column("part").to_pylist()
        rows = [self.one(int(p)) for p in parts]
        return pa.table({"part": parts, "rows": rows})

    def one(self, part: int) -> int:
        import pyarrow.dataset as ds

        final = self.folder / f"part-{part:06d}"
        # The inputs are sorted by page: row-group statistics let the read skip every other
        # partition's rows.
        bs = int(self.plan.recipe.batch_size)
        lo = part * bs
        table = ds.dataset(str(self.folder / "input"), format="parquet").to_table(
            filter=(ds.field("_page") > lo) & (ds.field("_page") <= lo + bs))
        if table.num_rows == 0:
            raise RuntimeError(f"input partition {part} is missing from {self.folder / 'input'}")
        if (self.folder.parent / f"_inject_fault_{part}").exists():  # for the fault tests
            raise RuntimeError(f"fault injected in partition {part}")
        table = table.sort_by("_page").drop_columns(["_page"])
        if final.exists():
            return table.num_rows
        sink = Collect()
        rec = _Decisions(sink, self.run_id)
        for f in self.plan.filters:  # fingerprints are per partition
            if getattr(f, "fingerprints", None) is not None:
                f.fingerprints = []  # type: ignore[union-attr]
        res = process_batch(self.plan, table, rec)
        prints = [p for f in self.plan.filters for p in (getattr(f, "fingerprints", None) or [])]
        if prints:
            sink("pii_fingerprints", pa.table({"fingerprint": [a for a, _ in prints],
                                               "entity_type": [b for _, b in prints]}))
        tmp = self.folder / f"part-{part:06d}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        for name, tabs in sink.tables.items():
            pq.write_table(pa.concat_tables(tabs, promote_options="default"), tmp / f"{name}.parquet")
        pq.write_table(res.alive, tmp / "pop.parquet")
        pq.write_table(pa.table({"selected": [res.selected], "rows": [table.num_rows]}), tmp / "meta.parquet")
        for i, (pos, feat) in enumerate(zip(res.positions, res.features, strict=True)):
            np.save(tmp / f"pos-{i}.npy", pos.astype(np.int64))
            pq.write_table(feat, tmp / f"feat-{i}.parquet")
            g = self.plan.globals_[i]
            if not g.shuffle_needs_all:
                # Rows named by their place in the partition's population (the reduce adds
                # the partition's offset), not by their place among this step's features.
                rows = g.task_rows(feat)
                rows = rows.set_column(rows.column_names.index("row"), "row",
                                       pa.array(pos.astype(np.int64)[rows.column("row").to_numpy()], pa.int64()))
                _write_buckets(rows, tmp, f"shuf-{i}", self.buckets)
        publish(tmp, final)
        return table.num_rows


# -- shards ---------------------------------------------------------------------------------------


def _write_buckets(rows: pa.Table, folder: Path, prefix: str, buckets: int) -> None:
    if rows.num_rows == 0:
        return
    bucket = key_buckets(rows, buckets)
    order = np.argsort(bucket, kind="stable")
    sorted_b = bucket[order]
    bounds = np.flatnonzero(np.diff(sorted_b)) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            pq.write_table(rows.take(pa.array(chunk)), folder / f"{prefix}-{int(bucket[chunk[0]])}.parquet")


def peak_mb() -> float:
    """The driver process's peak resident memory so far, in MB (Linux reports KB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _part_meta(folder: Path) -> dict[str, int]:
    """A finished partition's counts: rows read, new rows selected, rows alive after filters."""
    if not folder.is_dir():
        raise RuntimeError(f"partition {folder.name} is missing after the map phase")
    meta = pq.read_table(folder / "meta.parquet")
    return {"rows": int(meta.column("rows")[0].as_py()), "selected": int(meta.column("selected")[0].as_py()),
            "alive": pq.read_metadata(folder / "pop.parquet").num_rows}


def _files(folder: Path, n_parts: int, name: str) -> list[str]:
    return [str(p) for i in range(n_parts) if (p := folder / f"part-{i:06d}" / f"{name}.parquet").exists()]


# Tables whose shards a lake registers in place when a shard has exactly the table's columns.
IN_PLACE = {"decisions": [(f.name, f.type) for f in DECISIONS_SCHEMA],
            "clusters": [("run_id", pa.string()), ("sample_id", pa.string()), ("cluster_id", pa.string()),
                         ("method", pa.string()), ("kept", pa.bool_())]}


def _registrable(path: str, table: str, run_id: str) -> bool:
    """A shard DuckLake can take as it is: the table's columns and types, every row of this run."""
    schema = pq.read_schema(path)
    if [(f.name, f.type) for f in schema] != IN_PLACE[table]:
        return False
    meta = pq.read_metadata(path)
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(0).statistics
        if st is None or not st.has_min_max or st.min != run_id or st.max != run_id:
            return False  # written by an earlier attempt (a resumed partition): copied instead
    return True


def _add_in_place(store: Store, table: str, files: list[str], run_id: str, moved: list[Path]) -> list[str]:
    """Move this run's shards of `table` into the lake's data path and register them there,
    inside the run's transaction (DuckLake's ducklake_add_data_files); returns the shards
    that must be copied instead. A moved file is listed in `moved`, for removal if the run
    rolls back."""
    from mixline.store.lake import ALIAS, local_data_path

    data = local_data_path(store.con) if store.lake is not None else None
    if data is None or not files or os.environ.get("MIXLINE_LAKE_IN_PLACE", "on") == "off":
        return files
    dest = data / "main" / table
    dest.mkdir(parents=True, exist_ok=True)
    copy, take = [], []
    for f in files:
        if not _registrable(f, table, run_id):
            copy.append(f)
            continue
        target = dest / f"mixline-{run_id}-{uuid.uuid4().hex[:12]}.parquet"
        shutil.move(f, target)
        moved.append(target)
        take.append(str(target))
    if take:
        store.execute(f"CALL ducklake_add_data_files('{ALIAS}', '{table}', {_sql_list(take)})")
    return copy


def _register(store: Store, folder: Path, n_parts: int, run_id: str, decisions: list[str],
              clusters: list[str], moved: list[Path] | None = None) -> int:
    """Insert every partition's rows, in partition order, and the reduce's decisions and
    clusters, inside the run's transaction. On a lake whose data path is a folder, this run's
    decision and cluster shards are registered where they are instead of copied; returns
    how many were."""
    from mixline.store.store import id_key

    in_place = 0
    for name in ROW_SHARDS:
        files = _files(folder, n_parts, name) + {"decisions": decisions, "clusters": clusters}.get(name, [])
        if name in IN_PLACE and moved is not None:
            before = len(files)
            files = _add_in_place(store, name, files, run_id, moved)
            in_place += before - len(files)
        if not files:
            continue
        src = f"read_parquet({_sql_list(files)})"
        if name == "children":
            store.execute(CHILDREN_SQL.format(src=src), [run_id])
        elif name == "classifier_scores":
            # Workers score without the cache: only scores the store does not hold yet are added.
            store.execute(f"""INSERT INTO classifier_scores BY NAME
                              SELECT * REPLACE (?::VARCHAR AS run_id) FROM {src} n
                              WHERE NOT EXISTS (SELECT 1 FROM classifier_scores c WHERE c.classifier_id = n.classifier_id
                                                AND c.sample_id = n.sample_id AND c.label = n.label)""", [run_id])
        elif name == "edges":
            store.execute(f"""INSERT INTO edges (child_id, parent_id, relation, run_id, step, child_key, parent_key)
                              SELECT child_id, parent_id, relation, ?, step, {id_key('child_id')}, {id_key('parent_id')}
                              FROM {src}""", [run_id])
        else:
            # The shards were written under the attempt's run id; a resumed run is a new run.
            store.execute(f"INSERT INTO {name} BY NAME SELECT * REPLACE (?::VARCHAR AS run_id) FROM {src}", [run_id])
    return in_place


def _sql_str(s: str) -> str:
    return s.replace("'", "''")


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join(f"'{_sql_str(f)}'" for f in files) + "]"


def publish(tmp: Path, final: Path) -> None:
    """Rename a finished partition's folder into place, so it appears whole or not at all.

    Ray may run a partition twice (a retried task whose first attempt had finished, or two
    attempts at once). Results are deterministic, so when another attempt got there first,
    this one's copy is dropped."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def stash(path: Path, obj: Any) -> str:
    """Pickle what workers need into the work folder; actors get its path. (Ray restarts a dead
    actor with its constructor arguments, so they are kept small.)"""
    from ray import cloudpickle

    path.write_bytes(cloudpickle.dumps(obj))
    return str(path)


def unstash(path: str) -> Any:
    from ray import cloudpickle

    return cloudpickle.loads(Path(path).read_bytes())
