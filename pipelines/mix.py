"""Training mixes: a declarative recipe becomes a content-addressed set of samples.

Only samples that curation kept are eligible (or, if the recipe allows, samples no run has
curated yet), never eval samples, and never a raw sample that has a scrubbed child. The
mix id is the hash of the resolved recipe plus the sorted member ids, repeats and splits,
so the same recipe on the same store state always gives the same id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from mixline.store import lake
from mixline.store.canaries import CANARY_SAMPLES
from mixline.store.ids import canonical_json, config_hash
from mixline.store.recipes import read_table_file
from mixline.store.refs import require_ref
from mixline.store.select import not_raw_parent, scope
from mixline.store.store import Store, annotation_time

from mixline.errors import ConfigError

CHARS_PER_TOKEN = 4.0
STATUSES = ("kept", "uncurated")


@dataclass(frozen=True)
class Group:
    """A slice of the mix: which samples (`where`) and how much of them."""

    name: str
    where: str = "TRUE"
    weight: float | None = None
    tokens: int | None = None
    docs: int | None = None
    max_repeats: int = 1
    # At most this many documents of the group are eligible (in draw order), without the
    # error a `docs` quota gives when fewer exist.
    max_docs: int | None = None
    # A learned classifier (`mixline classifier train`): the group's samples are drawn by its
    # score, highest first, instead of at random; `top_share` keeps only that share of them.
    # NAME scores a binary classifier's positive class; NAME:LABEL one class of a multi-class one.
    rank_by: str | None = None
    top_share: float | None = None


# Group settings added after mix ids were first published: left out of the resolved recipe
# while unset, so that a recipe without them keeps its mix id.
NEW_GROUP_FIELDS = ("max_docs", "rank_by", "top_share")


@dataclass(frozen=True)
class Holdout:
    fraction: float = 0.0
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class MixRecipe:
    name: str
    groups: tuple[Group, ...]
    seed: int = 0
    total_tokens: int | None = None
    max_synthetic_share: float | None = None
    max_synth_depth: int | None = None
    max_docs_per_source: int | None = None
    max_tokens_per_source: int | None = None
    # Caps per language (samples.lang, `und` when not identified), over all groups: documents,
    # tokens, or tokens per language as a share of the eligible train tokens; a table caps some:
    # max_tokens_per_lang = { en = 2000000 }. Per-language weights are groups with `where = "lang = 'de'"`.
    max_docs_per_lang: int | dict[str, int] | None = None
    max_tokens_per_lang: int | dict[str, int] | None = None
    where: str = "TRUE"
    status: tuple[str, ...] = ("kept",)
    tokenizer: str = "estimate"
    holdout: Holdout = field(default_factory=Holdout)
    # The mixture search (`mixline mix search`) whose chosen weights these are; part of the id.
    search: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> MixRecipe:
        return cls.parse(read_table_file(path, "mix recipe"), str(path))

    @classmethod
    def parse(cls, data: Any, origin: str = "recipe") -> MixRecipe:
        if not isinstance(data, dict):
            raise ConfigError(f"mix recipe {origin}: expected a table of settings")
        raw_groups = data.get("groups")
        if not isinstance(raw_groups, list) or not raw_groups:
            raise ConfigError(f"mix recipe {origin}: needs a non-empty `groups` list ([[groups]] in TOML)")
        groups = []
        known = {f for f in Group.__dataclass_fields__}
        for i, g in enumerate(raw_groups):
            if not isinstance(g, dict) or "name" not in g:
                raise ConfigError(f"mix recipe {origin}: groups[{i}] needs a `name`")
            unknown = set(g) - known
            if unknown:
                raise ConfigError(f"mix recipe {origin}: groups[{i}] has unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
            grp = Group(**g)
            if sum(x is not None for x in (grp.weight, grp.tokens, grp.docs)) > 1:
                raise ConfigError(f"mix recipe {origin}: group {grp.name!r} sets more than one of weight, tokens, docs")
            if grp.weight is not None and not data.get("total_tokens"):
                raise ConfigError(f"mix recipe {origin}: group {grp.name!r} has a weight but the recipe has no total_tokens")
            if grp.max_repeats < 1:
                raise ConfigError(f"mix recipe {origin}: group {grp.name!r}: max_repeats must be at least 1")
            if grp.max_docs is not None and (not isinstance(grp.max_docs, int) or grp.max_docs < 1):
                raise ConfigError(f"mix recipe {origin}: group {grp.name!r}: max_docs must be a whole number of at least 1")
            if grp.top_share is not None:
                if grp.rank_by is None:
                    raise ConfigError(f"mix recipe {origin}: group {grp.name!r} sets top_share but no rank_by; "
                                      "name the classifier whose score ranks it, e.g. rank_by = \"med\"")
                if not isinstance(grp.top_share, int | float) or not 0 < grp.top_share <= 1:
                    raise ConfigError(f"mix recipe {origin}: group {grp.name!r}: top_share must be a share in (0, 1]; "
                                      f"got {grp.top_share!r}")
            groups.append(grp)
        status = tuple(data.get("status", ("kept",)))
        for s in status:
            if s not in STATUSES:
                raise ConfigError(f"mix recipe {origin}: status {s!r} is not one of {', '.join(STATUSES)}")
        hold = data.get("holdout") or {}
        known_top = set(cls.__dataclass_fields__) - {"groups", "holdout"}
        unknown = set(data) - known_top - {"groups", "holdout"}
        if unknown:
            raise ConfigError(f"mix recipe {origin}: unknown settings {sorted(unknown)}")
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known_top}
        kw["status"] = status
        return cls(groups=tuple(groups), holdout=Holdout(float(hold.get("fraction", 0.0)), tuple(hold.get("sources", ()))), **kw)

    def resolved(self) -> dict[str, Any]:
        out = asdict(self)
        for g in out["groups"]:
            for k in NEW_GROUP_FIELDS:
                if g.get(k) is None:
                    g.pop(k, None)
        if out.get("search") is None:  # added later: unset, it leaves existing mix ids as they were
            out.pop("search", None)
        return out


@dataclass
class MixResult:
    mix_id: str
    name: str
    created: bool
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return {"mix_id": self.mix_id, "name": self.name, "created": self.created, **self.summary}


# A sample's tokens: counted by the recipe's tokenizer when it named one, else estimated.
TOKENS_SQL = f"coalesce(s.n_tokens, CAST(ceil(s.n_chars / {CHARS_PER_TOKEN}) AS BIGINT))"


def count_tokens(store: Store, recipe: MixRecipe, run_id: str) -> None:
    """Fill samples.n_tokens for eligible samples with the recipe's tokenizer (unless estimating)."""
    if recipe.tokenizer == "estimate":
        return
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(recipe.tokenizer)
    rows = store.execute("SELECT e.sample_id, s.text FROM _eligible e JOIN samples s USING (sample_id)").fetchall()
    counts = []
    for i in range(0, len(rows), 1000):
        chunk = rows[i : i + 1000]
        enc = tok([t for _, t in chunk], add_special_tokens=False)["input_ids"]
        counts += [(sid, len(ids)) for (sid, _), ids in zip(chunk, enc, strict=True)]
    store.con.register("_counts", pa.table({"sample_id": [a for a, _ in counts], "n": [b for _, b in counts]}))
    try:
        # Insert-only, like every annotation: a mix build never conflicts with an ingest.
        store.execute("INSERT INTO sample_annotations (sample_id, run_id, kind, annotated_at, n_tokens) "
                      "SELECT c.sample_id, ?, 'tokens', ?, c.n FROM _counts c "
                      "JOIN samples s ON s.sample_id = c.sample_id WHERE s.n_tokens IS DISTINCT FROM c.n",
                      [run_id, annotation_time()])
    finally:
        store.con.unregister("_counts")


