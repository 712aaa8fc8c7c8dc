"""Mixes: quotas, repeats, caps, refusals, ids, holdout, show/diff, export and verify."""

import json

import pytest
from mixline.pipelines.export import export, verify
from mixline.pipelines.mix import MixRecipe, build, diff, show

from mixline.errors import ConfigError
from tests.test_curation_pipeline import add


def curated(store, rows, run="r0"):
    ids = add(store, rows, run=run)
    store.append_rows("runs", [{"run_id": "cur", "kind": "curate", "step": "t", "step_version": 1, "config": "{}",
                                "config_hash": "h", "code_version": "t", "started_at": "2026-03-01", "status": "ok"}])
    store.append_rows("decisions", [{"run_id": "cur", "sample_id": i, "step": "length_v1", "verdict": "kept"} for i in ids])
    return ids


def corpus(store):
    web = curated(store, [(f"web document number {i} " + "x" * 36, "web", 0, "crawl") for i in range(10)], run="a")
    med = curated(store, [(f"medical answer number {i} " + "y" * 76, "domain", 0, "medquad") for i in range(5)], run="b")
    syn = curated(store, [(f"synthetic sample {i} " + "z" * 40, "synthetic", 1, "gen1") for i in range(4)], run="c")
    return web, med, syn


def recipe(**kw):
    data = {"name": "t", "seed": 1, "groups": [{"name": "web", "where": "kind = 'web'"},
                                               {"name": "med", "where": "source = 'medquad'"}]}
    data.update(kw)
    return MixRecipe.parse(data)


def test_mix_selects_only_kept_non_eval_samples_and_is_reproducible(store):
    web, med, syn = corpus(store)
    add(store, [("an eval item that must never enter", "eval", 0, "bench")], run="e")
    add(store, [("uncurated web text " * 3, "web", 0, "crawl")], run="u")
    r1 = build(store, recipe())
    assert r1.created and r1.summary["members"] == 15
    r2 = build(store, recipe())
    assert (r2.mix_id, r2.created) == (r1.mix_id, False)
    assert store.scalar("SELECT count(*) FROM mixes") == 1
    r3 = build(store, recipe(status=["kept", "uncurated"]))
    assert r3.mix_id != r1.mix_id and r3.summary["members"] == 16


def test_token_quota_with_repeats_and_refusal(store):
    corpus(store)
    # 5 medical docs of 100 chars = 25 estimated tokens each, 125 in all.
    r = build(store, recipe(groups=[{"name": "med", "where": "source = 'medquad'", "tokens": 300, "max_repeats": 3}]))
    assert r.summary["tokens"] == 300
    assert store.scalar("SELECT sum(repeats) FROM mix_members") == 12
    with pytest.raises(ConfigError, match=r"needs 400 tokens but only 125 are eligible \(x3 repeats = 375\); short by 25"):
        build(store, recipe(groups=[{"name": "med", "where": "source = 'medquad'", "tokens": 400, "max_repeats": 3}]))


def test_weights_docs_caps_and_synthetic_share(store):
    corpus(store)
    r = build(store, recipe(total_tokens=200, groups=[
        {"name": "web", "where": "kind = 'web'", "weight": 0.5}, {"name": "syn", "where": "kind = 'synthetic'", "docs": 2}]))
    by = {x["key"]: x for x in r.summary["by_kind"]}
    assert by["web"]["tokens"] >= 100 and by["synthetic"]["docs"] == 2
    with pytest.raises(ConfigError, match="synthetic share 0.[0-9]+ exceeds max_synthetic_share 0.1 by"):
        build(store, recipe(max_synthetic_share=0.1, groups=[{"name": "all", "where": "TRUE"}]))
    r = build(store, recipe(max_synth_depth=0, max_docs_per_source=3, groups=[{"name": "all", "where": "TRUE"}]))
    assert {x["key"]: x["docs"] for x in r.summary["by_source"]} == {"crawl": 3, "medquad": 3}


def test_scrubbed_parents_never_enter(store):
    (raw,) = curated(store, [("call me at 555 0100 please " * 3, "conversation", 0, "chat")], run="p")
    (clean,) = curated(store, [("call me at <PHONE> please " * 3, "conversation", 0, "chat")], run="q")
    store.add_edges([{"child_id": clean, "parent_id": raw, "relation": "scrubbed_from", "run_id": "q"}])
    build(store, recipe(groups=[{"name": "chat", "where": "kind = 'conversation'"}]))
    assert [r[0] for r in store.execute("SELECT sample_id FROM mix_members").fetchall()] == [clean]


