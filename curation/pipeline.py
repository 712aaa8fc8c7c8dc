"""Runs a recipe over a selection of the store, recording every decision as a row.

Filters stream over batches; dedup steps compute per-sample features in the same pass
(map) and decide over all of them at the end (reduce). Samples kept by earlier runs join
the reduce as anchors, so new samples are deduplicated against everything kept before.
Counters are derived from the decision rows, never kept alongside them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mixline.curation.base import Clusters, Filter, GlobalStep, Rewrite, Rewriter, Verdicts
from mixline.curation.recipe import Recipe
from mixline.store.select import not_canary_carrier, scope
from mixline.store.store import Rollback, Store, annotation_time

Progress = Callable[[int], None]


@dataclass
class Context:
    """What steps may read while preparing: the store and the run."""

    store: Store
    run_id: str


@dataclass
class CurateResult:
    run_id: str
    selected: int = 0
    kept: int = 0
    dropped: int = 0
    rewritten: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    # A dry run writes nothing; it reports keep rates per kind and source, and examples per reason.
    dry_run: bool = False
    by_kind: list[dict[str, Any]] = field(default_factory=list)
    by_source: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run_id": self.run_id, "selected": self.selected, "kept": self.kept,
                               "dropped": self.dropped, "rewritten": self.rewritten, "steps": self.steps}
        if self.dry_run:
            out.update(dry_run=True, by_kind=self.by_kind, by_source=self.by_source, examples=self.examples)
        return out


Sink = Callable[[str, pa.Table], None]


class _Decisions:
    """Decision, cluster and annotation rows of a run, handed in bulk per batch to a sink:
    the store itself (in-process), or Parquet shards that the driver registers (Ray)."""

    def __init__(self, sink: Sink, run_id: str) -> None:
        self.sink = sink
        self.run_id = run_id
        self.langs: list[tuple[str, str | None]] = []

    def add(self, step: str, ids: pa.Array | list[str], v: Verdicts, only: np.ndarray | None = None,
            rewritten: set[int] | None = None) -> None:
        ids_list = ids.to_pylist() if isinstance(ids, pa.Array | pa.ChunkedArray) else list(ids)
        idx = np.arange(len(ids_list)) if only is None else np.flatnonzero(only)
        if not len(idx):
            return
        keep = v.keep[idx]
        scores = [None if x != x else x for x in v.scores[idx].tolist()] if v.scores is not None else [None] * len(idx)
        rewritten = rewritten or set()
        self.sink("decisions", pa.table({
            "run_id": pa.array([self.run_id] * len(idx), pa.string()),
            "sample_id": pa.array([ids_list[i] for i in idx.tolist()], pa.string()),
            "step": pa.array([step] * len(idx), pa.string()),
            "verdict": pa.array(["rewritten" if i in rewritten else "kept" if k else "dropped"
                                 for i, k in zip(idx.tolist(), keep.tolist(), strict=True)], pa.string()),
            "reason": pa.array([v.reasons[i] for i in idx.tolist()], pa.string()),
            "score": pa.array(scores, pa.float64()),
        }))

    def clusters(self, method: str, c: Clusters) -> None:
        if c.sample_ids:
            self.sink("clusters", pa.table({
                "run_id": [self.run_id] * len(c.sample_ids), "sample_id": c.sample_ids,
                "cluster_id": c.cluster_ids, "method": [method] * len(c.sample_ids), "kept": c.kept,
            }))


CHILDREN_SCHEMA = pa.schema([("child_id", pa.string()), ("parent_id", pa.string()), ("text", pa.string()),
                             ("messages", pa.string()), ("content_hash", pa.string())])


class StoreSink:
    """Writes a run's rows into the store. Scrubbed or rewritten children copy their parent's
    source, kind and depth from the store; edges get their integer keys."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def __call__(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        if table == "children":
            self.store.con.register("_children", data)
            try:
                self.store.execute(CHILDREN_SQL.format(src="_children"), [self.run_id])
            finally:
                self.store.con.unregister("_children")
        elif table == "edges":
            self.store.add_edges(data)
        else:
            self.store.append(table, data)