@contextmanager
def _reading_at(store: Store, alias: str | None) -> Iterator[None]:
    """Unqualified table names read the lake as of a snapshot (attached as `alias`) inside."""
    if alias is None:
        yield
        return
    store.execute(f"USE {alias}")
    try:
        yield
    finally:
        store.execute(f"USE {lake.ALIAS}")


def build(store: Store, recipe: MixRecipe, snapshot: int | None = None) -> MixResult:
    """Select members per group, check every limit, and record the mix (idempotent).

    With `snapshot` (a DuckLake store), members are selected from the store as it was at
    that snapshot: building against a mix's recorded snapshot reproduces its id, whatever
    was ingested or curated since.
    """
    at = None
    if snapshot is not None:
        if store.lake is None:
            raise ConfigError(f"mix {recipe.name}: --snapshot needs a DuckLake store; a single-file store keeps no snapshots")
        newest = store.current_snapshot() or 0
        if not 0 <= int(snapshot) <= newest:
            raise ConfigError(f"mix {recipe.name}: snapshot {snapshot} does not exist; the newest is {newest} "
                              "(`mixline runs` lists each run's snapshot)")
        if not store.scalar(f"SELECT count(*) FROM {lake.ALIAS}.snapshots() WHERE snapshot_id = ?", [int(snapshot)]):
            raise ConfigError(f"mix {recipe.name}: snapshot {snapshot} was expired (`mixline optimize --expire-days`), "
                              "so the store as it was then can no longer be read; the snapshots mixes were built at "
                              "are kept (`mix show` names them)")
        at = "lake_at"
        store.execute(f"DETACH DATABASE IF EXISTS {at}")
        lake.attach(store.con, store.lake, snapshot=int(snapshot), alias=at)
        store.execute(f"USE {lake.ALIAS}")
    try:
        return _build(store, recipe, at, snapshot)
    finally:
        if at is not None:
            store.execute(f"USE {lake.ALIAS}")
            store.execute(f"DETACH DATABASE IF EXISTS {at}")


