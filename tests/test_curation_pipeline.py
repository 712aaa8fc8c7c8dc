"""Recipes, decisions as rows, keep policy, clusters, incremental runs, `why`, and the CLI."""

import json

import pyarrow as pa
import pytest
from mixline.curation.pipeline import curate, why
from mixline.curation.recipe import DEFAULT_RECIPE, Recipe
from mixline.store.ids import content_id
from mixline.store.lineage import trace

from mixline.errors import ConfigError, PredicateError
from tests.test_curation_filters import GOOD


def add(store, rows, run="r0", started="2026-01-01"):
    """rows: (text, kind, synth_depth, source)."""
    store.append_rows("runs", [{"run_id": run, "kind": "ingest", "step": "t", "step_version": 1, "config": "{}",
                                "config_hash": "h", "code_version": "t", "started_at": started, "status": "ok"}])
    ids = [content_id(t) for t, *_ in rows]
    store.append("samples", pa.table({
        "sample_id": ids, "source_id": [s for *_, s in rows], "source": [s for *_, s in rows],
        "kind": [k for _, k, _, _ in rows], "text": [t for t, *_ in rows], "content_hash": ids,
        "n_chars": [len(t) for t, *_ in rows], "synth_depth": [d for _, _, d, _ in rows],
        "created_run_id": [run] * len(rows)}))
    return ids


def recipe(steps, **kw):
    return Recipe.parse({"name": "t", "steps": steps, **kw}, "test")


VARIANT = GOOD.replace("Tuesday", "Wednesday")


def test_exact_dedup_prefers_human_then_records_cluster(store):
    human, synth = add(store, [(GOOD, "web", 0, "crawl"), (GOOD.upper() + "  ", "synthetic", 1, "gen1")])
    res = curate(store, recipe([{"type": "exact_dedup"}]))
    assert (res.selected, res.kept, res.dropped) == (2, 1, 1)
    d = store.rows("SELECT sample_id, verdict, reason FROM decisions ORDER BY verdict")
    assert d == [{"sample_id": synth, "verdict": "dropped", "reason": f"memorised_exact_duplicate_of:{human}"},
                 {"sample_id": human, "verdict": "kept", "reason": None}]
    assert store.scalar("SELECT count(DISTINCT cluster_id) FROM clusters WHERE method = 'exact'") == 1


def test_keep_policy_longer_and_source_order(store):
    short_doc = GOOD
    long_doc = GOOD + " And a little more."
    a, b = add(store, [(short_doc, "web", 0, "A"), (long_doc, "web", 0, "B")])
    res = curate(store, recipe([{"type": "minhash_dedup"}], keep=["longer"]))
    assert res.dropped == 1
    assert store.scalar("SELECT sample_id FROM decisions WHERE verdict = 'kept'") == b
    res = curate(store, recipe([{"type": "minhash_dedup"}], keep=["source_order"], source_order=["A", "B"]))
    assert store.scalar("SELECT sample_id FROM decisions WHERE verdict = 'kept' AND run_id = ?", [res.run_id]) == a


def test_filters_record_kept_and_dropped_rows_and_counters_come_from_them(store):
    add(store, [(GOOD, "web", 0, "s"), ("tiny", "web", 0, "s")])
    res = curate(store, recipe([{"type": "length", "min_chars": 20}, {"type": "gopher_quality"}]))
    assert res.steps[0] == {"step": "length_v1", "kept": 1, "dropped": 1, "rewritten": 0, "reasons": {"too_few_chars": 1}}
    assert res.steps[1]["step"] == "gopher_quality_v2" and res.steps[1]["kept"] == 1
    assert store.scalar("SELECT count(*) FROM decisions") == 3


def test_incremental_run_dedups_new_against_kept_before(store):
    (first,) = add(store, [(GOOD, "web", 0, "s")], run="r1", started="2026-01-01")
    curate(store, recipe([{"type": "minhash_dedup"}]))
    (second,) = add(store, [(VARIANT, "web", 0, "s")], run="r2", started="2026-02-01")
    res = curate(store, recipe([{"type": "minhash_dedup"}]), new_only=True)
    assert res.selected == 1 and res.dropped == 1
    assert store.scalar("SELECT reason FROM decisions WHERE sample_id = ?", [second]) == f"near_duplicate_of:{first}"
    # The earlier sample is an anchor: no new decision about it.
    assert store.scalar("SELECT count(*) FROM decisions WHERE sample_id = ?", [first]) == 1