CHILDREN_SQL = """
    INSERT INTO sample_rows (sample_id, source_id, source, kind, text, messages, content_hash, lang, domain,
                         n_chars, synth_depth, created_run_id)
    SELECT DISTINCT ON (c.child_id) c.child_id, p.source_id, p.source, p.kind, c.text, c.messages, c.content_hash,
           p.lang, p.domain, length(c.text), p.synth_depth, ?
    FROM {src} c JOIN samples p ON p.sample_id = c.parent_id
    WHERE NOT EXISTS (SELECT 1 FROM samples x WHERE x.sample_id = c.child_id)"""


@dataclass
class Plan:
    """A run's selection, materialised as the temp table `_sel`, and how steps read it."""

    recipe: Recipe
    steps: list[Any]
    filters: list[Filter | Rewriter]
    globals_: list[GlobalStep]
    where_col: dict[int, str]
    total: int

    def batches(self) -> range:
        return range(0, self.total, self.recipe.batch_size)

    # A plan travels to Ray workers pickled: its scope columns are keyed by step position
    # there, as object ids do not survive the trip.
    def __getstate__(self) -> dict[str, Any]:
        pos = {id(s): i for i, s in enumerate(self.steps)}
        return {**self.__dict__, "where_col": {pos[k]: v for k, v in self.where_col.items()}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.where_col = {id(self.steps[i]): v for i, v in state["where_col"].items()}


def select(store: Store, recipe: Recipe, steps: list[Any], where: str | None, new_only: bool,
           text: bool = True) -> Plan:
    """Materialise the run's selection (new samples plus earlier runs' kept samples as dedup
    anchors). Without `text`, the texts stay in the store (a Ray run copies them straight to
    its input partitions), so the driver's memory does not grow with the corpus's bytes."""
    filters = [s for s in steps if isinstance(s, Filter | Rewriter)]
    globals_ = [s for s in steps if isinstance(s, GlobalStep)]
    pred = scope(store, where, "s")
    # The guard is outside the user's selection, which is a semi-join (see store/select.py).
    cond = f"s.kind <> 'eval' AND {not_canary_carrier('s')} AND {pred}"
    if new_only:
        cond += " AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.sample_id = s.sample_id)"
    extra = sorted({c for s in steps for c in s.columns} - {"url", "prompt_text", "domain"})
    derived = ", (SELECT any_value(o.url) FROM sample_origins o WHERE o.sample_id = s.sample_id) AS url" \
        if any("url" in s.columns for s in steps) else ""
    if any("prompt_text" in s.columns for s in steps):
        # The text a generated sample was prompted with (or rewritten from), for copy checks.
        derived += """, (SELECT any_value(p.text) FROM edges e JOIN samples p ON p.sample_id = e.parent_id
                     WHERE e.child_key = ('0x' || substr(s.sample_id, 1, 16))::UBIGINT AND e.child_id = s.sample_id
                       AND e.relation IN ('prompted_by', 'generated_from')) AS prompt_text"""
    # Each scoped step's `where`, evaluated once per sample as a semi-join column.
    scope_cols = {i: f"_scope_{i}" for i, st_ in enumerate(steps) if st_.where is not None}
    derived += "".join(f", {scope(store, steps[i].where, 's')} AS {c}" for i, c in scope_cols.items())
    where_col = {id(steps[i]): c for i, c in scope_cols.items()}
    anchors_sql = ""
    if globals_:
        anchors_sql = f"""UNION ALL SELECT st.sample_id, TRUE FROM sample_status st JOIN samples s USING (sample_id)
            WHERE st.status = 'kept' AND {not_canary_carrier('s')} AND NOT ({cond})"""
    # Materialised first: a streaming result would be closed by the writes below.
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE _sel AS
        WITH pick AS (SELECT s.sample_id, FALSE AS anchor FROM samples s WHERE {cond} {anchors_sql})
        SELECT s.sample_id, {'s.text, ' if text else ''}s.kind, s.domain, s.synth_depth, pick.anchor{''.join(', s.' + c for c in extra)}{derived},
               row_number() OVER (ORDER BY {recipe.order_sql()}) AS rank,
               row_number() OVER (ORDER BY s.sample_id) AS _page
        FROM samples s JOIN pick USING (sample_id) LEFT JOIN runs r ON r.run_id = s.created_run_id""")
    total = int(store.scalar("SELECT count(*) FROM _sel"))
    return Plan(recipe, steps, filters, globals_, where_col, total)


def read_batch(store: Store, plan: Plan, lo: int) -> pa.Table:
    return store.execute("SELECT * EXCLUDE (_page) FROM _sel WHERE _page > ? AND _page <= ? ORDER BY _page",
                         [lo, lo + plan.recipe.batch_size]).to_arrow_table()


LANG_SCHEMA = pa.schema([("sample_id", pa.string()), ("lang", pa.string()), ("script", pa.string()),
                         ("lang_score", pa.float64()), ("lang_mix", pa.string())])


def lang_table(ids: pa.Array | pa.ChunkedArray, annotations: dict[str, list[Any]]) -> pa.Table:
    n = len(ids)
    return pa.table({"sample_id": ids, **{c: pa.array(annotations.get(c, [None] * n), LANG_SCHEMA.field(c).type)
                                          for c in ("lang", "script", "lang_score", "lang_mix")}}, schema=LANG_SCHEMA)


@dataclass
class BatchResult:
    """What one batch leaves for the reduce: its surviving rows (new and anchors) and, per
    global step, the positions in scope and their features."""

    selected: int
    alive: pa.Table  # sample_id, rank, anchor, kind, synth_depth
    positions: list[np.ndarray]
    features: list[pa.Table]
    rows: int = 0  # rows of the batch read (new and anchors)


POP_COLUMNS = ["sample_id", "rank", "anchor", "kind", "synth_depth"]


class Timer:
    """Seconds per step of a run (decide, or map and reduce for a global step), summed over
    batches, and for the run's own work: reading batches, writing rows, the final update."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.docs: dict[str, int] = {}

    def add(self, name: str, t0: float, docs: int = 0) -> float:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - t0
        self.docs[name] = self.docs.get(name, 0) + docs
        return now

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"seconds": round(v, 4), "docs": self.docs[k]} for k, v in self.seconds.items()}