def _classifiers(store: Store, recipe: MixRecipe) -> dict[str, Any]:
    """The classifiers a recipe reads (rank_by and score()/label() in its predicates), by the
    reference it uses; each resolves to one recorded version."""
    from mixline.curation.classifier import load
    from mixline.store.select import referenced_classifiers

    out: dict[str, Any] = {}
    for g in recipe.groups:
        if g.rank_by is not None:
            ref, _, label = g.rank_by.partition(":")
            c = load(store, ref)
            if label and label not in c.labels:
                raise ConfigError(f"mix {recipe.name}: group {g.name!r}: rank_by {g.rank_by!r}: classifier {c.ref} has no "
                                  f"label {label!r}; its labels are {', '.join(c.labels)}")
            if not label and c.labels != ["negative", "positive"]:
                raise ConfigError(f"mix {recipe.name}: group {g.name!r}: classifier {c.ref} has several classes; "
                                  f"rank by one of them, e.g. rank_by = \"{ref}:{c.labels[0]}\"")
            out[g.rank_by] = c
    for pred in [recipe.where, *(g.where for g in recipe.groups)]:
        for cid in referenced_classifiers(store, pred):
            c = load(store, cid)
            out.setdefault(cid, c)
    return out


def _rank_groups(store: Store, recipe: MixRecipe, used: dict[str, Any]) -> None:
    """Groups ranked by a classifier draw highest score first; `top_share` keeps only the top."""
    for i, g in enumerate(recipe.groups):
        if g.rank_by is None:
            continue
        c = used[g.rank_by]
        label = g.rank_by.partition(":")[2] or "positive"
        store.execute(f"""CREATE OR REPLACE TEMP TABLE _ranked AS
            SELECT e.sample_id, row_number() OVER (ORDER BY cs.score DESC NULLS LAST, e.draw) AS r, count(*) OVER () AS n
            FROM _eligible e LEFT JOIN (SELECT sample_id, any_value(score) AS score FROM classifier_scores
                                        WHERE classifier_id = ? AND label = ? GROUP BY 1) cs USING (sample_id)
            WHERE e.grp = {int(i)}""", [c.classifier_id, label])
        if g.top_share is not None:
            store.execute(f"""DELETE FROM _eligible WHERE grp = {int(i)} AND sample_id IN (
                SELECT sample_id FROM _ranked WHERE r > greatest(1, CAST(ceil(n * {float(g.top_share)}) AS BIGINT)))""")
        store.execute("UPDATE _eligible SET draw = printf('%012d', r._r) FROM (SELECT sample_id, r AS _r FROM _ranked) r "
                      "WHERE _eligible.sample_id = r.sample_id")
        store.execute("DROP TABLE IF EXISTS _ranked")


def _cap_groups(store: Store, recipe: MixRecipe) -> None:
    for i, g in enumerate(recipe.groups):
        if g.max_docs is not None:
            store.execute(f"""DELETE FROM _eligible WHERE grp = {int(i)} AND sample_id IN (
                SELECT sample_id FROM (SELECT sample_id, row_number() OVER (ORDER BY draw) AS n FROM _eligible
                                       WHERE grp = {int(i)}) WHERE n > {int(g.max_docs)})""")


