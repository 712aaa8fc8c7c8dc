"""Lineage queries: where a sample came from (`trace`) and what it reached (`impact`).

Both walk frontier by frontier with set-based lookups, never a recursive CTE: a recursive
CTE rescans the edge table on every iteration (100-500 ms per trace at 10M rows), while a
frontier walk touches only the rows it needs, and the `optimize` re-sort lets DuckDB's
zone maps skip the rest.

`impact` crosses tables: a sample reaches the mixes that hold it or any descendant, the
models trained on those mixes (and models fine-tuned from them), the samples those models
generated, and so on until nothing new is reached. That closure is what a deletion
request needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from mixline.store import lake, lake_reads
from mixline.store.ids import ID_HEX_CHARS
from mixline.store.lineage_index import LineageIndex
from mixline.store.schema import EDGES_DDL
from mixline.store.store import Store, key_of

from mixline.errors import ConfigError, NotFoundError

MAX_DEPTH = 10_000
_SAMPLE_COLS = "sample_id, source_id, source, kind, text, messages, content_hash, lang, domain, n_chars, n_tokens, synth_depth, created_run_id"


def resolve_id(store: Store, ref: str) -> str:
    """A full sample id from a full id or a unique prefix of at least 6 characters."""
    ref = ref.strip().lower()
    if len(ref) == ID_HEX_CHARS:
        if store.execute("SELECT sample_id FROM sample_rows WHERE sample_id = ? LIMIT 1", [ref]).fetchone():
            return ref
        raise NotFoundError(f"no sample with id {ref}; list ids with `mixline sql \"SELECT sample_id FROM samples LIMIT 10\"`")
    if len(ref) < 6 or any(c not in "0123456789abcdef" for c in ref):
        raise ConfigError(f"{ref!r} is not a sample id: give the 32-character hex id or a prefix of 6 or more")
    hits = [r[0] for r in store.execute("SELECT sample_id FROM sample_rows WHERE starts_with(sample_id, ?) LIMIT 3", [ref]).fetchall()]
    if not hits:
        raise NotFoundError(f"no sample id starts with {ref}")
    if len(hits) > 1:
        raise ConfigError(f"prefix {ref} is ambiguous ({', '.join(hits[:2])}, ...); give more characters")
    return str(hits[0])


def _in_list(ids: list[str]) -> tuple[str, list[str]]:
    return ",".join("?" * len(ids)), ids


def _edges_by_key(store: Store, side: str, ids: list[str], small: int = 256,
                  index: LineageIndex | None = None) -> list[tuple[str, str, str, str, str | None]]:
    """Edges whose `side` ('child' or 'parent') is in `ids`, found by integer key, then checked exactly.

    With a lineage index, the indexed edges come from it and only the table's tail past
    its watermark is scanned.
    """
    keys = sorted({key_of(i) for i in ids})
    cols = "child_id, parent_id, relation, run_id, step"
    wanted = set(ids)
    pos = 0 if side == "child" else 1
    if index is not None and side == "child":
        found = index.by_child(np.array(keys, dtype=np.uint64))
        tail = store.execute(f"SELECT {cols} FROM edges WHERE rowid >= {index.edges} AND child_key IN ({','.join(map(str, keys))})").fetchall() \
            if index.has_tail else []
        return [r for r in [*found, *tail] if r[pos] in wanted]
    if len(keys) <= small:
        rows = store.execute(f"SELECT {cols} FROM edges WHERE {side}_key IN ({','.join(map(str, keys))})").fetchall()
    else:
        store.con.register("_frontier_keys", pa.table({"k": pa.array(keys, pa.uint64())}))
        try:
            rows = store.execute(f"SELECT {cols} FROM edges WHERE {side}_key IN (SELECT k FROM _frontier_keys)").fetchall()
        finally:
            store.con.unregister("_frontier_keys")
    return [r for r in rows if r[pos] in wanted]


def _children(store: Store, ids: list[str], small: int = 256, index: LineageIndex | None = None) -> list[tuple[str, str, str, str]]:
    """Edges out of `ids`: (child_id, parent_id, relation, run_id).

    Only integer keys and the child id are read: scanning the parent id strings of 20M
    edges would double the cost of a level. The parent is mapped back from its key; two
    ids sharing a 64-bit prefix (odds about 1e-8 at 10M samples) would both be reported,
    which errs on the side of telling a deletion request too much, never too little.
    """
    by_key: dict[int, str] = {}
    for i in ids:
        by_key.setdefault(key_of(i), i)
    keys = sorted(by_key)
    cols = "child_id, parent_key, relation, run_id"
    if index is not None:
        found = index.children(np.array(keys, dtype=np.uint64))
        tail: list[Any] = []
        if index.has_tail:
            store.con.register("_frontier_keys", pa.table({"k": pa.array(keys, pa.uint64())}))
            try:
                tail = store.execute(f"SELECT {cols} FROM edges SEMI JOIN _frontier_keys f ON edges.parent_key = f.k "
                                     f"WHERE edges.rowid >= {index.edges}").fetchall()
            finally:
                store.con.unregister("_frontier_keys")
        return [(c, by_key[pk], rel, run) for c, pk, rel, run in [*found, *tail]]
    if len(keys) <= small:
        rows = store.execute(f"SELECT {cols} FROM edges WHERE parent_key IN ({','.join(map(str, keys))})").fetchall()
    else:
        store.con.register("_frontier_keys", pa.table({"k": pa.array(keys, pa.uint64())}))
        try:
            rows = store.execute(f"SELECT {cols} FROM edges SEMI JOIN _frontier_keys f ON edges.parent_key = f.k").fetchall()
        finally:
            store.con.unregister("_frontier_keys")
    return [(c, by_key[pk], rel, run) for c, pk, rel, run in rows]


def _frontier_rows(store: Store, sql: str, ids: list[str], small: int = 256) -> list[tuple[Any, ...]]:
    """Run `sql` (with `{ids}` standing for the id set) over a frontier, as IN list or a join."""
    return [tuple(r.values()) for r in _frontier_dicts(store, sql, ids, small)]


def _frontier_dicts(store: Store, sql: str, ids: list[str], small: int = 256) -> list[dict[str, Any]]:
    if len(ids) <= small:
        marks, params = _in_list(ids)
        return store.rows(sql.format(ids=f"({marks})"), params)
    store.con.register("_frontier", pa.table({"id": ids}))
    try:
        return store.rows(sql.format(ids="(SELECT id FROM _frontier)"))
    finally:
        store.con.unregister("_frontier")


@dataclass
class Trace:
    sample: dict[str, Any]
    origins: list[dict[str, Any]]
    ancestors: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    generated_by: list[dict[str, Any]] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    mixes: list[dict[str, Any]] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)
    scrubbed_into: list[str] = field(default_factory=list)
    # Learned classifiers: the scores they gave this sample, and those it helped train.
    scores: list[dict[str, Any]] = field(default_factory=list)
    trained: list[dict[str, Any]] = field(default_factory=list)
    # A canary copy: its canary (never the secret), and the audits that measured it.
    canary: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample": self.sample, "sources": self.origins, "ancestors": self.ancestors,
            "decisions": self.decisions, "generated_by": self.generated_by,
            "clusters": self.clusters, "mixes": self.mixes, "redactions": self.redactions,
            "scrubbed_into": self.scrubbed_into, "scores": self.scores, "trained_classifiers": self.trained,
            "canary": self.canary, "audits": self.audits,
        }


# A sample's own rows, in one query: each part is a table of rows as JSON objects. One
# round trip instead of seven is most of what a trace costs once the walk is indexed.
_BUNDLE = [
    # The row as written, and its annotations; the newest of each kind is applied in
    # _annotate, as the `samples` view does (the view's joins cost a point lookup 1 ms).
    ("sample", "SELECT " + _SAMPLE_COLS + " FROM {sample_rows} WHERE sample_id = $1"),
    ("annotations", """SELECT kind, annotated_at, run_id, lang, n_tokens FROM {sample_annotations}
                       WHERE sample_id = $1"""),
    ("origins", """SELECT o.source_id, s.name AS source, s.kind, s.license, o.file, o.locator,
                          o.original_id, o.url, o.run_id, o.meta
                   FROM {sample_origins} o JOIN {sources} s USING (source_id) WHERE o.sample_id = $1"""),
    ("decisions", """SELECT d.run_id, d.step, d.verdict, d.reason, d.score, r.started_at
                     FROM {decisions} d LEFT JOIN {runs} r USING (run_id) WHERE d.sample_id = $1"""),
    ("generated_by", """SELECT g.model_id, m.name, m.mix_id, g.run_id, g.prompt_sample_id, g.decoding, g.seed
                        FROM {generations} g LEFT JOIN {models} m USING (model_id) WHERE g.sample_id = $1"""),
    # Cluster sizes come from a second query, only for samples that are in a cluster.
    ("clusters", "SELECT run_id, method, cluster_id, kept FROM {clusters} WHERE sample_id = $1"),
    ("mixes", """SELECT mm.mix_id, m.name, mm.repeats, mm.split FROM {mix_members} mm
                 LEFT JOIN {mixes} m USING (mix_id) WHERE mm.sample_id = $1"""),
    ("redactions", "SELECT entity_type, count(*) AS n FROM {redactions} WHERE sample_id = $1 GROUP BY 1"),
    ("edges", "SELECT count(*) AS n FROM {edges}"),
    ("scores", """SELECT c.name, c.version, cs.classifier_id, cs.label, cs.score, cs.run_id
                  FROM {classifier_scores} cs JOIN {classifiers} c USING (classifier_id) WHERE cs.sample_id = $1"""),
    ("trained", """SELECT c.classifier_id, c.name, c.version, mm.split FROM {mix_members} mm
                   JOIN {classifiers} c USING (mix_id) WHERE mm.sample_id = $1"""),
    ("canary", """SELECT cc.canary_id, c.format, c.repeats, cc.copy, c.carrier_id, c.run_id
                  FROM {canary_copies} cc JOIN {canaries} c USING (canary_id) WHERE cc.sample_id = $1"""),
    ("audits", """SELECT a.audit_id, a.model_id, ac.canary_id, ac.trained_copies, ac.secret_trained, ac.exposure_bits,
                         ac.extracted, a.created_at
                  FROM {canary_copies} cc JOIN {audit_canaries} ac USING (canary_id) JOIN {audits} a USING (audit_id)
                  WHERE cc.sample_id = $1"""),
]
_BUNDLE_TABLES = tuple(sorted({t for _, q in _BUNDLE for t in re.findall(r"\{(\w+)\}", q)}))


def _bundle_sql(relations: dict[str, str]) -> str:
    return " UNION ALL ".join(f"SELECT {i} AS part, to_json(t)::VARCHAR AS row FROM ({q.format(**relations)}) t"
                              for i, (_, q) in enumerate(_BUNDLE))


_BUNDLE_SQL = _bundle_sql({t: t for t in _BUNDLE_TABLES})
# Rows are ordered here, not in SQL: sorting a few rows in Python is cheaper than a sort
# operator per part.
_ORDER: dict[str, Callable[[dict[str, Any]], Any]] = {
    "origins": lambda r: (r["run_id"] or "", r["file"] or "", r["locator"] or ""),
    "decisions": lambda r: (r["started_at"] or "", r["step"]),
    "generated_by": lambda r: (r["run_id"] or "", r["model_id"] or "", r["prompt_sample_id"] or ""),
    "clusters": lambda r: r["run_id"],
    "mixes": lambda r: r["mix_id"],
    "redactions": lambda r: r["entity_type"],
    "scores": lambda r: (r["name"], r["version"], r["label"]),
    "trained": lambda r: (r["name"], r["version"]),
    "audits": lambda r: (r["created_at"], r["audit_id"]),
}


def _bundle(store: Store, sid: str) -> tuple[dict[str, list[dict[str, Any]]], bool | None]:
    """A sample's own rows by part, and whether the store has any canaries (None: not known)."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in _BUNDLE}
    con, sql = store.con, _BUNDLE_SQL
    reads = lake_reads.point_reads(store)
    if reads is not None:
        # On a lake: the tables' files from one catalog query (see store/lake_reads.py).
        plans = reads.plan(_BUNDLE_TABLES)
        con = reads.con
        sql = _bundle_sql({t: p.relation("sample_id = $1" if t in lake_reads.SAMPLE_KEYED else "") for t, p in plans.items()})
    for part, row in con.execute(sql, [sid]).fetchall():
        out[_BUNDLE[part][0]].append(json.loads(row))
    for name, key in _ORDER.items():
        out[name].sort(key=key)
    # Whether the store has canaries at all, where the plan says (None: ask the store).
    any_canaries = None if reads is None or plans["canaries"].why_not is not None else plans["canaries"].rows > 0
    if out["sample"]:
        _newest_annotations(out["sample"][0], out["annotations"])
    return out, any_canaries


