"""What each dashboard page shows, as plain dicts (the pages' JSON twins).

Every function reads through a read-only `Store` with bound parameters only; nothing here
takes SQL from a request. Sample text is what `trace` shows: raw parents that PII scrubbing
replaced, and text no pii step has scanned, read as withheld. Redactions are counts by type.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mixline.store.lineage import model_chain
from mixline.store.store import Store, key_of

from mixline.errors import NotFoundError

PAGE = 50
GRAPH_SAMPLES = 500  # descendants walked for a page; `mixline impact` lists them all
EXCERPT = 240
_ID = re.compile(r"^[0-9a-f]{1,32}$")


def freshness(store: Store) -> dict[str, Any]:
    """How fresh the data is: the newest committed run, and whether this is the read snapshot."""
    row = store.rows("""SELECT run_id, kind, step, coalesce(finished_at, started_at) AS at FROM runs
                        WHERE status = 'ok' ORDER BY coalesce(finished_at, started_at) DESC LIMIT 1""")
    running = store.rows(f"SELECT run_id, kind, step, started_at FROM {store.runs_sql()} WHERE status = 'running' "
                         "ORDER BY started_at DESC LIMIT 1")
    snap = store.snapshot
    return {"latest_run": row[0] if row else None, "running": running[0] if running else None,
            "source": "read snapshot (a writer holds the store)" if snap else "store",
            "snapshot": snap}


def overview(store: Store) -> dict[str, Any]:
    """Counts by kind, source and domain, the synthetic-depth histogram, and the curation funnel."""
    def grouped(col: str) -> list[dict[str, Any]]:
        return store.rows(f"SELECT {col} AS key, count(*) AS samples, sum(n_chars) AS chars FROM samples GROUP BY 1 ORDER BY 2 DESC, 1")

    return {
        "samples": int(store.scalar("SELECT count(*) FROM samples")),
        "by_kind": grouped("kind"), "by_source": grouped("source"), "by_domain": grouped("coalesce(domain, '(none)')"),
        "by_lang": grouped("coalesce(lang, '(not identified)')"),
        "synth_depth": store.rows("SELECT synth_depth AS depth, count(*) AS samples FROM samples GROUP BY 1 ORDER BY 1"),
        "counts": {t: int(store.scalar(f"SELECT count(*) FROM {t}"))
                   for t in ("runs", "mixes", "models", "quarantine", "drift")},
    }


def curate_runs(store: Store) -> list[str]:
    return [r[0] for r in store.execute(
        "SELECT run_id FROM runs WHERE kind = 'curate' AND status = 'ok' ORDER BY started_at, run_id").fetchall()]


def funnel(store: Store, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Per curation run and kind: inputs, kept, dropped (by the step and reason that dropped each), rewritten.

    A sample PII scrubbing rewrote counts once, as its input: its scrubbed copy's later decisions
    (dedup, toxicity) are folded into it."""
    rows = store.rows("""
        WITH scrub AS (SELECT child_id, parent_id, run_id FROM edges WHERE relation = 'scrubbed_from'),
        -- A scrubbed copy's decisions count for the input it was made from: the unit is the input.
        dd AS (
            SELECT d.run_id, coalesce(sc.parent_id, d.sample_id) AS sample_id, d.verdict, d.step, d.reason
            FROM decisions d JOIN runs r USING (run_id)
            LEFT JOIN scrub sc ON sc.child_id = d.sample_id AND sc.run_id = d.run_id
            WHERE r.kind = 'curate' AND r.status = 'ok' AND (? OR d.run_id IN (SELECT unnest(?::VARCHAR[])))),
        per AS (
            SELECT d.run_id, d.sample_id,
                   bool_or(d.verdict = 'dropped') AS dropped, bool_or(d.verdict = 'rewritten') AS rewritten,
                   arg_min(CASE WHEN d.verdict = 'dropped' THEN d.step || ': ' || coalesce(d.reason, '?') END,
                           CASE WHEN d.verdict = 'dropped' THEN 0 ELSE 1 END) AS reason
            FROM dd d
            GROUP BY 1, 2)
        SELECT p.run_id, s.kind, count(*) AS n_in, count(*) FILTER (WHERE NOT p.dropped) AS kept,
               count(*) FILTER (WHERE p.dropped) AS dropped, count(*) FILTER (WHERE p.rewritten AND NOT p.dropped) AS rewritten,
               list(p.reason) FILTER (WHERE p.dropped) AS reasons
        FROM per p JOIN samples s USING (sample_id)
        GROUP BY 1, 2 ORDER BY 1, 2""", [run_ids is None, run_ids or []])
    started = {r["run_id"]: r for r in store.rows(
        "SELECT run_id, started_at, config_hash FROM runs WHERE kind = 'curate' AND status = 'ok'")}
    out = []
    for r in rows:
        by_reason: dict[str, int] = {}
        for reason in r.pop("reasons") or []:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        run = started.get(r["run_id"], {})
        out.append({**r, "started_at": run.get("started_at"), "dropped_by": dict(sorted(by_reason.items(), key=lambda kv: -kv[1]))})
    return out