def _build(store: Store, recipe: MixRecipe, at: str | None, snapshot: int | None) -> MixResult:
    resolved = recipe.resolved()
    used = _classifiers(store, recipe)
    if used:
        # The mix id depends on the classifier versions whose scores shaped it.
        resolved["classifiers"] = {ref: c.classifier_id for ref, c in sorted(used.items())}
    base = scope(store, recipe.where, "s")
    status_sql = []
    if "kept" in recipe.status:
        status_sql.append("st.status = 'kept'")
    if "uncurated" in recipe.status:
        status_sql.append("st.status IS NULL")
    depth_sql = f"AND s.synth_depth <= {int(recipe.max_synth_depth)}" if recipe.max_synth_depth is not None else ""
    group_preds = [scope(store, g.where, "s") for g in recipe.groups]
    group_case = "CASE " + " ".join(f"WHEN {p} THEN {i}" for i, p in enumerate(group_preds)) + " END"
    seed = int(recipe.seed)
    with store.run("mix", "mix_build_v1", {**resolved, **({"snapshot": int(snapshot)} if snapshot is not None else {})}) as run, \
            _reading_at(store, at):
        if used and at is None:
            # Every sample the mix could draw gets each classifier's score first (cached ones are kept).
            from mixline.curation.classifier import ensure_scores

            candidates = (f"""SELECT s.sample_id FROM samples s LEFT JOIN sample_status st USING (sample_id)
                              WHERE s.kind <> 'eval' AND ({' OR '.join(status_sql)}) {depth_sql} AND {not_raw_parent("s")}""")
            for c in {c.classifier_id: c for c in used.values()}.values():
                ensure_scores(store, c, candidates, run.run_id)
        store.execute(f"""
            CREATE OR REPLACE TEMP TABLE _eligible AS
            SELECT s.sample_id, s.source, s.kind, s.domain, s.synth_depth, s.content_hash,
                   coalesce(s.lang, 'und') AS lang, {group_case} AS grp,
                   md5(s.sample_id || ':{seed}') AS draw,
                   md5('holdout:' || s.sample_id || ':{seed}') AS hdraw
            FROM samples s LEFT JOIN sample_status st USING (sample_id)
            WHERE s.kind <> 'eval' AND {base} AND ({' OR '.join(status_sql)}) {depth_sql}
              AND {not_raw_parent("s")}""")
        store.execute("DELETE FROM _eligible WHERE grp IS NULL")
        _rank_groups(store, recipe, used)
        _cap_groups(store, recipe)
        if not store.scalar("SELECT count(*) FROM _eligible"):
            raise ConfigError(
                f"mix {recipe.name}: no eligible samples. Only samples that curation kept can enter a mix "
                "(run `mixline curate` first, or set status = [\"kept\", \"uncurated\"]), eval samples never do, "
                "and every group's `where` must match something")
        if at is None:  # at a snapshot, the token counts stored then are the ones the mix used
            count_tokens(store, recipe, run.run_id)
        # New columns come from a rebuild, not ALTER TABLE: ALTER ... ADD COLUMN on a large
        # temp table inside a transaction lost rows in DuckDB 1.5.5.
        store.execute(f"""CREATE OR REPLACE TEMP TABLE _eligible AS
            SELECT e.*, {TOKENS_SQL} AS tokens, 'train' AS split
            FROM _eligible e JOIN samples s USING (sample_id)""")
        _holdout(store, recipe)
        _source_caps(store, recipe)
        _lang_caps(store, recipe)
        members = _select(store, recipe)
        store.con.register("_members", members)
        try:
            _check_synthetic(store, recipe, members.num_rows)
            mix_id = _mix_id(resolved, members)
            if at is not None:
                store.execute(f"USE {lake.ALIAS}")  # writes go to the current store
            created = not store.scalar("SELECT count(*) FROM mixes WHERE mix_id = ?", [mix_id])
            if created:
                store.execute("INSERT INTO mix_members SELECT ?, sample_id, repeats, split FROM _members", [mix_id])
        finally:
            store.con.unregister("_members")
        if created:
            store.append_rows("mixes", [{"mix_id": mix_id, "name": recipe.name, "recipe": canonical_json(resolved),
                                         "recipe_hash": config_hash(resolved), "run_id": run.run_id}])
            store.append_rows("classifier_uses", [{"classifier_id": cid, "run_id": run.run_id, "mix_id": mix_id, "step": None}
                                                  for cid in sorted({c.classifier_id for c in used.values()})])
        summary = describe(store, mix_id)
        run.stats.update({"mix_id": mix_id, "members": summary["members"], "tokens": summary["tokens"],
                          "synthetic_share": summary["synthetic_share"]})
    return MixResult(mix_id, recipe.name, created, summary)