def process_batch(plan: Plan, batch: pa.Table, rec: _Decisions, timer: Timer | None = None) -> BatchResult:
    """Filters and rewriters over one batch, then the global steps' map phase. Every row it
    writes goes through `rec` and its sink, so it runs the same in-process and on a worker."""
    timer = timer or Timer()
    anchor = batch.column("anchor").to_numpy(zero_copy_only=False)
    new = batch.filter(pc.invert(batch.column("anchor")))
    selected = new.num_rows
    for f in plan.filters:
        if new.num_rows == 0:
            break
        t0 = time.perf_counter()
        mask = f.in_scope(new, plan.where_col.get(id(f)))
        if not mask.any():
            continue
        inside = new if mask.all() else new.filter(pa.array(mask))
        outside = None if mask.all() else new.filter(pa.array(~mask))
        if isinstance(f, Rewriter):
            inside = _apply_rewriter(f, inside, rec)
            timer.add(f.step_name, t0, len(mask))
        else:
            v = f.decide(inside)
            _drain(f, rec)
            t0 = timer.add(f.step_name, t0, inside.num_rows)
            rec.add(f.step_name, inside.column("sample_id"), v)
            if "lang" in v.annotations:
                rec.sink("langs", lang_table(inside.column("sample_id"), v.annotations))
                # The steps after this one read the language just found.
                for col in ("lang", "script"):
                    if col in inside.column_names and col in v.annotations:
                        inside = inside.set_column(inside.column_names.index(col), col,
                                                   pa.array(v.annotations[col], pa.string()))
            inside = inside.filter(pa.array(v.keep))
            timer.add("(decision rows)", t0)
        new = inside if outside is None else pa.concat_tables([outside, inside])
    alive = pa.concat_tables([batch.filter(pa.array(anchor)), new]) if anchor.any() else new
    positions, features = [], []
    for g in plan.globals_:
        t0 = time.perf_counter()
        gmask = g.in_scope(alive, plan.where_col.get(id(g)))
        positions.append(np.flatnonzero(gmask))
        features.append(g.features(alive if gmask.all() else alive.filter(pa.array(gmask))))
        _drain(g, rec)
        timer.add(g.step_name, t0, int(gmask.sum()))
    return BatchResult(selected, alive.select(POP_COLUMNS), positions, features, batch.num_rows)


def _drain(step: Any, rec: _Decisions) -> None:
    """Rows a step made for side tables (a classifier's score cache) go to the run's sink."""
    drain = getattr(step, "drain_side_rows", None)
    if drain is not None:
        for table, rows in drain():
            rec.sink(table, rows)