def _newest_annotations(sample: dict[str, Any], notes: list[dict[str, Any]]) -> None:
    """A sample row as `samples` shows it: its newest language and token count applied."""
    newest: dict[str, dict[str, Any]] = {}
    for n in sorted(notes, key=lambda n: (n["annotated_at"], n["run_id"])):
        newest[n["kind"]] = n
    if "language" in newest:
        sample["lang"] = newest["language"]["lang"]
    if "tokens" in newest and newest["tokens"]["n_tokens"] is not None:
        sample["n_tokens"] = newest["tokens"]["n_tokens"]


def trace(store: Store, ref: str) -> Trace:
    """A sample, its origins, its ancestors back to human data, and every decision about it."""
    ref = ref.strip().lower()
    # A full id is checked by the bundle query itself; a prefix is resolved first.
    sid = ref if len(ref) == ID_HEX_CHARS else resolve_id(store, ref)
    own, any_canaries = _bundle(store, sid)
    if not own["sample"]:
        resolve_id(store, sid)  # raises the not-found error
    sample = own["sample"][0]
    origins = own["origins"]
    ancestors: list[dict[str, Any]] = []
    seen = {sid}
    frontier = [sid]
    depth = 0
    index = LineageIndex.open(store, edge_count=own["edges"][0]["n"])
    while frontier and depth < MAX_DEPTH:
        depth += 1
        nxt = []
        for child, parent, relation, run_id, step in sorted(_edges_by_key(store, "child", frontier, index=index)):
            ancestors.append({"sample_id": parent, "child_id": child, "relation": relation,
                              "run_id": run_id, "step": step, "distance": depth})
            if parent not in seen:
                seen.add(parent)
                nxt.append(parent)
        frontier = nxt
    if ancestors:
        wanted = sorted(seen - {sid})
        known = index.sample_info(wanted) if index is not None else {}
        missing = [i for i in wanted if i not in known]
        if missing:
            for r in _frontier_dicts(store, "SELECT sample_id, kind, synth_depth FROM sample_rows WHERE sample_id IN {ids}", missing):
                known[r["sample_id"]] = (r["kind"], r["synth_depth"])
        for a in ancestors:
            a["kind"], a["synth_depth"] = known.get(a["sample_id"], (None, None))
    decisions, generated_by, clusters, mixes = own["decisions"], own["generated_by"], own["clusters"], own["mixes"]
    if clusters:
        marks, ids = _in_list(sorted({c["cluster_id"] for c in clusters}))
        sizes = {(r, m, c): n for r, m, c, n in store.execute(
            f"SELECT run_id, method, cluster_id, count(*) FROM clusters WHERE cluster_id IN ({marks}) GROUP BY ALL", ids).fetchall()}
        for c in clusters:
            c["size"] = sizes.get((c["run_id"], c["method"], c["cluster_id"]), 1)
    redactions = {r["entity_type"]: r["n"] for r in own["redactions"]}
    scrubbed = index.scrubbed_children(sid) if index is not None else []
    if index is None or index.has_tail:
        # The key is inlined: a bound Python int above 2**63 is not typed UBIGINT, and the index is skipped.
        scrubbed += [r[0] for r in store.execute(
            f"SELECT child_id FROM edges WHERE parent_key = {key_of(sid)} AND parent_id = ? AND relation = 'scrubbed_from'"
            + (f" AND rowid >= {index.edges}" if index is not None else ""), [sid]).fetchall()]
    withheld = withheld_reason(sid, sample["kind"], decisions, scrubbed,
                               any(a["child_id"] == sid and a["relation"] == "scrubbed_from" for a in ancestors))
    if withheld:
        # Raw PII never leaves the store: say why the text is not shown, and how to read it.
        sample["text"] = f"[{withheld}]"
        sample["messages"] = None
        sample["withheld"] = True
    else:
        # A canary copy (or a sample derived from one) shows with its secret masked.
        from mixline.store.canaries import mask

        msgs = sample.get("messages")
        raw = msgs if isinstance(msgs, str) or not msgs else json.dumps(msgs, ensure_ascii=False)
        masked = mask(store, {"text": sample["text"], "messages": raw}, any_canaries=any_canaries)
        sample["text"] = masked["text"]
        if msgs and masked["messages"] != raw:
            sample["messages"] = masked["messages"] if isinstance(msgs, str) else json.loads(masked["messages"] or "null")
    return Trace(sample, origins, ancestors, decisions, generated_by, clusters, mixes, redactions, scrubbed,
                 own["scores"], own["trained"], own["canary"], own["audits"])