def _shown_text(store: Store, ids: list[str]) -> dict[str, str | None]:
    """Why each of these samples' text may not be shown (None: it may): raw parents that a scrubbed
    child replaced, text the pii step dropped, and text no pii step has scanned (or written)."""
    if not ids:
        return {}
    # Edges are found by their integer keys (inlined: they are computed here, and a bound int over
    # 2**63 would not be typed UBIGINT), which the lineage indexes serve; one pass for both ends.
    keys = ", ".join(str(key_of(i)) for i in ids)
    wanted = set(ids)
    raw: set[str] = set()
    ok: set[str] = set()
    for parent, child in store.execute(f"""SELECT parent_id, child_id FROM edges WHERE relation = 'scrubbed_from'
                                           AND (parent_key IN ({keys}) OR child_key IN ({keys}))""").fetchall():
        if parent in wanted:
            raw.add(parent)
        if child in wanted:
            ok.add(child)
    pii = dict(store.execute("""SELECT d.sample_id, arg_max(d.verdict, coalesce(r.started_at, TIMESTAMP '1970-01-01'))
                                FROM decisions d LEFT JOIN runs r USING (run_id)
                                WHERE d.sample_id IN (SELECT unnest(?::VARCHAR[])) AND regexp_matches(d.step, '^pii_v[0-9]+$')
                                GROUP BY 1""", [ids]).fetchall())
    from mixline.store.canaries import canary_samples

    canaries = canary_samples(store, ids)
    out: dict[str, str | None] = {}
    for i in ids:
        if i in canaries:
            out[i] = "a canary copy: its planted secret is never shown; open it to see the text with the secret masked"
        elif i in raw:
            out[i] = "raw text that PII scrubbing replaced; open it for its scrubbed child"
        elif i in ok or pii.get(i) in ("kept", "rewritten"):
            out[i] = None
        elif i in pii:
            out[i] = "the pii step dropped it for what it holds; open it to see why"
        else:
            out[i] = "not scanned for PII (dropped before the pii step, or not curated); open it to see why"
    return out


def search(store: Store, q: str = "", kind: str = "", source: str = "", page: int = 1) -> dict[str, Any]:
    """Samples by id prefix or text, filtered by kind and source; scrubbed excerpts only."""
    where, params = ["TRUE"], []
    q = q.strip()
    if q:
        if _ID.match(q.lower()) and len(q) >= 6:
            where.append("starts_with(s.sample_id, ?)")
            params.append(q.lower())
        else:
            # Raw parents never match a text search: their text is not to be probed.
            where.append("contains(lower(s.text), lower(?)) AND s.sample_id NOT IN "
                         "(SELECT parent_id FROM edges WHERE relation = 'scrubbed_from')")
            params.append(q)
    if kind:
        where.append("s.kind = ?")
        params.append(kind)
    if source:
        where.append("s.source = ?")
        params.append(source)
    page = max(1, page)
    # In store order (ingest order): with no sort, a page stops scanning once it has its rows.
    rows = store.rows(f"""SELECT s.sample_id, s.kind, s.source, s.domain, s.synth_depth, s.n_chars,
                                 left(s.text, {EXCERPT}) AS excerpt
                          FROM samples s WHERE {' AND '.join(where)}
                          LIMIT {PAGE + 1} OFFSET {(page - 1) * PAGE}""", params)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    hidden = _shown_text(store, [r["sample_id"] for r in rows])
    for r in rows:
        if hidden.get(r["sample_id"]):
            r["excerpt"] = f"[text withheld: {hidden[r['sample_id']]}]"
            r["withheld"] = True
    return {"q": q, "kind": kind, "source": source, "page": page, "more": more, "samples": rows,
            "kinds": [r[0] for r in store.execute("SELECT DISTINCT kind FROM samples ORDER BY 1").fetchall()],
            "sources": [r[0] for r in store.execute("SELECT DISTINCT name FROM sources ORDER BY 1").fetchall()]}


