"""A dedup step's reduce in tasks: pair search, connected components and keep choice.

The driver of a Ray run sees only counts and folder paths. Every row of the run's population
(the samples that survive the filters, in partition order) is a vertex named by its position
in that order, so the numbering, like everything else, does not depend on the number of
workers or buckets. Per dedup step, in recipe order:

1. Pairs (one task per bucket of keys): the step's shuffle rows that share keys meet, rows an
   earlier step dropped are left out, and the candidate pairs found (checked where the step
   checks pairs) are written as edges in both directions, hash-partitioned by vertex.
2. Components: rounds of large-star and small-star (Kiveris et al., "Connected Components in
   MapReduce and Beyond", 2014), one task per bucket of vertices in each. A round only rewires
   edges within a component, and the components are found when every vertex is either a star
   centre (all its neighbours larger) or a leaf with one smaller neighbour, its centre: the
   component's smallest vertex. Chains of length n take O(log n) rounds.
3. Attach (one task per group of consecutive partitions): each vertex of a component gets what
   the keep choice reads (sample id, rank, anchor, kind, synthetic depth, the step's resolve
   columns), routed by component. The partition's other live rows in scope are kept, with no
   cluster. A step that decides over all its samples as one group (a classifier's top share)
   has no pairs: every live row goes to one keep-choice task, a worker, not the driver.
4. Keep choice (one task per bucket of components): the step's own `resolve_labels` over whole
   components, rows in population order, so it decides exactly as in-process. Its decisions
   and clusters are shards for the run's one commit; the rows it drops go, by partition group,
   to the next step's pair search.

Every file is written under a temporary name and renamed, so a retried task overwrites its
own output with the same bytes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from mixline.curation.base import GlobalStep, concat_pairs
from mixline.curation.pipeline import _Decisions

# Runs fn(*args) for each args tuple; returns the results in order (Ray tasks, or a loop).
Runner = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]

MAX_ROUNDS = 200


def serial(fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*a) for a in args]


@dataclass
class Layout:
    """Where a run's partitions are and how vertices map to partitions, groups and buckets."""

    folder: Path
    pop_offsets: np.ndarray  # first vertex of each partition, and the total at the end
    group_parts: np.ndarray  # first partition of each group, and n_parts at the end
    buckets: int
    run_id: str

    @property
    def n_parts(self) -> int:
        return len(self.pop_offsets) - 1

    @property
    def groups(self) -> int:
        return len(self.group_parts) - 1

    @classmethod
    def of(cls, folder: Path, pop_sizes: list[int], buckets: int, run_id: str) -> Layout:
        offsets = np.concatenate([[0], np.cumsum(np.asarray(pop_sizes, dtype=np.int64))]).astype(np.int64)
        n_groups = max(1, min(buckets, len(pop_sizes)))
        bounds = np.array([len(c) for c in np.array_split(np.arange(len(pop_sizes)), n_groups)], dtype=np.int64)
        return cls(folder, offsets, np.concatenate([[0], np.cumsum(bounds)]).astype(np.int64), buckets, run_id)

    def part(self, p: int) -> Path:
        return self.folder / f"part-{p:06d}"

    def parts_of(self, g: int) -> range:
        return range(int(self.group_parts[g]), int(self.group_parts[g + 1]))

    def group_of(self, v: np.ndarray) -> np.ndarray:
        first_vertex = self.pop_offsets[self.group_parts[:-1]]
        return np.searchsorted(first_vertex, v, side="right") - 1

    def bucket_of(self, v: np.ndarray) -> np.ndarray:
        return _mix(v) % np.int64(self.buckets)


def _mix(v: np.ndarray) -> np.ndarray:
    """A vertex's hash, so that buckets get even shares of consecutive ids."""
    with np.errstate(over="ignore"):
        x = v.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return (x >> np.uint64(33)).astype(np.int64)