def _holdout(store: Store, recipe: MixRecipe) -> None:
    h = recipe.holdout
    if h.sources:
        store.execute("UPDATE _eligible SET split = 'heldout' WHERE list_contains(?, source)", [list(h.sources)])
    if h.fraction > 0:
        # Stratified: the same fraction of every group, by a seeded hash rank. Canary copies are
        # there to be trained on and never held out (one held-out copy would exclude the rest as
        # its near-duplicates).
        store.execute(f"""
            UPDATE _eligible SET split = 'heldout' WHERE sample_id IN (
                SELECT sample_id FROM (SELECT sample_id, percent_rank() OVER (PARTITION BY grp ORDER BY hdraw) AS r
                                       FROM _eligible WHERE split = 'train' AND sample_id NOT IN ({CANARY_SAMPLES}))
                WHERE r < {float(h.fraction)})""")
    if h.sources or h.fraction > 0:
        _drop_train_near_heldout(store)


def _drop_train_near_heldout(store: Store) -> None:
    """Train samples that are near-duplicates of a held-out one leave the train split."""
    from mixline.curation.dedup.minhash import MinHashDedup

    rows = store.execute("SELECT e.sample_id, s.text, e.split FROM _eligible e JOIN samples s USING (sample_id) ORDER BY e.sample_id").fetchall()
    step = MinHashDedup()
    keys = step.band_keys(step.signatures([t for _, t, _ in rows]))
    held = {int(k) for i, (_, _, sp) in enumerate(rows) if sp == "heldout" for k in keys[i]}
    drop = [rows[i][0] for i in range(len(rows)) if rows[i][2] == "train" and any(int(k) in held for k in keys[i])]
    if drop:
        store.con.register("_near", pa.table({"sample_id": drop}))
        try:
            store.execute("UPDATE _eligible SET split = 'excluded' WHERE sample_id IN (SELECT sample_id FROM _near)")
        finally:
            store.con.unregister("_near")


def _source_caps(store: Store, recipe: MixRecipe) -> None:
    if recipe.max_docs_per_source is not None:
        store.execute(f"""DELETE FROM _eligible WHERE split = 'train' AND sample_id IN (
            SELECT sample_id FROM (SELECT sample_id, row_number() OVER (PARTITION BY source ORDER BY draw) AS n
                                   FROM _eligible WHERE split = 'train') WHERE n > {int(recipe.max_docs_per_source)})""")
    if recipe.max_tokens_per_source is not None:
        store.execute(f"""DELETE FROM _eligible WHERE split = 'train' AND sample_id IN (
            SELECT sample_id FROM (SELECT sample_id, sum(tokens) OVER (PARTITION BY source ORDER BY draw
                                   ROWS UNBOUNDED PRECEDING) AS c FROM _eligible WHERE split = 'train')
            WHERE c > {int(recipe.max_tokens_per_source)})""")


def _lang_caps(store: Store, recipe: MixRecipe) -> None:
    """Per-language caps, in each language's draw order: one number for every language, or a table of some."""
    for cap, measure in ((recipe.max_docs_per_lang, "1"), (recipe.max_tokens_per_lang, "tokens")):
        if cap is None:
            continue
        limits = cap if isinstance(cap, dict) else None
        for lang, value in (limits or {}).items():
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"mix {recipe.name}: per-language cap for {lang!r} is {value!r}; give a whole number >= 0")
        limit_sql = ("CASE lang " + " ".join(f"WHEN '{str(k).replace(chr(39), chr(39) * 2)}' THEN {int(v)}" for k, v in limits.items())
                     + " ELSE NULL END") if limits else str(int(cap))  # type: ignore[arg-type]
        store.execute(f"""DELETE FROM _eligible WHERE split = 'train' AND sample_id IN (
            SELECT sample_id FROM (SELECT sample_id, lang, sum({measure}) OVER (PARTITION BY lang ORDER BY draw
                                   ROWS UNBOUNDED PRECEDING) AS c FROM _eligible WHERE split = 'train')
            WHERE c > {limit_sql})""")