def sample(store: Store, ref: str) -> dict[str, Any]:
    """One sample: scrubbed text, metadata, decisions, redaction counts, and its family graph."""
    from mixline.dashboards import graph
    from mixline.store.lineage import impact, trace

    t = trace(store, ref).as_dict()
    sid = t["sample"]["sample_id"]
    imp = impact(store, [sid], max_samples=GRAPH_SAMPLES).as_dict()
    sample_ids = [sid, *[a["sample_id"] for a in t["ancestors"]], *[d["sample_id"] for d in imp["samples"]]]
    mix_ids = [m["mix_id"] for m in imp["mixes"]]
    members = [tuple(r) for r in store.execute(
        "SELECT mix_id, sample_id FROM mix_members WHERE mix_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND sample_id IN (SELECT unnest(?::VARCHAR[]))", [mix_ids, sample_ids[:5000]]).fetchall()] if mix_ids else []
    model_ids = [m["model_id"] for m in imp["models"]]
    models = store.rows("SELECT model_id, name, mix_id, parent_model_id, method FROM models "
                        "WHERE model_id IN (SELECT unnest(?::VARCHAR[]))", [model_ids]) if model_ids else []
    g = graph.build(t, imp, members, models)  # type: ignore[arg-type]
    _data_ancestry(store, g, [x["mix_id"] for x in t["generated_by"] if x.get("mix_id")])
    return {"trace": t, "impact": {"samples": len(imp["samples"]), "truncated": bool(imp.get("truncated")),
                                   "mixes": imp["mixes"], "models": imp["models"]},
            "graph": g.to_dict(), "svg": graph.svg(g)}


def _data_ancestry(store: Store, g: Any, mix_ids: list[str], per_mix: int = 4, depth: int = 8) -> None:
    """Back through the data: which models wrote the synthetic members of the mix a generator was
    trained on, the mixes those models were trained on, and so on down to human data."""
    seen: set[str] = set()
    frontier = [m for m in mix_ids if m]
    for _ in range(depth):
        frontier = [m for m in frontier if m not in seen]
        if not frontier:
            return
        seen.update(frontier)
        rows = store.rows("""
            SELECT mm.mix_id, gen.model_id, any_value(md.name) AS name, any_value(md.mix_id) AS trained_on,
                   any_value(md.method) AS method, count(*) AS samples
            FROM mix_members mm JOIN generations gen USING (sample_id) JOIN models md ON md.model_id = gen.model_id
            WHERE mm.mix_id IN (SELECT unnest(?::VARCHAR[])) AND mm.split = 'train'
            GROUP BY 1, 2 QUALIFY row_number() OVER (PARTITION BY mm.mix_id ORDER BY count(*) DESC, gen.model_id) <= ?""",
                          [frontier, per_mix])
        nxt = []
        for r in rows:
            g.node(r["model_id"], "model", r["name"] or r["model_id"][:16], f"{r['method'] or ''} {r['model_id'][:14]}",
                   f"/models/{r['model_id']}")
            g.edge(r["model_id"], r["mix_id"], f"wrote {r['samples']} members")
            if r["trained_on"]:
                g.node(r["trained_on"], "mix", r["trained_on"][:16], "trained on", f"/mixes/{r['trained_on']}")
                g.edge(r["trained_on"], r["model_id"], "trained on")
                nxt.append(r["trained_on"])
        frontier = nxt


def mixes(store: Store) -> list[dict[str, Any]]:
    from mixline.pipelines.mix import TOKENS_SQL

    return store.rows(f"""
        SELECT m.mix_id, m.name, m.created_at, m.run_id, count(mm.sample_id) FILTER (WHERE mm.split = 'train') AS members,
               coalesce(sum({TOKENS_SQL} * mm.repeats) FILTER (WHERE mm.split = 'train'), 0) AS tokens,
               coalesce(sum({TOKENS_SQL} * mm.repeats) FILTER (WHERE mm.split = 'train' AND s.synth_depth > 0), 0)
                 / greatest(coalesce(sum({TOKENS_SQL} * mm.repeats) FILTER (WHERE mm.split = 'train'), 0), 1) AS synthetic_share,
               (SELECT count(*) FROM models md WHERE md.mix_id = m.mix_id) AS models
        FROM mixes m LEFT JOIN mix_members mm USING (mix_id) LEFT JOIN samples s USING (sample_id)
        GROUP BY ALL ORDER BY m.created_at DESC, m.mix_id""")


def mix(store: Store, ref: str) -> dict[str, Any]:
    from mixline.pipelines.mix import show

    return show(store, ref)