def _step(name: str) -> str:
    return re.sub(r"_v[0-9]+$", "", name)


READ_HINT = ("`mixline trace {sid} --scan-pii` scans it now and shows it with any PII replaced "
             "(the read is recorded as a run)")


def withheld_reason(sid: str, kind: str, decisions: list[dict[str, Any]], scrubbed_into: list[str],
                    written_by_pii: bool) -> str | None:
    """Why a sample's text may not be shown, or None when it may: what happened, and how to read it.

    Text is shown when a pii step scanned it and kept it, or wrote it (a scrubbed child). A raw
    parent points to its scrubbed child. Anything else stays in the store, and the reason says
    which step dropped it before PII scanning, or that the pii step itself dropped it.
    """
    if scrubbed_into:
        return f"raw text withheld: it contains PII; see scrubbed sample {scrubbed_into[0]}"
    if written_by_pii:
        return None
    pii = sorted((d for d in decisions if _step(d["step"]) == "pii"), key=lambda d: str(d["started_at"] or ""))
    if pii and pii[-1]["verdict"] != "dropped":
        return None
    hint = READ_HINT.format(sid=sid[:12])
    if pii:
        d = pii[-1]
        return (f"text withheld: the pii step dropped it in {d['run_id']} ({d['reason']}), so its raw text stays in the "
                f"store; {hint}")
    if not decisions:
        return f"text withheld: no curation run has scanned it for PII yet; `mixline curate` (the default recipe scrubs PII), or {hint}"
    last = max(str(d["started_at"] or "") for d in decisions)
    latest = [d for d in decisions if str(d["started_at"] or "") == last]
    dropped = [d for d in latest if d["verdict"] == "dropped"]
    if dropped:
        d = dropped[0]
        why = f"{_step(d['step'])}" + (f" ({d['reason']})" if d["reason"] else "")
        return (f"text withheld: dropped by {why} in {d['run_id']} before any pii step scanned it, so its raw text "
                f"stays in the store; {hint}")
    return (f"text withheld: the recipe of {latest[0]['run_id']} has no pii step for {kind} samples, so no pii step has "
            f"scanned it; run a recipe with a `pii` step over it, or {hint}")