@dataclass
class Population:
    """Every batch's surviving rows in batch order, and the global steps' features, as the
    reduce sees them."""

    ids: list[str]
    rank: np.ndarray
    anchors: np.ndarray
    kinds: list[str]
    depths: np.ndarray
    positions: list[np.ndarray]  # per global step: positions in the population
    features: list[pa.Table | None]

    @classmethod
    def gather(cls, results: list[BatchResult], n_globals: int) -> Population:
        pop = pa.concat_tables([r.alive for r in results]) if results else pa.table({c: [] for c in POP_COLUMNS})
        sizes = np.array([r.alive.num_rows for r in results], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1] if len(sizes) else np.zeros(0, np.int64)
        positions, features = [], []
        for i in range(n_globals):
            parts = [off + r.positions[i] for off, r in zip(offsets.tolist(), results, strict=True)]
            positions.append(np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64))
            tabs = [r.features[i] for r in results]
            features.append(pa.concat_tables(tabs) if tabs else None)
        return cls(pop.column("sample_id").to_pylist(), np.asarray(pop.column("rank").to_pylist(), dtype=np.int64),
                   np.asarray(pop.column("anchor").to_pylist(), dtype=bool), pop.column("kind").to_pylist(),
                   np.asarray(pop.column("synth_depth").to_pylist(), dtype=np.int64), positions, features)


def reduce_globals(plan: Plan, pop: Population, rec: _Decisions, timer: Timer | None = None) -> None:
    """The global steps' reduce, in recipe order; a sample one step drops is not seen by the next.
    (A Ray run does the same in tasks: curation/distributed_reduce.py.)"""
    timer = timer or Timer()
    live = np.ones(len(pop.ids), dtype=bool)
    for i, g in enumerate(plan.globals_):
        t0 = time.perf_counter()
        table = pop.features[i]
        if table is None or table.num_rows == 0:
            continue
        pos = pop.positions[i]
        alive_rows = np.flatnonzero(live[pos])
        idx = pos[alive_rows]
        sub = table.take(pa.array(alive_rows))
        kinds = [pop.kinds[j] for j in idx.tolist()]
        v, clusters = g.reduce(sub, pop.rank[idx], pop.anchors[idx], kinds, pop.depths[idx])
        t0 = timer.add(g.step_name, t0)
        rec.add(g.step_name, sub.column("sample_id"), v, only=~pop.anchors[idx])
        rec.clusters(g.name.removesuffix("_dedup"), clusters)
        live[idx[~v.keep]] = False
        timer.add("(decision rows)", t0)


def finish(store: Store, plan: Plan, run: Any, selected: int, langs: pa.Table | str | None,
           prints: list[tuple[str, str]] | str) -> CurateResult:
    """Annotations and fingerprints, then the run's counters from its decision rows.

    `langs` and `prints` are rows, or a SQL relation over the shards a Ray run wrote (so they
    go from files to the store without passing through the driver's memory)."""
    store.execute("DROP TABLE IF EXISTS _sel")
    if isinstance(prints, str):
        store.execute(f"INSERT INTO pii_fingerprints (fingerprint, entity_type, run_id) "
                      f"SELECT fingerprint, entity_type, ? FROM {prints}", [run.run_id])
    elif prints:
        store.append("pii_fingerprints", pa.table({
            "fingerprint": [a for a, _ in prints], "entity_type": [b for _, b in prints],
            "run_id": [run.run_id] * len(prints)}))
    if isinstance(langs, str) or (langs is not None and langs.num_rows):
        src = langs if isinstance(langs, str) else "_langs"
        if not isinstance(langs, str):
            store.con.register("_langs", langs)
        try:
            # The samples themselves, and the scrubbed children this run wrote from them: rows of
            # the insert-only annotations, so an ingest that commits meanwhile does not conflict.
            store.execute(f"""INSERT INTO sample_annotations (sample_id, run_id, kind, annotated_at, lang, script,
                                                            lang_score, lang_mix)
                             SELECT sample_id, ?, 'language', ?, lang, script, lang_score, lang_mix::JSON
                             FROM (SELECT sample_id, lang, script, lang_score, lang_mix FROM {src}
                                   UNION ALL
                                   SELECT e.child_id, l.lang, l.script, l.lang_score, l.lang_mix
                                   FROM edges e JOIN {src} l ON l.sample_id = e.parent_id
                                   WHERE e.run_id = ? AND e.relation = 'scrubbed_from')""",
                          [run.run_id, annotation_time(), run.run_id])
        finally:
            if not isinstance(langs, str):
                store.con.unregister("_langs")
    result = summarize(store, run.run_id, selected)
    run.stats.update({"selected": result.selected, "kept": result.kept, "dropped": result.dropped,
                      "rewritten": result.rewritten,
                      # Counts per step and drop reason, for `runs` and the OpenLineage run facet.
                      "steps": {s["step"]: {"kept": s["kept"], "dropped": s["dropped"], "reasons": s["reasons"]}
                                for s in result.steps}})
    return result