def test_why_lists_decisions_and_clusters(store):
    a, b = add(store, [(GOOD, "web", 0, "s"), (GOOD.replace(",", ""), "web", 0, "s")])
    curate(store, recipe([{"type": "exact_dedup"}]))
    w = why(store, b)
    assert w["status"] == "dropped"
    assert [(d["step"], d["verdict"]) for d in w["decisions"]] == [("exact_dedup_v1", "dropped")]
    assert w["clusters"][0]["size"] == 2 and w["clusters"][0]["cluster_id"] == a
    t = trace(store, b)  # trace shows the cluster too, with its size and which copy was kept
    assert [(c["cluster_id"], c["size"], c["kept"]) for c in t.clusters] == [(a, 2, False)]
    assert [d["verdict"] for d in t.decisions] == ["dropped"]


def test_recipe_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="steps"):
        Recipe.parse({"name": "x"}, "r.toml")
    with pytest.raises(ConfigError, match=r"steps\[0\] needs `type`"):
        Recipe.parse({"steps": [{"type": "nope"}]}, "r.toml")
    with pytest.raises(ConfigError, match="filter after a dedup step"):
        Recipe.parse({"steps": [{"type": "exact_dedup"}, {"type": "length"}]}, "r.toml").build()
    with pytest.raises(ConfigError, match="bands x rows"):
        Recipe.parse({"steps": [{"type": "minhash_dedup", "bands": 3}]}, "r.toml").build()
    p = tmp_path / "r.yaml"
    p.write_text("name: y\nsteps:\n  - type: length\n    min_chars: 5\n")
    assert Recipe.from_file(p).build()[0].params.min_chars == 5


def test_default_recipe_round_trips(tmp_path):
    p = tmp_path / "default.toml"
    p.write_text(DEFAULT_RECIPE)
    assert [s.step_name for s in Recipe.from_file(p).build()] == [s.step_name for s in Recipe.default().build()]


def test_bad_where_is_refused(store):
    with pytest.raises(PredicateError, match="kidn"):
        curate(store, where="kidn = 'web'")


def test_cli_curate_json_and_why(mixline, tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"text": t}) for t in [GOOD, GOOD.lower(), "tiny"]) + "\n")
    mixline("ingest", str(p), "--kind", "web", "--source", "s")
    out = mixline.json("curate", "--where", "source = 's'")
    assert (out["selected"], out["kept"], out["dropped"]) == (3, 1, 2)
    assert mixline("curate", "--show-default").stdout == DEFAULT_RECIPE
    dropped = mixline.json("sql", "SELECT sample_id FROM decisions WHERE verdict = 'dropped' AND step = 'exact_dedup_v1'")[0]["sample_id"]
    w = mixline.json("why", dropped)
    assert w["status"] == "dropped" and w["decisions"][-1]["reason"].startswith("exact_duplicate_of:")
    t = mixline.json("trace", dropped)
    assert t["clusters"][0]["method"] == "exact"


def test_every_batch_is_processed_when_the_selection_spans_many(store):
    add(store, [(GOOD + f" Extra sentence number {i}.", "web", 0, "s") for i in range(7)] + [("tiny", "web", 0, "s")])
    res = curate(store, recipe([{"type": "length", "min_chars": 20}, {"type": "exact_dedup"}], batch_size=2))
    assert (res.selected, res.dropped) == (8, 1)
    assert store.scalar("SELECT count(DISTINCT sample_id) FROM decisions") == 8


def test_a_run_records_where_its_time_went(store):
    add(store, [(GOOD, "web", 0, "s"), (VARIANT, "web", 0, "s"), ("tiny", "web", 0, "s")])
    res = curate(store, recipe([{"type": "length", "min_chars": 20}, {"type": "gopher_quality"}, {"type": "exact_dedup"}]))
    timings = json.loads(store.scalar("SELECT stats FROM runs WHERE run_id = ?", [res.run_id]))["timings"]
    # Each step with the samples it saw (the length rule all three, the next ones the two it kept).
    assert timings["length_v1"]["docs"] == 3 and timings["gopher_quality_v2"]["docs"] == 2
    assert timings["exact_dedup_v1"]["docs"] == 2
    assert {"(select)", "(read batches)", "(decision rows)", "(finish)"} <= set(timings)
    assert all(t["seconds"] >= 0 for t in timings.values())