@dataclass
class Impact:
    roots: list[str]
    samples: list[dict[str, Any]]
    mixes: list[dict[str, Any]]
    models: list[dict[str, Any]]
    truncated: bool = False  # the walk stopped at max_samples (only when one was given)
    # Classifiers trained on a reached mix, and the curation runs whose decisions they made
    # (their mixes are in `mixes`, with `via_classifier`).
    classifiers: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    # Canaries planted into a root or a reached sample, and the privacy audits of reached models.
    canaries: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        out = {"roots": self.roots, "samples": self.samples, "mixes": self.mixes, "models": self.models,
               "classifiers": self.classifiers, "runs": self.runs, "canaries": self.canaries, "audits": self.audits}
        if self.truncated:
            out["truncated"] = True
        return out


def impact(store: Store, refs: list[str], *, include_roots_in_mixes: bool = True, max_samples: int | None = None) -> Impact:
    """Everything the given samples reached: descendant samples, mixes and models.

    Descendants come through edges (scrubbed_from, generated_from, ...) and through models:
    a mix holding any reached sample reaches the models trained on it, their fine-tuned
    children, and the samples they generated, which are walked in turn.
    """
    if not refs:
        raise ConfigError("impact needs at least one sample id")
    roots = [resolve_id(store, r) if len(r) != ID_HEX_CHARS else r.lower() for r in refs]
    reached: dict[str, dict[str, Any]] = {}
    index = LineageIndex.open(store)
    seen = set(roots)
    mixes: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}
    classifiers: dict[str, dict[str, Any]] = {}
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    frontier = list(roots)
    mix_probe = list(roots) if include_roots_in_mixes else []
    depth = 0
    truncated = False
    while (frontier or mix_probe) and depth < MAX_DEPTH:
        if max_samples is not None and len(reached) >= max_samples:
            truncated = True  # a display bound (the dashboard); `mixline impact` walks everything
            break
        depth += 1
        nxt: list[str] = []
        if frontier:
            for child, parent, relation, run_id in _children(store, frontier, index=index):
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
                    reached[child] = {"sample_id": child, "parent_id": parent, "relation": relation,
                                      "run_id": run_id, "distance": depth}
        # Mixes that hold anything reached so far, then models trained on them.
        probe = mix_probe + nxt
        mix_probe = []
        new_mixes = [m for (m,) in _frontier_rows(store, "SELECT DISTINCT mix_id FROM mix_members WHERE sample_id IN {ids}", probe)
                     if m not in mixes] if probe else []
        for m in new_mixes:
            mixes[m] = {"mix_id": m, "distance": depth}
        _classifier_reach(store, new_mixes, mixes, classifiers, runs, depth)
        new_models = [m for (m,) in _frontier_rows(store, "SELECT DISTINCT model_id FROM models WHERE mix_id IN {ids}", new_mixes)
                      if m not in models] if new_mixes else []
        # Models fine-tuned from a reached model inherit what it saw.
        todo = list(new_models)
        while todo:
            for m in todo:
                models[m] = {"model_id": m, "distance": depth}
            todo = [c for (c,) in _frontier_rows(store, "SELECT model_id FROM models WHERE parent_model_id IN {ids}", todo)
                    if c not in models]
            new_models.extend(todo)
        if new_models:
            for sample_id, model_id, run_id in _frontier_rows(
                store, "SELECT sample_id, model_id, run_id FROM generations WHERE model_id IN {ids}"
                + ("" if max_samples is None else f" ORDER BY sample_id LIMIT {int(max_samples)}"), new_models
            ):
                if sample_id not in seen:
                    seen.add(sample_id)
                    nxt.append(sample_id)
                    reached[sample_id] = {"sample_id": sample_id, "parent_id": None, "relation": "generated_by_model",
                                          "model_id": model_id, "run_id": run_id, "distance": depth}
                    mix_probe.append(sample_id)
        frontier = nxt
    _annotate(store, mixes, "SELECT mix_id, name, recipe_hash, run_id FROM mixes WHERE mix_id IN {ids}")
    _annotate(store, models, "SELECT model_id, name, mix_id, parent_model_id, method, checkpoint_uri FROM models WHERE model_id IN {ids}")
    _annotate(store, classifiers, "SELECT classifier_id, name, version, method, mix_id FROM classifiers WHERE classifier_id IN {ids}")
    samples = sorted(reached.values(), key=lambda r: (r["distance"], r["sample_id"]))
    from mixline.store.canaries import has_canaries

    canaries, audits = [], []
    if has_canaries(store):
        canaries = sorted({r[0]: {"canary_id": r[0], "format": r[1], "carrier_id": r[2]} for r in _frontier_rows(
            store, "SELECT DISTINCT cc.canary_id, c.format, c.carrier_id FROM canary_copies cc JOIN canaries c USING (canary_id) "
            "WHERE cc.sample_id IN {ids}", [*roots, *reached])}.values(), key=lambda r: r["canary_id"])
    if models and store.table_exists("audits"):
        audits = sorted(({"audit_id": a, "model_id": m, "passed": p} for a, m, p in _frontier_rows(
            store, "SELECT audit_id, model_id, passed FROM audits WHERE model_id IN {ids}", list(models))),
            key=lambda r: r["audit_id"])
    return Impact(roots, samples, sorted(mixes.values(), key=lambda r: r["mix_id"]),
                  sorted(models.values(), key=lambda r: r["model_id"]), truncated,
                  sorted(classifiers.values(), key=lambda r: (r.get("name") or "", r.get("version") or 0)),
                  sorted(runs.values(), key=lambda r: (r["run_id"], r["step"] or "")), canaries, audits)


