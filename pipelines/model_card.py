"""`mixline model card`: a model's provenance card, from the store.

It answers, for any model: every stage from the first base to this model (stage, method,
hyperparameters); each stage's mix (composition by kind, source and licence, synthetic share
and depth, PII handling, the share of toxicity-tagged text); the evaluations after each stage
with the change from the stage before, forgetting alerts included; drift and
self-consumption checks on its mixes; what it generated and which models trained on that.
A claim such as "we aligned the model" can be checked against it: which stage, which data,
which evaluations, and whether any adversarial evaluation was recorded at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mixline.curation.classifier import describe_metrics, mix_classifiers
from mixline.pipelines.search import for_mix
from mixline.store.lineage import model_chain
from mixline.store.refs import require_ref
from mixline.store.store import Store

SCHEMA_PATH = Path(__file__).with_name("model_card.schema.json")


def _mix_facts(store: Store, mix_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Composition, synthetic share and depth, PII handling and toxicity tags of several mixes,
    in one pass over their members (a card reads every stage's mix)."""
    from mixline.pipelines.mix import TOKENS_SQL

    if not mix_ids:
        return {}
    members = "SELECT mix_id, sample_id FROM mix_members WHERE mix_id IN (SELECT unnest($1::VARCHAR[])) AND split = 'train'"
    rows = store.rows(f"""
        SELECT mm.mix_id, s.kind, s.source, coalesce(src.license, '(unknown)') AS license, s.synth_depth AS depth,
               coalesce(s.lang, 'und') AS lang,
               count(*) AS docs, sum(mm.repeats) AS docs_with_repeats, sum({TOKENS_SQL} * mm.repeats) AS tokens
        FROM mix_members mm JOIN samples s USING (sample_id) LEFT JOIN sources src ON src.source_id = s.source_id
        WHERE mm.mix_id IN (SELECT unnest($1::VARCHAR[])) AND mm.split = 'train' GROUP BY ALL""", [mix_ids])
    redactions: dict[str, dict[str, int]] = {}
    for mix_id, etype, n in store.execute(f"""SELECT m.mix_id, r.entity_type, count(*) FROM redactions r JOIN ({members}) m
                                              USING (sample_id) GROUP BY 1, 2 ORDER BY 1, 2""", [mix_ids]).fetchall():
        redactions.setdefault(mix_id, {})[etype] = int(n)
    scrubbed = dict(store.execute(f"""SELECT m.mix_id, count(*) FROM edges e JOIN ({members}) m ON m.sample_id = e.child_id
                                      WHERE e.relation = 'scrubbed_from' GROUP BY 1""", [mix_ids]).fetchall())
    tags = {r[0]: (int(r[1]), int(r[2])) for r in store.execute(f"""
        WITH d AS (SELECT sample_id, bool_or(step LIKE 'pii%') AS scanned,
                          bool_or(step LIKE 'toxicity%' AND reason LIKE 'toxic%') AS toxic
                   FROM decisions WHERE step LIKE 'pii%' OR step LIKE 'toxicity%' GROUP BY 1)
        SELECT m.mix_id, count(*) FILTER (WHERE d.scanned), count(*) FILTER (WHERE d.toxic)
        FROM ({members}) m JOIN d USING (sample_id) GROUP BY 1""", [mix_ids]).fetchall()}
    out = {}
    for mix_id in mix_ids:
        mine = [r for r in rows if r["mix_id"] == mix_id]
        total = sum(int(r["tokens"] or 0) for r in mine) or 1

        def by(col: str, mine: list[dict[str, Any]] = mine, total: int = total) -> list[dict[str, Any]]:
            agg: dict[str, list[int]] = {}
            for r in mine:
                a = agg.setdefault(str(r[col]), [0, 0])
                a[0] += int(r["docs"])
                a[1] += int(r["tokens"] or 0)
            return [{"key": k, "docs": d, "tokens": t, "share": t / total}
                    for k, (d, t) in sorted(agg.items(), key=lambda kv: -kv[1][1])]

        depth = by("depth")
        n = sum(int(r["docs"]) for r in mine)
        scanned, toxic = tags.get(mix_id, (0, 0))
        n_scrubbed = int(scrubbed.get(mix_id, 0))
        out[mix_id] = {
            "mix_id": mix_id, "members": n, "tokens": total if mine else 0, "by_kind": by("kind"), "by_source": by("source"), "by_lang": by("lang"),
            "by_license": by("license"), "synthetic_share": sum(x["tokens"] for x in depth if x["key"] != "0") / total,
            "synth_depth": [{"depth": int(x["key"]), "tokens": x["tokens"], "share": x["share"]}
                            for x in sorted(depth, key=lambda x: int(x["key"]))],
            "pii": {"members_scanned": scanned, "members_scrubbed": n_scrubbed, "redactions": redactions.get(mix_id, {}),
                    "unscanned": max(0, n - scanned - n_scrubbed),
                    "handling": "detected values replaced with type placeholders; raw text stays in the store"},
            "toxicity_tagged_share": toxic / n if n else 0.0,
            # Learned classifiers whose scores chose or ranked the mix's members.
            "classifiers": [{k: c[k] for k in ("classifier_id", "name", "version", "method", "trained_on", "metrics")}
                            for c in mix_classifiers(store, mix_id)],
            # The mixture search whose chosen weights the mix has, with how well it predicted.
            "weights_from_search": for_mix(store, mix_id)}
    return out