def test_holdout_by_source_and_fraction(store):
    corpus(store)
    r = build(store, recipe(holdout={"sources": ["medquad"]}))
    assert r.summary["heldout"] == 5 and {x["key"] for x in r.summary["by_source"]} == {"crawl"}
    r = build(store, recipe(holdout={"fraction": 0.2}))
    assert r.summary["heldout"] >= 2


def test_show_diff_and_impact(store):
    corpus(store)
    a = build(store, recipe(groups=[{"name": "web", "where": "kind = 'web'"}]))
    b = build(store, recipe())
    d = diff(store, a.mix_id, b.mix_id)
    assert d["added"] == 5 and d["removed"] == 0 and d["by_source"][0]["source"] == "medquad"
    s = show(store, a.mix_id[:10])
    assert s["name"] == "t" and s["recipe"]["seed"] == 1
    from mixline.store.lineage import impact

    some = store.scalar("SELECT sample_id FROM mix_members WHERE mix_id = ? LIMIT 1", [a.mix_id])
    assert {m["mix_id"] for m in impact(store, [some]).mixes} == {a.mix_id, b.mix_id}


def test_recipe_errors():
    with pytest.raises(ConfigError, match="groups"):
        MixRecipe.parse({"name": "x"})
    with pytest.raises(ConfigError, match="no total_tokens"):
        MixRecipe.parse({"name": "x", "groups": [{"name": "g", "weight": 0.5}]})
    with pytest.raises(ConfigError, match="unknown keys"):
        MixRecipe.parse({"name": "x", "groups": [{"name": "g", "wieght": 0.5}]})


def test_export_verify_and_refusals(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    corpus(store)
    m = build(store, recipe(groups=[{"name": "med", "where": "source = 'medquad'", "docs": 8, "max_repeats": 2},
                                    {"name": "web", "where": "kind = 'web'"}], holdout={"sources": ["crawl"]}))
    res = export(store, m.mix_id, tmp_path / "out", "parquet")
    assert res["rows"] == 8 + 10
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["mix_id"] == m.mix_id and len(manifest["members"]) == 15
    assert "## Licences" in (tmp_path / "out" / "README.md").read_text()
    assert verify(tmp_path / "out")["ok"]
    # Tamper with one row: verify names it.
    import pyarrow.parquet as pq

    f = tmp_path / "out" / "data" / "train-00000.parquet"
    t = pq.read_table(f).to_pylist()
    t[0]["text"] = t[0]["text"] + " tampered"
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(t), f)
    bad = verify(tmp_path / "out")
    assert not bad["ok"] and "text hash" in bad["problems"][0]
    other = build(store, recipe())
    with pytest.raises(ConfigError, match="already holds mix"):
        export(store, other.mix_id, tmp_path / "out")
    with pytest.raises(ConfigError, match="outside the export root"):
        export(store, other.mix_id, tmp_path.parent / "elsewhere")
    export(store, m.mix_id, tmp_path / "j", "jsonl")
    assert verify(tmp_path / "j")["ok"]


def test_cli_mix_commands_and_load_dataset_round_trip(mixline, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    docs = tmp_path / "d.jsonl"
    from tests.test_curation_filters import GOOD

    texts = [GOOD, "Breaking: " + GOOD.replace("library", "museum").replace("budget", "timetable"), "tiny"]
    docs.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n")
    mixline("ingest", str(docs), "--kind", "web", "--source", "w")
    mixline("curate", "--quiet")
    rec = tmp_path / "mix.toml"
    rec.write_text('name = "m"\nseed = 3\n[[groups]]\nname = "web"\nwhere = "kind = \'web\'"\n')
    out = mixline.json("mix", "build", str(rec))
    assert out["mix_id"].startswith("mix-") and out["members"] >= 1
    assert {"mix_id", "by_kind", "by_source", "by_domain", "tokens"} <= set(out)
    assert mixline.json("mix", "show", out["mix_id"])["members"] == out["members"]
    mixline("mix", "export", out["mix_id"], "--out", str(tmp_path / "exp"))
    assert mixline.json("mix", "verify", str(tmp_path / "exp"))["ok"]
    import datasets

    ds = datasets.load_dataset(str(tmp_path / "exp"), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == out["members"] and set(ds.column_names) >= {"sample_id", "text", "source"}