def _classifier_reach(store: Store, new_mixes: list[str], mixes: dict[str, dict[str, Any]],
                      classifiers: dict[str, dict[str, Any]], runs: dict[tuple[str, str], dict[str, Any]],
                      depth: int) -> None:
    """A reached mix that trained a classifier reaches it, and through `classifier_uses` the
    mixes its scores shaped (appended to `new_mixes`, so their models follow) and the runs
    whose decisions it made."""
    todo = list(new_mixes)
    while todo:
        found = [c for (c,) in _frontier_rows(store, "SELECT DISTINCT classifier_id FROM classifiers WHERE mix_id IN {ids}", todo)
                 if c not in classifiers]
        todo = []
        for c in found:
            classifiers[c] = {"classifier_id": c, "distance": depth}
        if not found:
            return
        for cid, run_id, mix_id, step in _frontier_rows(
                store, "SELECT classifier_id, run_id, mix_id, step FROM classifier_uses WHERE classifier_id IN {ids}", found):
            if mix_id is not None:
                if mix_id not in mixes:
                    mixes[mix_id] = {"mix_id": mix_id, "distance": depth, "via_classifier": cid}
                    new_mixes.append(mix_id)
                    todo.append(mix_id)
            elif (run_id, step) not in runs:
                n = store.scalar("SELECT count(*) FROM decisions WHERE run_id = ? AND step = ?", [run_id, step]) if step else 0
                runs[(run_id, step)] = {"run_id": run_id, "step": step, "classifier_id": cid, "decisions": int(n or 0)}