def _checks(store: Store, mix_id: str) -> dict[str, Any]:
    drift = []
    for r in store.rows("""SELECT run_id, step, stats, started_at FROM runs WHERE status = 'ok'
                           AND step IN ('drift_check_mix_v1', 'self_consumption_v1') AND json_extract_string(config, '$.mix_id') = ?
                           ORDER BY started_at""", [mix_id]):
        stats = json.loads(r["stats"] or "{}")
        if r["step"] == "drift_check_mix_v1":
            moved = [m for (m,) in store.execute("SELECT metric FROM drift WHERE run_id = ? AND alert ORDER BY metric",
                                                  [r["run_id"]]).fetchall()]
            drift.append({"check": "drift gate (check-mix)", "run_id": r["run_id"], "at": r["started_at"],
                          "verdict": stats.get("gate"), "moved": moved})
        else:
            drift.append({"check": "self-consumption", "run_id": r["run_id"], "at": r["started_at"],
                          "verdict": "flagged" if stats.get("self_consumed") or stats.get("family") else "clean",
                          "self_consumed": stats.get("self_consumed"), "family": stats.get("family")})
    return {"checks": drift}


def card(store: Store, ref: str) -> dict[str, Any]:
    """The provenance card of a model, as a dict that follows model_card.schema.json."""
    model_id = require_ref(store, "model", ref)
    chain = model_chain(store, model_id)[::-1]  # first base first
    stages = []
    prev_evals: dict[str, float] = {}
    facts = _mix_facts(store, sorted({m["mix_id"] for m in chain if m["mix_id"]}))
    mixes_seen: dict[str, dict[str, Any]] = {}
    adversarial = []
    for m in chain:
        cfg = json.loads(m["config"] or "{}")
        cfg.pop("loss_curve", None)
        evals = store.rows("""SELECT e.eval_set, e.metric, e.value, e.n_docs, e.role, r.started_at, e.run_id
                              FROM evals e LEFT JOIN runs r USING (run_id) WHERE e.model_id = ?
                              ORDER BY r.started_at, e.eval_set, e.metric""", [m["model_id"]])
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for e in evals:
            latest[(e["eval_set"], e["metric"])] = e
        ev_out = []
        for (name, metric), e in sorted(latest.items()):
            before = prev_evals.get(f"{name}/{metric}")
            ev_out.append({"set": name, "metric": metric, "value": e["value"], "docs": e["n_docs"], "role": e["role"],
                           "previous_stage": before, "change": None if before is None else e["value"] - before})
            if e["role"] == "adversarial":
                adversarial.append({"model_id": m["model_id"], "set": name, "metric": metric, "value": e["value"]})
        prev_evals.update({f"{n}/{mt}": e["value"] for (n, mt), e in latest.items()})
        alerts = store.rows("""SELECT before_model_id, eval_set, bits_before, bits_after, relative_change, ci_low, ci_high, threshold
                               FROM model_comparisons WHERE after_model_id = ? AND alert ORDER BY created_at""", [m["model_id"]])
        mix = None
        if m["mix_id"]:
            if m["mix_id"] not in mixes_seen:
                mixes_seen[m["mix_id"]] = {**facts[m["mix_id"]], **_checks(store, m["mix_id"])}
            mix = mixes_seen[m["mix_id"]]
        stages.append({"model_id": m["model_id"], "name": m["name"], "stage": m["stage"] or m["method"], "method": m["method"],
                       "parents": cfg.get("parents") or ([m["parent_model_id"]] if m["parent_model_id"] else []),
                       "hyperparameters": {k: v for k, v in cfg.items() if k not in ("parents", "registered_from", "notes")},
                       "weight_hash": m["weight_hash"], "checkpoint": m["checkpoint_uri"],
                       "trained_elsewhere": m["method"] == "external" or "registered_from" in cfg, "created_at": m["created_at"],
                       "mix": mix, "evaluations": ev_out, "forgetting_alerts": alerts})
    gen = store.rows("""SELECT g.model_id, count(*) AS samples, count(DISTINCT s.source) AS sources FROM generations g
                        JOIN samples s USING (sample_id) WHERE g.model_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1""",
                     [[m["model_id"] for m in chain]])
    downstream = store.rows("""SELECT DISTINCT md.model_id, md.name, md.mix_id FROM generations g JOIN mix_members mm USING (sample_id)
                               JOIN models md ON md.mix_id = mm.mix_id WHERE g.model_id = ? ORDER BY 1""", [model_id])
    return {"schema": "mixline.model_card/1", "model_id": model_id, "name": chain[-1]["name"] if chain else None,
            "stages": stages, "generated": gen, "trained_on_its_output": downstream,
            "adversarial_evaluation": adversarial or "no adversarial evaluation recorded",
            "privacy_audit": _privacy(store, model_id)}