def mix_diff(store: Store, a: str, b: str) -> dict[str, Any]:
    from mixline.pipelines.mix import diff

    return diff(store, a, b)


def models(store: Store) -> list[dict[str, Any]]:
    return store.rows("""
        SELECT m.model_id, m.name, m.stage, m.method, m.parent_model_id, m.mix_id, m.created_at,
               (SELECT count(*) FROM generations g WHERE g.model_id = m.model_id) AS generated
        FROM models m ORDER BY m.created_at DESC, m.model_id""")


def model(store: Store, ref: str) -> dict[str, Any]:
    """A model's parent chain with the mix of each stage, its loss curve, and its evals per set."""
    from mixline.store.refs import require_ref

    model_id = require_ref(store, "model", ref)
    chain = model_chain(store, model_id, limit=100)
    for r in chain:
        cfg = json.loads(r.pop("config") or "{}")
        r["loss_curve"] = cfg.pop("loss_curve", [])
        r["config"] = cfg
    if chain and chain[-1]["parent_model_id"] not in (None, *(r["model_id"] for r in chain)) and len(chain) < 100:
        chain.append({"model_id": chain[-1]["parent_model_id"], "name": None, "missing": True})
    evals = store.rows("""SELECT e.eval_set, e.metric, e.value, e.n_docs, r.started_at, e.run_id FROM evals e
                          LEFT JOIN runs r USING (run_id) WHERE e.model_id = ? ORDER BY r.started_at, e.eval_set""", [model_id])
    generated = int(store.scalar("SELECT count(*) FROM generations WHERE model_id = ?", [model_id]))
    from mixline.pipelines.audit import latest

    return {"model": chain[0], "chain": chain, "evals": evals, "generated": generated, "audit": latest(store, model_id)}


def loops(store: Store) -> list[dict[str, Any]]:
    return store.rows("""SELECT loop_id, max(generation) AS generations, list(DISTINCT strategy ORDER BY strategy) AS strategies,
                                count(*) AS stages FROM loop_state GROUP BY 1 ORDER BY 1""")


def loop(store: Store, loop_id: str) -> dict[str, Any]:
    """Bits/char on held-out human text per generation and strategy, with gate and drift alerts."""
    rows = store.rows("SELECT generation, strategy, stage, output FROM loop_state WHERE loop_id = ? ORDER BY generation, strategy, stage",
                      [loop_id])
    if not rows:
        known = [r["loop_id"] for r in loops(store)]
        raise NotFoundError(f"loop {loop_id!r} has no recorded stages; loops: {', '.join(known) or 'none'}")
    gens: dict[tuple[int, str], dict[str, Any]] = {}
    for r in rows:
        out = json.loads(r["output"])
        g = gens.setdefault((r["generation"], r["strategy"]), {"generation": r["generation"], "strategy": r["strategy"]})
        if r["stage"] == "eval":
            s: dict[str, Any] = next(iter(out.get("sets", {}).values()), {})
            g["bits_per_char"] = s.get("bits_per_char")
            g["tail_token_share"] = s.get("tail_token_share")
        elif r["stage"] == "train":
            g["model_id"] = out.get("model_id")
        elif r["stage"] in ("mix", "mix-gated"):
            g["mix_id"] = out.get("mix_id")
            g["gated"] = g.get("gated") or r["stage"] == "mix-gated"
        elif r["stage"] == "gate":
            g["mix_alert"], g["mix_moved"] = out.get("alert"), out.get("moved", [])
        elif r["stage"] == "drift":
            g["output_alert"], g["output_moved"] = out.get("alert"), out.get("moved", [])
    series = sorted(gens.values(), key=lambda g: (g["strategy"] != "real", g["strategy"], g["generation"]))
    base = next((g for g in series if g["strategy"] == "real"), None)
    strategies: dict[str, list[dict[str, Any]]] = {}
    for g in series:
        if g["strategy"] != "real":
            strategies.setdefault(g["strategy"], [base] if base else []).append(g)
    # Drift checks name the loop by its config name; the id adds the config hash.
    name = loop_id.rsplit("-", 1)[0] if re.fullmatch(r".+-[0-9a-f]{8}", loop_id) else loop_id
    from mixline.curation.drift_gate import trend

    try:
        trends = [{k: t[k] for k in ("strategy", "of", "flagged", "moved")} for t in trend(store, name)["trends"]]
    except NotFoundError:
        trends = []  # a loop run with drift = false records no checks
    return {"loop_id": loop_id, "name": name, "generations": series, "strategies": strategies, "trends": trends}