def key_buckets(rows: pa.Table, buckets: int) -> np.ndarray:
    """The pair-search bucket of each shuffle row, by its key. Keys are hashes already; mixing
    once more spreads small keys (k-means partition numbers)."""
    key = rows.column("key").to_numpy().astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        mixed = (key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return (mixed % np.uint64(buckets)).astype(np.int64)


# -- files ----------------------------------------------------------------------------------------


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write under a temporary name and rename, so a file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    write(tmp)
    os.replace(tmp, path)


def _save_np(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: np.save would add ".npy" to a path
            np.save(fh, arr)

    _atomic(path, write)


def _save_pq(path: Path, table: pa.Table) -> None:
    _atomic(path, lambda tmp: pq.write_table(table, tmp))


def _scatter(rows: np.ndarray | pa.Table, dest: np.ndarray, base: Path, name: str) -> None:
    """Write rows to base/to-J/name for each destination J that gets any."""
    if len(dest) == 0:
        return
    order = np.argsort(dest, kind="stable")
    sd = dest[order]
    cuts = np.flatnonzero(np.diff(sd)) + 1
    for chunk in np.split(order, cuts):
        j = int(dest[chunk[0]])
        if isinstance(rows, pa.Table):
            _save_pq(base / f"to-{j}" / f"{name}.parquet", rows.take(pa.array(chunk)))
        else:
            _save_np(base / f"to-{j}" / f"{name}.npy", rows[chunk])


def _gather_np(folder: Path, width: int) -> np.ndarray:
    files = sorted(folder.glob("*.npy")) if folder.is_dir() else []
    parts = [np.load(f) for f in files]
    return np.concatenate(parts) if parts else np.empty((0, width) if width > 1 else 0, np.int64)


def _gather_pq(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def _dropped(lay: Layout, step: int, g: int) -> np.ndarray:
    """Vertices of group g that the dedup steps before `step` dropped, sorted."""
    parts = [_gather_np(lay.folder / "drop" / f"s{j}" / f"to-{g}", 1) for j in range(step)]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def _member(v: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if not len(sorted_set):
        return np.zeros(len(v), bool)
    at = np.minimum(np.searchsorted(sorted_set, v), len(sorted_set) - 1)
    return sorted_set[at] == v


# -- the tasks ------------------------------------------------------------------------------------

_CFG: dict[str, Any] = {}


def _cfg(path: str) -> dict[str, Any]:
    """The step's configuration, unpickled once per worker process."""
    key = f"{path}:{os.stat(path).st_mtime_ns}"
    if key not in _CFG:
        from mixline.curation.distributed import unstash

        _CFG.clear()
        _CFG[key] = unstash(path)
    return _CFG[key]


def pair_task(cfg_path: str, k: int) -> int:
    """Candidate pairs among bucket k's rows, as edges in both directions by vertex bucket."""
    c = _cfg(cfg_path)
    lay: Layout = c["layout"]
    step: GlobalStep = c["step"]
    i: int = c["index"]
    red = lay.folder / f"reduce-{i}"
    if c["driver_keys"]:
        path = red / "keys" / f"to-{k}" / "driver.parquet"
        rows = pq.read_table(path) if path.exists() else None
    else:
        parts = []
        for g in range(lay.groups):
            dead = _dropped(lay, i, g)
            for p in lay.parts_of(g):
                path = lay.part(p) / f"shuf-{i}-{k}.parquet"
                if not path.exists():
                    continue
                t = pq.read_table(path)
                v = t.column("row").to_numpy() + lay.pop_offsets[p]
                t = t.set_column(t.column_names.index("row"), "row", pa.array(v, pa.int64()))
                if len(dead):
                    t = t.filter(pa.array(~_member(v, dead)))
                parts.append(t)
        rows = pa.concat_tables(parts) if parts else None
    if rows is None or rows.num_rows == 0:
        return 0
    a, b = step.task_pairs(rows.sort_by("row"))
    return _write_edges(lay, red, a, b, f"from-{k}")


def _write_edges(lay: Layout, red: Path, a: np.ndarray, b: np.ndarray, name: str) -> int:
    """Pairs as round 0's edges, both directions, by vertex bucket; returns how many pairs."""
    ok = a != b
    a, b = a[ok], b[ok]
    edges = np.stack([np.concatenate([a, b]), np.concatenate([b, a])], axis=1).astype(np.int64)
    _scatter(edges, lay.bucket_of(edges[:, 0]), red / "cc" / "r0", name)
    return int(len(a))


def _components(cfg: str, buckets: int, run: Runner, name: str) -> int:
    """Large-star and small-star rounds until settled; returns the round whose labels are final."""
    r = 0
    while sum(run(large_star, [(cfg, r, k) for k in range(buckets)])):
        run(small_star, [(cfg, r, k) for k in range(buckets)])
        r += 1
        if r > MAX_ROUNDS:
            raise RuntimeError(f"{name}: connected components did not settle in {MAX_ROUNDS} rounds")
    return r


def _grouped(cfg_path: str, stage: str, k: int) -> tuple[Layout, Path, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Bucket k's edges of one round's stage, without repeats, sorted and grouped by their
    first end: the layout, the components folder, both ends, and each group's start and size."""
    c = _cfg(cfg_path)
    lay: Layout = c["layout"]
    cc = lay.folder / f"reduce-{c['index']}" / "cc"
    e = _gather_np(cc / stage / f"to-{k}", 2)
    if not len(e):
        return None
    e = np.unique(e, axis=0)
    u, v = e[:, 0], e[:, 1]
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
    return lay, cc, u, v, starts, np.diff(np.concatenate([starts, [len(u)]]))


def large_star(cfg_path: str, r: int, k: int) -> int:
    """Round r's large-star over bucket k's vertices. Writes each vertex's smallest neighbour
    (its label, once the components are found) and the small-star input; returns how many
    vertices are not yet a star centre or leaf."""
    got = _grouped(cfg_path, f"r{r}", k)
    if got is None:
        return 0
    lay, cc, u, nb, starts, deg = got
    verts = u[starts]
    low = nb[starts]  # the smallest neighbour
    m = np.minimum(verts, low)
    settled = (low > verts) | ((deg == 1) & (low < verts))
    _scatter(np.stack([verts, m], axis=1), lay.group_of(verts), cc / f"l{r}", f"from-{k}")
    mu = np.repeat(m, deg)
    up = nb > u
    out = np.stack([nb[up], mu[up]], axis=1)  # keyed by the larger end
    _scatter(out, lay.bucket_of(out[:, 0]), cc / f"s{r}", f"from-{k}")
    return int((~settled).sum())


def small_star(cfg_path: str, r: int, k: int) -> int:
    """Round r's small-star over bucket k's vertices: each vertex and its smaller neighbours
    become a star around the smallest; the edges go to round r+1's large-star."""
    got = _grouped(cfg_path, f"s{r}", k)
    if got is None:
        return 0
    lay, cc, u, w, starts, deg = got
    verts = u[starts]
    m = w[starts]  # every value is below its key, so the smallest value is the star's centre
    mu = np.repeat(m, deg)
    leaves = np.concatenate([verts[verts != m], w[w != mu]])
    centre = np.concatenate([m[verts != m], mu[w != mu]])
    edges = np.stack([np.concatenate([leaves, centre]), np.concatenate([centre, leaves])], axis=1)
    _scatter(edges, lay.bucket_of(edges[:, 0]), cc / f"r{r + 1}", f"from-{k}")
    return int(len(leaves))


DECISIONS_SCHEMA = pa.schema([("run_id", pa.string()), ("sample_id", pa.string()), ("step", pa.string()),
                              ("verdict", pa.string()), ("reason", pa.string()), ("score", pa.float64())])


def attach(cfg_path: str, r: int, g: int) -> int:
    """Group g's vertices in components get what the keep choice reads, routed by component;
    its other live rows in scope are kept. Returns how many were kept that way."""
    c = _cfg(cfg_path)
    lay: Layout = c["layout"]
    step: GlobalStep = c["step"]
    i: int = c["index"]
    red = lay.folder / f"reduce-{i}"
    whole = step.whole_population
    lab = np.empty((0, 2), np.int64) if whole else _gather_np(red / "cc" / f"l{r}" / f"to-{g}", 2)
    lab = lab[np.argsort(lab[:, 0])] if len(lab) else lab
    lv = lab[:, 0] if len(lab) else np.empty(0, np.int64)
    dead = _dropped(lay, i, g)
    kept_ids: list[pa.Array] = []
    rows: list[pa.Table] = []
    for p in lay.parts_of(g):
        pos = np.load(lay.part(p) / f"pos-{i}.npy")
        if not len(pos):
            continue
        pop = pq.read_table(lay.part(p) / "pop.parquet")
        v = pos + lay.pop_offsets[p]
        anchor = pop.column("anchor").to_numpy(zero_copy_only=False)[pos]
        live = ~_member(v, dead)
        graph = live if whole else _member(v, lv)  # in pairs, so live
        single = ~graph & ~anchor & live
        if single.any():
            kept_ids.append(pop.column("sample_id").take(pa.array(pos[single])).combine_chunks())
        sel = np.flatnonzero(graph)
        if not len(sel):
            continue
        feat = pq.read_table(lay.part(p) / f"feat-{i}.parquet", columns=["sample_id", *step.resolve_columns()])
        t = feat.take(pa.array(sel))
        attrs = pop.take(pa.array(pos[sel]))
        for col in ("rank", "anchor", "kind", "synth_depth"):
            t = t.append_column(col, attrs.column(col))
        t = t.append_column("vertex", pa.array(v[sel], pa.int64()))
        label = np.zeros(len(sel), np.int64) if whole else lab[np.searchsorted(lv, v[sel]), 1]
        t = t.append_column("label", pa.array(label, pa.int64()))
        rows.append(t)
    n_kept = sum(len(x) for x in kept_ids)
    if n_kept:
        ids = pa.concat_arrays(kept_ids)
        _save_pq(red / "out" / f"kept-{g}.parquet", pa.table({
            "run_id": pa.array([lay.run_id] * n_kept, pa.string()), "sample_id": ids,
            "step": pa.array([step.step_name] * n_kept, pa.string()), "verdict": pa.array(["kept"] * n_kept, pa.string()),
            "reason": pa.nulls(n_kept, pa.string()), "score": pa.nulls(n_kept, pa.float64())}, schema=DECISIONS_SCHEMA))
    if rows:
        t = pa.concat_tables(rows)
        _scatter(t, lay.bucket_of(t.column("label").to_numpy()), red / "att", f"from-{g}")
    return n_kept


class Collect:
    """A sink that keeps a task's rows in memory until they are written as shards."""

    def __init__(self) -> None:
        self.tables: dict[str, list[pa.Table]] = {}

    def __call__(self, table: str, data: pa.Table) -> None:
        self.tables.setdefault(table, []).append(data)


def keep_choice(cfg_path: str, k: int) -> int:
    """The kept copy of each component in bucket k, by the step's own rule; returns how many
    rows it drops."""
    c = _cfg(cfg_path)
    lay: Layout = c["layout"]
    step: GlobalStep = c["step"]
    i: int = c["index"]
    red = lay.folder / f"reduce-{i}"
    rows = _gather_pq(red / "att" / f"to-{k}")
    if rows is None or rows.num_rows == 0:
        return 0
    rows = rows.sort_by("vertex")
    anchors = rows.column("anchor").to_numpy(zero_copy_only=False).astype(bool)
    feats = rows.select(["sample_id", *step.resolve_columns()])
    v, clusters = step.resolve_labels(
        feats, rows.column("label").to_numpy(), rows.column("rank").to_numpy().astype(np.int64), anchors,
        rows.column("kind").to_pylist(), rows.column("synth_depth").to_numpy().astype(np.int64))
    sink = Collect()
    rec = _Decisions(sink, lay.run_id)
    rec.add(step.step_name, feats.column("sample_id"), v, only=~anchors)
    rec.clusters(step.name.removesuffix("_dedup"), clusters)
    for name, tabs in sink.tables.items():
        _save_pq(red / "out" / f"{name}-{k}.parquet", pa.concat_tables(tabs))
    gone = rows.column("vertex").to_numpy()[~v.keep]
    _scatter(gone, lay.group_of(gone), lay.folder / "drop" / f"s{i}", f"from-{k}")
    return int(len(gone))


# -- the driver's side ----------------------------------------------------------------------------


def driver_keys(lay: Layout, i: int, step: GlobalStep) -> None:
    """For a step whose keys need every sample at once (semantic k-means), the live rows'
    features are read here and keyed; the pair search then runs in tasks as for any step."""
    feats, verts = [], []
    for g in range(lay.groups):
        dead = _dropped(lay, i, g)
        for p in lay.parts_of(g):
            pos = np.load(lay.part(p) / f"pos-{i}.npy")
            if not len(pos):
                continue
            v = pos + lay.pop_offsets[p]
            live = ~_member(v, dead)
            feat = pq.read_table(lay.part(p) / f"feat-{i}.parquet")
            feats.append(feat.filter(pa.array(live)))
            verts.append(v[live])
    if not feats:
        return
    sub = pa.concat_tables(feats)
    if sub.num_rows == 0:
        return
    rows = step.task_rows(sub)
    vert = np.concatenate(verts)[rows.column("row").to_numpy()]
    rows = rows.set_column(rows.column_names.index("row"), "row", pa.array(vert, pa.int64()))
    _scatter(rows, key_buckets(rows, lay.buckets), lay.folder / f"reduce-{i}" / "keys", "driver")


def reduce_step(lay: Layout, i: int, step: GlobalStep, run: Runner, stash: Callable[[Path, Any], str]) -> dict[str, int]:
    """One dedup step's reduce; returns its counts. Its decisions and clusters are under
    reduce-{i}/out, and the rows it drops under drop/s{i}."""
    red = lay.folder / f"reduce-{i}"
    shutil.rmtree(red, ignore_errors=True)
    shutil.rmtree(lay.folder / "drop" / f"s{i}", ignore_errors=True)
    red.mkdir(parents=True)
    if step.shuffle_needs_all:
        driver_keys(lay, i, step)
    cfg = stash(red / "step.pkl", {"layout": lay, "step": step, "index": i, "driver_keys": step.shuffle_needs_all})
    buckets = list(range(lay.buckets))
    if step.whole_population:  # one group: attach sends every live row to one task
        kept = sum(run(attach, [(cfg, 0, g) for g in range(lay.groups)]))
        dropped = sum(run(keep_choice, [(cfg, k) for k in buckets]))
        return {"pairs": 0, "rounds": 0, "kept_alone": kept, "dropped": dropped}
    pairs = sum(run(pair_task, [(cfg, k) for k in buckets]))
    r = _components(cfg, lay.buckets, run, step.step_name)
    kept = sum(run(attach, [(cfg, r, g) for g in range(lay.groups)]))
    dropped = sum(run(keep_choice, [(cfg, k) for k in buckets]))
    return {"pairs": pairs, "rounds": r + 1, "kept_alone": kept, "dropped": dropped}


def out_files(lay: Layout, n_steps: int, name: str) -> list[str]:
    """The reduce's shards of one kind (decisions, kept, clusters), for registration."""
    return [str(f) for i in range(n_steps) for f in sorted((lay.folder / f"reduce-{i}" / "out").glob(f"{name}-*.parquet"))]


def components_in_tasks(n: int, a: np.ndarray, b: np.ndarray, folder: Path, buckets: int,
                        run: Runner = serial) -> np.ndarray:
    """Component labels (smallest member) of n vertices from edges, by the rounds above; for
    tests against union-find."""
    from mixline.curation.distributed import stash

    lay = Layout.of(folder, [n], buckets, "cc")
    red = folder / "reduce-0"
    shutil.rmtree(red, ignore_errors=True)
    _write_edges(lay, red, *concat_pairs([a], [b]), "from-0")
    r = _components(stash(folder / "cc.pkl", {"layout": lay, "index": 0}), buckets, run, "components")
    labels = np.arange(n, dtype=np.int64)
    lab = _gather_np(red / "cc" / f"l{r}" / "to-0", 2)
    if len(lab):
        labels[lab[:, 0]] = lab[:, 1]
    return labels