def _annotate(store: Store, found: dict[str, dict[str, Any]], sql: str) -> None:
    if not found:
        return
    for rec in _frontier_dicts(store, sql, list(found)):
        found[next(iter(rec.values()))].update(rec)


def stats(store: Store) -> dict[str, Any]:
    """Counts by kind, source and domain; synthetic depth histogram; quarantine and runs."""
    def grouped(expr: str, joins: str = "") -> list[dict[str, Any]]:
        return store.rows(f"SELECT {expr} AS key, count(*) AS samples, sum(n_chars) AS chars FROM samples s {joins} GROUP BY 1 ORDER BY 2 DESC, 1")

    return {
        "samples": int(store.scalar("SELECT count(*) FROM sample_rows")),
        "chars": int(store.scalar("SELECT coalesce(sum(n_chars), 0) FROM sample_rows")),
        "by_kind": grouped("s.kind"),
        "by_source": grouped("s.source"),
        "by_domain": grouped("coalesce(s.domain, '(none)')"),
        "synth_depth": store.rows("SELECT synth_depth AS depth, count(*) AS samples FROM sample_rows GROUP BY 1 ORDER BY 1"),
        "origins": int(store.scalar("SELECT count(*) FROM sample_origins")),
        "edges": int(store.scalar("SELECT count(*) FROM edges")),
        "quarantined": int(store.scalar("SELECT count(*) FROM quarantine")),
        "runs": int(store.scalar("SELECT count(*) FROM runs")),
        "mixes": int(store.scalar("SELECT count(*) FROM mixes")),
        "models": int(store.scalar("SELECT count(*) FROM models")),
    }