def curate(store: Store, recipe: Recipe | None = None, where: str | None = None, *, new_only: bool = False,
           progress: Progress | None = None, dry_run: bool = False, examples: int = 3,
           executor: Any = None) -> CurateResult:
    """Run a recipe (the built-in default when None) over `--where` samples, as one run.

    With `dry_run`, the run is computed in full and then rolled back: the store is left as it
    was (no decisions, no scrubbed children, no runs row), and the result also carries keep
    rates per kind and source and up to `examples` PII-scrubbed excerpts per drop reason.
    With `executor` (a `curation.distributed.RayExecutor`), batches and the dedup pair search
    run on Ray; decisions, ids and clusters are the same as in-process.
    """
    memory = getattr(executor, "driver_memory", None)
    try:
        with memory(store) if memory is not None else contextlib.nullcontext():
            return _curate(store, recipe, where, new_only, progress, dry_run, examples, executor)
    except BaseException as exc:
        if executor is not None and hasattr(executor, "abort"):
            executor.abort()  # the run wrote nothing, so files it placed for the store go too
        if not isinstance(exc, Rollback):
            raise
        result: CurateResult = exc.payload
        return result


def _curate(store: Store, recipe: Recipe | None, where: str | None, new_only: bool,
            progress: Progress | None, dry_run: bool, examples: int, executor: Any) -> CurateResult:
    recipe = recipe or Recipe.default()
    steps = recipe.build()
    config = {"recipe": recipe.config(), "where": where, "new_only": new_only}
    with store.run("curate", f"curate_{recipe.name}", config) as run:
        ctx = Context(store, run.run_id)
        for s in steps:
            s.prepare(ctx)
        timer = Timer()
        t0 = time.perf_counter()
        plan = select(store, recipe, steps, where, new_only, text=executor is None)
        timer.add("(select)", t0)
        if executor is not None:
            selected, langs, prints = executor.run(store, plan, run.run_id, progress)
        else:
            sink = StoreSink(store, run.run_id)
            rec = _Decisions(sink, run.run_id)
            langs_parts: list[pa.Table] = []
            rec.sink = lambda t, d: langs_parts.append(d) if t == "langs" else sink(t, d)
            results = []
            for lo in plan.batches():
                t0 = time.perf_counter()
                batch = read_batch(store, plan, lo)
                timer.add("(read batches)", t0)
                results.append(process_batch(plan, batch, rec, timer))
                if progress is not None:
                    progress(batch.num_rows)
            selected = sum(r.selected for r in results)
            t0 = time.perf_counter()
            pop = Population.gather(results, len(plan.globals_))
            timer.add("(gather)", t0)
            reduce_globals(plan, pop, rec, timer=timer)
            langs = pa.concat_tables(langs_parts) if langs_parts else None
            prints = [p for f in plan.filters for p in (getattr(f, "fingerprints", None) or [])]
        if executor is not None:
            run.stats["executor"] = {"name": "ray", **executor.stats}
        if dry_run:
            if executor is not None:
                executor.cleanup()
            raise Rollback(dry_run_report(store, run.run_id, selected, examples))
        t0 = time.perf_counter()
        result = finish(store, plan, run, selected, langs, prints)
        timer.add("(finish)", t0)
        # Where the run's time went, per step (in-process runs), for `mixline runs` and bench_recipe.py.
        run.stats["timings"] = timer.as_dict()
    if executor is not None:
        executor.cleanup()  # only after the commit: a failed run keeps its shards to resume from
    return result