def _privacy(store: Store, model_id: str) -> dict[str, Any] | str:
    """The model's newest privacy audit with the data it was measured on, or why there is none."""
    from mixline.pipelines.audit import latest

    a = latest(store, model_id)
    if a is None:
        return "no privacy audit recorded"
    r = a["results"]
    return {"audit_id": a["audit_id"], "run_id": a["run_id"], "measured_on_mix": a["mix_id"], "created_at": a["created_at"],
            "candidates": a["config"].get("candidates"), "limits": a["limits"], "passed": a["passed"],
            "exposure": r["exposure"], "extraction": r["extraction"], "membership": r["membership"]}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render_md(c: dict[str, Any]) -> str:
    out = [f"# Provenance card: {c['name']} (`{c['model_id']}`)", ""]
    out.append(f"{len(c['stages'])} stages, first base first. Each says what changed the model, with what data, "
               "and what was measured after it.")
    for i, s in enumerate(c["stages"], start=1):
        out += ["", f"## Stage {i}: {s['stage']} ({s['method']}) `{s['model_id']}`", ""]
        out.append(f"- name: {s['name']}; parents: {', '.join(f'`{p}`' for p in s['parents']) or 'none (a base)'}")
        if s["trained_elsewhere"]:
            out.append("- trained outside mixline and registered: the data and hyperparameters are what was registered")
        hp = {k: v for k, v in s["hyperparameters"].items() if k not in ("mix_id", "base", "base_ref")}
        out.append(f"- hyperparameters: `{json.dumps(hp, sort_keys=True, default=str)[:600]}`")
        out.append(f"- weights: {s['weight_hash'] or '-'}")
        mix = s["mix"]
        if mix:
            out.append(f"- data: mix `{mix['mix_id']}`, {mix['members']:,} documents, {mix['tokens']:,} tokens; "
                       f"synthetic share {_pct(mix['synthetic_share'])}; toxicity-tagged {_pct(mix['toxicity_tagged_share'])}")
            out.append("  - by kind: " + ", ".join(f"{x['key']} {_pct(x['share'])}" for x in mix["by_kind"]))
            out.append("  - by language: " + ", ".join(f"{x['key']} {_pct(x['share'])}" for x in mix["by_lang"][:15]))
            out.append("  - by source: " + ", ".join(f"{x['key']} {_pct(x['share'])}" for x in mix["by_source"][:10]))
            out.append("  - by licence: " + ", ".join(f"{x['key']} {_pct(x['share'])}" for x in mix["by_license"]))
            out.append("  - synthetic depth: " + ", ".join(f"{x['depth']}: {_pct(x['share'])}" for x in mix["synth_depth"]))
            p = mix["pii"]
            out.append(f"  - PII: {p['members_scrubbed']:,} scrubbed documents, {p['members_scanned']:,} scanned, "
                       f"{p['unscanned']:,} not scanned; redactions " + (", ".join(f"{k} {v}" for k, v in p["redactions"].items()) or "none")
                       + f" ({p['handling']})")
            for c in mix.get("classifiers", []):
                out.append(f"  - shaped by classifier {c['name']}@v{c['version']} (`{c['classifier_id']}`, {c['method']}, "
                           f"trained on mix `{c['trained_on']}`; {describe_metrics(c['metrics'])})")
            sr = mix.get("weights_from_search")
            if sr:
                out.append(f"  - weights from mixture search `{sr['search_id']}`: {sr['proxies']} proxies, leave-one-out "
                           f"Spearman {sr['spearman_loo']:.2f}; {sr.get('verdict') or ''}")
            for ch in mix["checks"]:
                out.append(f"  - {ch['check']}: {ch['verdict']}" + (f" ({', '.join(ch['moved'])})" if ch.get("moved") else ""))
            if not mix["checks"]:
                out.append("  - no drift or self-consumption check recorded on this mix")
        else:
            out.append("- data: no mix recorded for this stage")
        if s["evaluations"]:
            out.append("- evaluations after this stage:")
            for e in s["evaluations"]:
                ch = "" if e["change"] is None else f" (change {e['change']:+.4f} from the stage before)"
                role = f" [{e['role']}]" if e["role"] else ""
                out.append(f"  - {e['set']}{role} {e['metric']}: {e['value']:.4f}{ch}")
        else:
            out.append("- evaluations after this stage: none recorded")
        for a in s["forgetting_alerts"]:
            out.append(f"- FORGETTING ALERT on {a['eval_set']}: bits/char {a['bits_before']:.3f} -> {a['bits_after']:.3f} "
                       f"({a['relative_change']:+.1%}, 95% CI {a['ci_low']:+.1%} to {a['ci_high']:+.1%}; threshold {a['threshold']:.0%})")
    out += ["", "## Adversarial evaluation", ""]
    adv = c["adversarial_evaluation"]
    if isinstance(adv, str):
        out.append(f"{adv}: a claim that a stage aligned this model is not backed by a recorded red-team evaluation.")
    else:
        for a in adv:
            out.append(f"- `{a['model_id']}` on {a['set']}: {a['metric']} {a['value']:.3f}")
    out += ["", "## Privacy audit", ""]
    pa_ = c.get("privacy_audit")
    if not isinstance(pa_, dict):
        out.append(f"{pa_ or 'no privacy audit recorded'}: nothing says whether this model reproduces its training "
                   "data (`mixline canary plant` before curating, then `mixline model audit`).")
    else:
        from mixline.pipelines.audit import describe

        out.append(f"Audit `{pa_['audit_id']}` (run `{pa_['run_id']}`, {pa_['created_at']}), measured on mix "
                   f"`{pa_['measured_on_mix']}` with {pa_['candidates']:,} candidates per canary"
                   + ("" if pa_["passed"] is None else f"; limits {pa_['limits']}: {'passed' if pa_['passed'] else 'FAILED'}") + ".")
        out += ["", "```"] + describe({"audit_id": pa_["audit_id"], "model_id": c["model_id"], "mix_id": pa_["measured_on_mix"],
                                        "passed": pa_["passed"], "results": {k: pa_[k] for k in ("exposure", "extraction", "membership")}}) + ["```"]
    out += ["", "## What it generated", ""]
    out += [f"- `{g['model_id']}`: {g['samples']:,} samples in {g['sources']} sources" for g in c["generated"]] or ["- nothing recorded"]
    out += [f"- trained on its output: `{d['model_id']}` ({d['name']}) on mix `{d['mix_id']}`" for d in c["trained_on_its_output"]]
    return "\n".join(out) + "\n"