def drift(store: Store, subject: str = "") -> dict[str, Any]:
    """Every drift check, and one series per metric (distance against its threshold) across checks."""
    rows = store.rows("""SELECT run_id, subject, reference, metric, value, reference_value, distance, threshold, alert, created_at
                         FROM drift WHERE (? = '' OR subject LIKE ? || '%') ORDER BY created_at, run_id, metric""",
                      [subject, subject])
    checks: dict[str, dict[str, Any]] = {}
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        c = checks.setdefault(r["run_id"], {"run_id": r["run_id"], "subject": r["subject"], "reference": r["reference"],
                                            "created_at": r["created_at"], "alert": False, "moved": []})
        if r["alert"]:
            c["alert"] = True
            c["moved"].append(r["metric"])
        series.setdefault(r["metric"], []).append({"check": len(checks), "subject": r["subject"], "distance": r["distance"],
                                                   "threshold": r["threshold"], "alert": r["alert"], "value": r["value"],
                                                   "reference_value": r["reference_value"]})
    return {"subject": subject, "checks": list(checks.values()), "series": series}


def runs(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    return store.rows(f"""SELECT run_id, kind, step, step_version, config_hash, status, started_at, finished_at, stats, error
                          FROM {store.runs_sql()} ORDER BY started_at DESC LIMIT {int(limit)}""")


def classifiers(store: Store) -> list[dict[str, Any]]:
    from mixline.curation.classifier import list_all

    return list_all(store)


def classifier(store: Store, ref: str, bins: int = 20, examples: int = 8) -> dict[str, Any]:
    """One classifier: what it learned from, its held-out metrics, the distribution of the scores
    it gave (by source), the highest- and lowest-scored samples (scrubbed excerpts only), and every
    run and mix that used it."""
    from mixline.curation.classifier import load, show

    c = load(store, ref)
    d = show(store, c.classifier_id)
    binary = c.binary
    # One score per sample: the positive class (binary) or the winning class's probability.
    sql = f"""SELECT cs.sample_id, max(cs.score) AS score FROM classifier_scores cs
              WHERE cs.classifier_id = ? {"AND cs.label = 'positive'" if binary else ""} GROUP BY cs.sample_id"""
    hist = store.rows(f"""SELECT s.source, least(floor(x.score * {bins}), {bins - 1})::INT AS bin, count(*) AS n
                          FROM ({sql}) x JOIN samples s USING (sample_id) GROUP BY ALL ORDER BY 1, 2""", [c.classifier_id])
    ends = []
    for order in ("DESC", "ASC"):
        ends.append(store.rows(f"""SELECT x.sample_id, x.score, s.kind, s.source, left(s.text, {EXCERPT}) AS excerpt
                                   FROM ({sql}) x JOIN samples s USING (sample_id)
                                   ORDER BY x.score {order}, x.sample_id LIMIT {examples}""", [c.classifier_id]))
    hidden = _shown_text(store, [r["sample_id"] for rows in ends for r in rows])
    for rows in ends:
        for r in rows:
            if hidden.get(r["sample_id"]):
                r["excerpt"] = f"[text withheld: {hidden[r['sample_id']]}]"
                r["withheld"] = True
    if not binary:
        d["labelled"] = store.rows("""SELECT label, count(*) AS samples, avg(score) AS mean_confidence FROM (
                                        SELECT sample_id, arg_max(label, score) AS label, max(score) AS score
                                        FROM classifier_scores WHERE classifier_id = ? GROUP BY 1)
                                      GROUP BY 1 ORDER BY 2 DESC""", [c.classifier_id])
    return {"classifier": d, "binary": binary, "bins": bins, "histogram": hist, "top": ends[0], "bottom": ends[1]}


def searches(store: Store) -> list[dict[str, Any]]:
    """Every mixture search, with its fit and choice (an empty list on a store without them)."""
    if not store.table_exists("mix_searches"):
        return []
    rows = store.rows("""SELECT search_id, name, status, chosen_mix_id, created_at, result,
                                (SELECT count(*) FROM search_proxies p WHERE p.search_id = m.search_id) AS proxies
                         FROM mix_searches m ORDER BY created_at DESC, search_id""")
    for r in rows:
        res = json.loads(r.pop("result") or "{}")
        r["spearman_loo"] = res.get("fit", {}).get("target", {}).get("spearman_loo")
        r["verdict"] = res.get("verdict")
    return rows


def mix_search(store: Store, ref: str) -> dict[str, Any]:
    from mixline.pipelines.search import show

    return {"search": show(store, ref)}