def _apply_rewriter(step: Rewriter, batch: pa.Table, rec: _Decisions) -> pa.Table:
    """Record a rewriter's decisions; children replace their parents in the batch."""
    from mixline.store.ids import content_id

    rows = step.rewrite(batch).rows
    ids = batch.column("sample_id").to_pylist()
    keep = np.array([not isinstance(r, str) for r in rows], dtype=bool)
    reasons = [r if isinstance(r, str) else (r.reason if isinstance(r, Rewrite) else None) for r in rows]
    changed = [i for i, r in enumerate(rows) if isinstance(r, Rewrite)]
    rec.add(step.step_name, ids, Verdicts(keep, reasons), rewritten=set(changed))
    if changed:
        children = []
        redactions: dict[str, list[Any]] = {k: [] for k in ("sample_id", "run_id", "entity_type", "start", "end", "detector", "policy")}
        for i in changed:
            r = rows[i]
            assert isinstance(r, Rewrite)
            child = content_id(r.messages if r.messages is not None else r.text)
            children.append({"child_id": child, "parent_id": ids[i], "text": r.text, "messages": r.messages,
                             "content_hash": content_id(r.text)})
            for span, policy in r.spans:
                for k, v in (("sample_id", child), ("run_id", rec.run_id), ("entity_type", span.entity_type),
                             ("start", span.start), ("end", span.end), ("detector", span.detector), ("policy", policy)):
                    redactions[k].append(v)
        rec.sink("children", pa.Table.from_pylist(children, schema=CHILDREN_SCHEMA))
        rec.sink("edges", pa.table({"child_id": [c["child_id"] for c in children],
                                    "parent_id": [c["parent_id"] for c in children],
                                    "relation": [step.relation] * len(children), "run_id": [rec.run_id] * len(children),
                                    "step": [step.step_name] * len(children)}))
        rec.sink("redactions", pa.table({
            "sample_id": pa.array(redactions["sample_id"], pa.string()), "run_id": pa.array(redactions["run_id"], pa.string()),
            "entity_type": pa.array(redactions["entity_type"], pa.string()), "start": pa.array(redactions["start"], pa.int32()),
            "end": pa.array(redactions["end"], pa.int32()), "detector": pa.array(redactions["detector"], pa.string()),
            "policy": pa.array(redactions["policy"], pa.string())}))
        child_ids = [c["child_id"] for c in children]
        rec.add(step.step_name, child_ids, Verdicts(np.ones(len(child_ids), dtype=bool), [None] * len(child_ids)))
        # Children take their parents' places in the batch.
        cols = {name: batch.column(name).to_pylist() for name in batch.column_names}
        for n, i in enumerate(changed):
            cols["sample_id"][i] = children[n]["child_id"]
            cols["text"][i] = children[n]["text"]
            if "messages" in cols:
                cols["messages"][i] = children[n]["messages"]
        batch = pa.table(cols, schema=batch.schema)
    return batch.filter(pa.array(keep))


def summarize(store: Store, run_id: str, selected: int) -> CurateResult:
    """Counters of a curation run, derived from its decision rows."""
    res = CurateResult(run_id, selected)
    res.dropped = int(store.scalar("SELECT count(DISTINCT sample_id) FROM decisions WHERE run_id = ? AND verdict = 'dropped'", [run_id]))
    res.rewritten = int(store.scalar("SELECT count(DISTINCT sample_id) FROM decisions WHERE run_id = ? AND verdict = 'rewritten'", [run_id]))
    res.kept = selected - res.dropped
    for row in store.rows(
        """SELECT step, count(*) FILTER (WHERE verdict = 'kept') AS kept,
                  count(*) FILTER (WHERE verdict = 'dropped') AS dropped,
                  count(*) FILTER (WHERE verdict = 'rewritten') AS rewritten
           FROM decisions WHERE run_id = ? GROUP BY step ORDER BY min(rowid)""", [run_id]):
        reasons = store.rows(
            """SELECT split_part(reason, ':', 1) AS reason, count(*) AS n FROM decisions
               WHERE run_id = ? AND step = ? AND verdict = 'dropped' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""",
            [run_id, row["step"]])
        row["reasons"] = {r["reason"]: r["n"] for r in reasons}
        res.steps.append(row)
    return res