def _select(store: Store, recipe: MixRecipe) -> pa.Table:
    """Members as (sample_id, repeats, split); refuses quotas that cannot be met.

    Members are gathered in Arrow, not in a temp table: inserting more than one row group
    into a temp table created inside the run's transaction lost the rows in DuckDB 1.5.5.
    """
    parts = [store.execute("SELECT sample_id, 1::INTEGER AS repeats, 'heldout' AS split FROM _eligible WHERE split = 'heldout'").to_arrow_table()]
    for i, g in enumerate(recipe.groups):
        avail_docs, avail_tokens = store.one(
            "SELECT count(*), coalesce(sum(tokens), 0) FROM _eligible WHERE grp = ? AND split = 'train'", [i])
        if g.weight is not None:
            target, unit = int(round(g.weight * int(recipe.total_tokens or 0))), "tokens"
        elif g.tokens is not None:
            target, unit = int(g.tokens), "tokens"
        elif g.docs is not None:
            target, unit = int(g.docs), "docs"
        else:
            parts.append(store.execute(f"SELECT sample_id, 1::INTEGER AS repeats, 'train' AS split FROM _eligible WHERE grp = {int(i)} AND split = 'train'").to_arrow_table())
            continue
        avail = avail_tokens if unit == "tokens" else avail_docs
        if target > avail * g.max_repeats:
            raise ConfigError(
                f"mix {recipe.name}: group {g.name!r} needs {target:,} {unit} but only {avail:,} are eligible"
                + (f" (x{g.max_repeats} repeats = {avail * g.max_repeats:,})" if g.max_repeats > 1 else "")
                + f"; short by {target - avail * g.max_repeats:,}. Lower the quota, raise max_repeats, or widen `where`")
        full = target // avail if avail else 0
        rest = target - full * avail
        # Every sample repeats `full` times; then samples in draw order take one more repeat
        # until the rest is met.
        t = store.execute(f"SELECT sample_id, tokens FROM _eligible WHERE grp = {int(i)} AND split = 'train' ORDER BY draw").to_arrow_table()
        m = t.column("tokens").to_numpy() if unit == "tokens" else np.ones(t.num_rows, dtype=np.int64)
        before = np.cumsum(m) - m
        repeats = full + (before < rest).astype(np.int64)
        pick = repeats > 0
        parts.append(pa.table({"sample_id": t.column("sample_id").filter(pa.array(pick)),
                               "repeats": pa.array(repeats[pick].astype(np.int32)),
                               "split": pa.array(["train"] * int(pick.sum()), pa.string())}))
    members = pa.concat_tables([p.cast(parts[-1].schema) for p in parts])
    return members.sort_by("sample_id")


def _check_synthetic(store: Store, recipe: MixRecipe, members: int) -> None:
    if recipe.max_synthetic_share is None or not members:
        return
    total, synth = store.one("""
        SELECT sum(e.tokens * m.repeats), sum(CASE WHEN e.synth_depth > 0 THEN e.tokens * m.repeats ELSE 0 END)
        FROM _members m JOIN _eligible e USING (sample_id) WHERE m.split = 'train'""")
    share = (synth or 0) / (total or 1)
    if share > recipe.max_synthetic_share + 1e-12:
        over = (synth or 0) - recipe.max_synthetic_share * (total or 0)
        raise ConfigError(
            f"mix {recipe.name}: synthetic share {share:.3f} exceeds max_synthetic_share {recipe.max_synthetic_share} "
            f"by {share - recipe.max_synthetic_share:.3f} (about {math.ceil(over):,} synthetic tokens too many); "
            "lower the synthetic groups' quotas")


def _mix_id(resolved: dict[str, Any], members: pa.Table) -> str:
    h = hashlib.sha256(canonical_json(resolved).encode())
    for sid, rep, split in zip(members.column("sample_id").to_pylist(), members.column("repeats").to_pylist(),
                               members.column("split").to_pylist(), strict=True):
        h.update(f"{sid}:{rep}:{split};".encode())
    return "mix-" + h.hexdigest()[:24]


def resolve_mix(store: Store, ref: str) -> str:
    """A mix id from a full id, a mix name (the newest) or a unique id prefix."""
    return require_ref(store, "mix", ref)