INDEXES = {
    "edges_child_key": "edges (child_key)",
    "edges_parent_key": "edges (parent_key)",
    "samples_sample_id": "sample_rows (sample_id)",
    "annotations_sample_id": "sample_annotations (sample_id)",
    # What trace and why read about one sample: point lookups instead of table scans.
    "origins_sample_id": "sample_origins (sample_id)",
    "decisions_sample_id": "decisions (sample_id)",
    "clusters_sample_id": "clusters (sample_id)",
    "mix_members_sample_id": "mix_members (sample_id)",
    "generations_sample_id": "generations (sample_id)",
    "redactions_sample_id": "redactions (sample_id)",
}


def optimize(store: Store, *, expire_days: float | None = None) -> dict[str, int]:
    """Sort edges by child and build ART indexes, so trace and impact stay fast at scale.

    The sort is one run (all or nothing). Indexes are then built one statement at a time:
    building them inside that transaction holds the whole table in memory. Writes after
    this keep the indexes up to date, at some cost to bulk ingest speed.

    On a DuckLake store it also merges small files, and with `expire_days` expires the
    snapshots older than that, except those mixes were built at (see `lake.maintain`).
    """
    if expire_days is not None and store.lake is None:
        raise ConfigError("--expire-days applies to a DuckLake store; a single-file store keeps no snapshots")
    if store.lake is None:
        for name in INDEXES:
            store.execute(f"DROP INDEX IF EXISTS {name}")
    store.attachments.pop("lineage_index", None)
    with store.run("maintenance", "optimize_v1", {}) as run:
        store.execute(EDGES_DDL.format(name="_edges_sorted"))
        store.execute("INSERT INTO _edges_sorted SELECT * FROM edges ORDER BY child_key, child_id")
        store.execute("DROP TABLE edges")
        store.execute("ALTER TABLE _edges_sorted RENAME TO edges")
        n = int(store.scalar("SELECT count(*) FROM edges"))
        run.stats["edges"] = n
        if store.lake is not None:
            # A lake has no indexes: point reads prune row groups of files sorted by sample_id.
            run.stats["sorted"] = lake_reads.sort_by_sample(store)
    if store.lake is not None:
        # DuckLake keeps no indexes: the memory-mapped lineage index under the data path
        # serves trace and impact, and the sorted Parquet files serve the rest.
        from mixline.store import lineage_index

        lineage_index.build(store)
        # Keep every snapshot a mix was built at, and any a mix build selected from.
        keep = {int(r[0]) for r in store.execute(
            f"""SELECT r.snapshot_id FROM mixes m JOIN {store.runs_sql()} r USING (run_id) WHERE r.snapshot_id IS NOT NULL
                UNION SELECT CAST(json_extract(config, '$.snapshot') AS BIGINT) FROM runs
                WHERE kind = 'mix' AND json_extract(config, '$.snapshot') IS NOT NULL""").fetchall()}
        done = lake.maintain(store.con, expire_days=expire_days, keep=keep)
        return {"edges": n, "indexes": 0, **done.to_dict()}
    for name, target in INDEXES.items():
        store.execute(f"CREATE INDEX {name} ON {target}")
    store.execute("CHECKPOINT")
    from mixline.store import lineage_index

    lineage_index.build(store)
    return {"edges": n, "indexes": len(INDEXES)}


MODEL_COLUMNS = ("model_id, name, stage, method, base_ref, parent_model_id, mix_id, checkpoint_uri, weight_hash, config, "
                 "train_run_id, created_at")


def model_chain(store: Store, model_id: str | None, limit: int = 1000) -> list[dict[str, Any]]:
    """A model's row and its ancestors' rows through `parent_model_id`, nearest first. A
    parent that has no row ends the chain (the last row's parent_model_id then names it)."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    while model_id and model_id not in seen and len(chain) < limit:
        seen.add(model_id)
        rows = store.rows(f"SELECT {MODEL_COLUMNS} FROM models WHERE model_id = ?", [model_id])
        if not rows:
            break
        chain.append(rows[0])
        model_id = rows[0]["parent_model_id"]
    return chain


def model_ancestry(store: Store, model_id: str | None) -> list[str]:
    """The model and its ancestors through `parent_model_id`, nearest first, including a
    first id or a parent that has no row of its own."""
    chain = model_chain(store, model_id)
    ids = [r["model_id"] for r in chain]
    last = chain[-1]["parent_model_id"] if chain else model_id
    return ids + [last] if last and last not in ids else ids