def dry_run_report(store: Store, run_id: str, selected: int, examples: int) -> CurateResult:
    """What a run would do, read from its uncommitted rows: per kind, source and step, with examples."""
    from mixline.curation.pii.detectors import scrub_for_display

    res = summarize(store, run_id, selected)
    res.dry_run = True
    for col, out in (("kind", res.by_kind), ("source", res.by_source)):
        out.extend(store.rows(f"""
            WITH sel AS (SELECT s.{col} AS g, count(*) AS selected FROM _sel x JOIN samples s USING (sample_id)
                         WHERE NOT x.anchor GROUP BY 1),
                 d AS (SELECT s.{col} AS g, count(DISTINCT d.sample_id) FILTER (WHERE d.verdict = 'dropped') AS dropped,
                              count(DISTINCT d.sample_id) FILTER (WHERE d.verdict = 'rewritten') AS rewritten
                       FROM decisions d JOIN samples s USING (sample_id) WHERE d.run_id = ? GROUP BY 1)
            SELECT sel.g AS {col}, sel.selected, sel.selected - coalesce(d.dropped, 0) AS kept,
                   coalesce(d.dropped, 0) AS dropped, coalesce(d.rewritten, 0) AS rewritten,
                   round((sel.selected - coalesce(d.dropped, 0)) / sel.selected, 4) AS kept_share
            FROM sel LEFT JOIN d USING (g) ORDER BY sel.selected DESC, 1""", [run_id]))
    if examples > 0:
        rows = store.rows("""
            SELECT step, reason, sample_id, kind, source, text FROM (
              SELECT d.step, split_part(d.reason, ':', 1) AS reason, d.sample_id, s.kind, s.source, s.text,
                     row_number() OVER (PARTITION BY d.step, split_part(d.reason, ':', 1) ORDER BY d.sample_id) AS n,
                     min(d.rowid) OVER (PARTITION BY d.step) AS step_pos
              FROM decisions d JOIN samples s USING (sample_id)
              WHERE d.run_id = ? AND d.verdict = 'dropped')
            WHERE n <= ? ORDER BY step_pos, reason, sample_id""", [run_id, examples])
        for row, shown in zip(rows, scrub_for_display([r.pop("text") for r in rows]), strict=True):
            res.examples.append({**row, "text": shown})
    return res


def why(store: Store, sample_id: str) -> dict[str, Any]:
    """Every decision and cluster about a sample, oldest run first."""
    from mixline.store.lineage import resolve_id

    sid = resolve_id(store, sample_id)
    decisions = store.rows(
        """SELECT d.run_id, r.step AS recipe, d.step, d.verdict, d.reason, d.score, r.started_at
           FROM decisions d JOIN runs r USING (run_id) WHERE d.sample_id = ? ORDER BY r.started_at, d.rowid""", [sid])
    clusters = store.rows(
        """SELECT c.run_id, c.method, c.cluster_id, c.kept,
                  (SELECT count(*) FROM clusters c2 WHERE c2.run_id = c.run_id AND c2.method = c.method
                   AND c2.cluster_id = c.cluster_id) AS size
           FROM clusters c WHERE c.sample_id = ?""", [sid])
    status = store.rows("SELECT status, run_id FROM sample_status WHERE sample_id = ?", [sid])
    # Which of the latest run's steps applied to the sample: a scoped step that did not
    # apply left no decision, and a step after a drop was never reached.
    steps: list[dict[str, Any]] = []
    if decisions:
        import json

        last = decisions[-1]["run_id"]
        cfg = json.loads(store.scalar("SELECT config FROM runs WHERE run_id = ?", [last]) or "{}")
        decided = {d["step"]: d["verdict"] for d in decisions if d["run_id"] == last}
        dropped_at = next((i for i, st in enumerate(cfg.get("recipe", {}).get("steps", []))
                           if decided.get(st.get("step_name") or f"{st['type']}_v{st['version']}") == "dropped"), None)
        for i, st in enumerate(cfg.get("recipe", {}).get("steps", [])):
            name = st.get("step_name") or f"{st['type']}_v{st['version']}"
            scope_ = {k: st[k] for k in ("kinds", "where") if k in st}
            applied = "applied" if name in decided else (
                "not reached (dropped earlier)" if dropped_at is not None and i > dropped_at else "out of scope")
            steps.append({"step": name, "applied": applied, **scope_})
    return {"sample_id": sid, "status": status[0]["status"] if status else "uncurated",
            "decisions": decisions, "clusters": clusters, "steps": steps}