def describe(store: Store, mix_id: str) -> dict[str, Any]:
    """Counts and tokens by split, kind, source, domain and language; synthetic share and depth."""
    tok = TOKENS_SQL

    def by(col: str) -> list[dict[str, Any]]:
        return store.rows(f"""SELECT {col} AS key, count(*) AS docs, sum(m.repeats) AS docs_with_repeats,
                                     sum({tok} * m.repeats) AS tokens
                              FROM mix_members m JOIN samples s USING (sample_id)
                              WHERE m.mix_id = ? AND m.split = 'train' GROUP BY 1 ORDER BY 4 DESC, 1""", [mix_id])

    totals = store.one(f"""SELECT count(*), coalesce(sum({tok} * m.repeats), 0),
                                  coalesce(sum(CASE WHEN s.synth_depth > 0 THEN {tok} * m.repeats END), 0)
                           FROM mix_members m JOIN samples s USING (sample_id) WHERE m.mix_id = ? AND m.split = 'train'""",
                       [mix_id])
    held = store.scalar("SELECT count(*) FROM mix_members WHERE mix_id = ? AND split = 'heldout'", [mix_id])
    return {
        "members": int(totals[0]), "tokens": int(totals[1]),
        "synthetic_share": float(totals[2]) / float(totals[1] or 1), "heldout": int(held),
        "by_kind": by("s.kind"), "by_source": by("s.source"), "by_domain": by("coalesce(s.domain, '(none)')"),
        "by_lang": by("coalesce(s.lang, 'und')"),
        "synth_depth": store.rows("""SELECT s.synth_depth AS depth, count(*) AS docs FROM mix_members m JOIN samples s USING (sample_id)
                                     WHERE m.mix_id = ? AND m.split = 'train' GROUP BY 1 ORDER BY 1""", [mix_id]),
        "token_counts": "estimate (characters / 4) unless the recipe names a tokenizer",
    }


def show(store: Store, ref: str) -> dict[str, Any]:
    mix_id = resolve_mix(store, ref)
    # The snapshot a mix was built from is the one its build run committed (DuckLake stores).
    row = store.rows(f"""SELECT m.mix_id, m.name, m.recipe, m.recipe_hash, m.run_id, m.created_at, r.snapshot_id
                        FROM mixes m LEFT JOIN {store.runs_sql()} r USING (run_id) WHERE m.mix_id = ?""", [mix_id])[0]
    import json

    row["recipe"] = json.loads(row["recipe"])
    from mixline.curation.classifier import mix_classifiers
    from mixline.pipelines.search import for_mix
    from mixline.store.canaries import mix_canaries

    return {**row, **describe(store, mix_id),
            "models": store.rows("SELECT model_id, name FROM models WHERE mix_id = ?", [mix_id]),
            "classifiers": mix_classifiers(store, mix_id), "canaries": mix_canaries(store, mix_id),
            "search": for_mix(store, mix_id),
            "trained_classifiers": store.rows("SELECT classifier_id, name, version FROM classifiers WHERE mix_id = ? "
                                              "ORDER BY name, version", [mix_id])}


def diff(store: Store, a_ref: str, b_ref: str) -> dict[str, Any]:
    a, b = resolve_mix(store, a_ref), resolve_mix(store, b_ref)
    rows = store.rows("""
        WITH a AS (SELECT sample_id, repeats FROM mix_members WHERE mix_id = ? AND split = 'train'),
             b AS (SELECT sample_id, repeats FROM mix_members WHERE mix_id = ? AND split = 'train')
        SELECT s.source,
               count(*) FILTER (WHERE a.sample_id IS NULL) AS added,
               count(*) FILTER (WHERE b.sample_id IS NULL) AS removed,
               count(*) FILTER (WHERE a.sample_id IS NOT NULL AND b.sample_id IS NOT NULL AND a.repeats <> b.repeats) AS repeats_changed
        FROM a FULL JOIN b USING (sample_id) JOIN samples s ON s.sample_id = coalesce(a.sample_id, b.sample_id)
        GROUP BY 1 HAVING added + removed + repeats_changed > 0 ORDER BY 1""", [a, b])
    da, db = describe(store, a), describe(store, b)
    return {"a": a, "b": b, "by_source": rows,
            "added": sum(r["added"] for r in rows), "removed": sum(r["removed"] for r in rows),
            "tokens": {"a": da["tokens"], "b": db["tokens"], "delta": db["tokens"] - da["tokens"]},
            "synthetic_share": {"a": da["synthetic_share"], "b": db["synthetic_share"]}}
