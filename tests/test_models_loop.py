"""Tiny models trained locally: lineage across models, evaluation, generation, loops and resume."""

import json
from pathlib import Path

import pytest
from mixline.pipelines import models as M
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.loop import Loop, LoopConfig
from mixline.pipelines.mix import MixRecipe, build
from mixline.store.lineage import impact, trace

from mixline.errors import ConfigError


@pytest.fixture
def prose(store, realdata, tmp_path):
    text = (realdata / "prose/tinyshakespeare.txt").read_text()
    paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:300]
    path = tmp_path / "prose.jsonl"
    path.write_text("\n".join(json.dumps({"text": p}) for p in paras) + "\n")
    ingest(store, path, IngestOptions(kind="domain", source="prose", domain="prose"))
    return build(store, MixRecipe.parse({"name": "prose", "status": ["kept", "uncurated"],
                                         "groups": [{"name": "all", "where": "TRUE"}], "holdout": {"fraction": 0.1}}))


def test_init_train_eval_generate_with_lineage(store, prose, tmp_path):
    init = M.init_tiny(store, prose.mix_id, tmp_path / "init", M.TinyConfig(n_layer=1, n_embd=64))
    assert 0.1e6 < init["parameters"] < 4e6
    assert json.loads((tmp_path / "init" / "mixline.json").read_text())["mix_id"] == prose.mix_id
    trained = M.train(store, init["model_id"], prose.mix_id, tmp_path / "m1", M.TrainConfig(steps=20, batch_size=4, seq_len=64))
    row = store.rows("SELECT parent_model_id, mix_id, method, config FROM models WHERE model_id = ?", [trained["model_id"]])[0]
    assert (row["parent_model_id"], row["mix_id"], row["method"]) == (init["model_id"], prose.mix_id, "full")
    assert len(json.loads(row["config"])["loss_curve"]) == 20
    held = f"sample_id IN (SELECT sample_id FROM mix_members WHERE mix_id = '{prose.mix_id}' AND split = 'heldout')"
    ev = M.evaluate(store, trained["model_id"], {"prose": held}, max_docs=10)
    assert 1.0 < ev["sets"]["prose"]["bits_per_char"] < 8.0
    # The low-probability tail: a share of held-out tokens, recorded beside bits/char.
    assert 0.0 < ev["sets"]["prose"]["tail_token_share"] < 1.0
    assert store.scalar("SELECT count(*) FROM evals WHERE metric = 'tail_token_share' AND model_id = ?", [trained["model_id"]]) == 1
    with pytest.raises(ConfigError, match="in model .* training mix"):
        M.evaluate(store, trained["model_id"], {"leaky": "source = 'prose'"}, max_docs=50)
    gen = M.generate(store, trained["model_id"], M.GenerateConfig(n=5, prompts_where="source = 'prose'", max_new_tokens=8))
    assert gen["generated"] == 5 and gen["synth_depth"] == 1
    sid = store.scalar("SELECT sample_id FROM generations LIMIT 1")
    t = trace(store, sid)
    assert t.generated_by[0]["model_id"] == trained["model_id"] and t.ancestors[0]["relation"] == "prompted_by"
    member = store.scalar("SELECT sample_id FROM mix_members WHERE mix_id = ? AND split = 'train' LIMIT 1", [prose.mix_id])
    imp = impact(store, [member])
    assert trained["model_id"] in {m["model_id"] for m in imp.models}
    assert len([s for s in imp.samples if s["relation"] == "generated_by_model"]) >= 5


def test_lora_stays_an_adapter_and_merges_on_request(store, prose, tmp_path):
    init = M.init_tiny(store, prose.mix_id, tmp_path / "init", M.TinyConfig(n_layer=1, n_embd=64))
    out = M.train(store, init["model_id"], prose.mix_id, tmp_path / "lora",
                  M.TrainConfig(steps=5, batch_size=2, seq_len=32, method="lora", merge=True))
    row = store.rows("SELECT method, stage, parent_model_id, config FROM models WHERE model_id = ?", [out["model_id"]])[0]
    cfg = json.loads(row["config"])
    assert (row["method"], row["stage"], row["parent_model_id"]) == ("lora", "adapter", init["model_id"])
    assert cfg["lora"] == {"r": 8, "alpha": 16, "target_modules": ["c_attn"]} and cfg["base_model_id"] == init["model_id"]
    base_hash = store.scalar("SELECT weight_hash FROM models WHERE model_id = ?", [init["model_id"]])
    assert cfg["base_weight_hash"] == base_hash == M.weight_hash(tmp_path / "init") and base_hash.startswith("sha256:")
    # An adapter folder, not a full model.
    assert (Path(out["path"]) / "adapter_config.json").exists() and not (Path(out["path"]) / "config.json").exists()
    merged = store.rows("SELECT method, stage, parent_model_id FROM models WHERE model_id = ?", [out["merged_model_id"]])[0]
    assert merged == {"method": "merge", "stage": "merge", "parent_model_id": out["model_id"]}
    held = f"sample_id IN (SELECT sample_id FROM mix_members WHERE mix_id = '{prose.mix_id}' AND split = 'heldout')"
    a = M.evaluate(store, out["model_id"], {"h": held}, max_docs=5)["sets"]["h"]["bits_per_char"]
    b = M.evaluate(store, out["merged_model_id"], {"h": held}, max_docs=5)["sets"]["h"]["bits_per_char"]
    assert abs(a - b) < 1e-3  # the adapter on its base and the merged weights are the same model
    # Onto another base (different weights), the adapter is refused.
    other = M.init_tiny(store, prose.mix_id, tmp_path / "other", M.TinyConfig(n_layer=1, n_embd=64), seed=1)
    with pytest.raises(ConfigError, match="only fits the base it was trained on"):
        M.load_model(store, out["model_id"], base=other["model_id"])


def test_loop_replace_and_accumulate_resume_and_reach_models(store, prose, tmp_path):
    cfg = LoopConfig(name="t", real_where="source = 'prose'", generations=2, samples_per_generation=30, train_steps=15,
                     batch_size=4, seq_len=64, eval_docs=10, max_new_tokens=16, tiny={"n_layer": 1, "n_embd": 64})
    rows = Loop(store, cfg, tmp_path / "loop").run()
    assert [(r["generation"], r["strategy"]) for r in rows] == [(0, "real"), (1, "replace"), (2, "replace"), (1, "accumulate"), (2, "accumulate")]
    assert all(r["bits_per_char"] > 0 and r["mix_id"] and r["model_id"] for r in rows)
    # Synthetic depth follows model lineage: generation 2 under replace was written by a model
    # trained on generation-1 output.
    assert store.scalar("SELECT max(synth_depth) FROM samples") == 2
    runs_before = store.scalar("SELECT count(*) FROM runs")
    again = Loop(store, cfg, tmp_path / "loop").run()
    assert again == rows and store.scalar("SELECT count(*) FROM runs") == runs_before  # resumed, nothing redone
    real = store.scalar("SELECT sample_id FROM mix_members WHERE mix_id = ? AND split = 'train' LIMIT 1", [rows[0]["mix_id"]])
    reached = {m["model_id"] for m in impact(store, [real]).models}
    assert {r["model_id"] for r in rows} <= reached


def test_self_consumption_flags_own_and_family_output(store, prose, tmp_path):
    from mixline.curation.drift import self_consumption

    small = M.TrainConfig(steps=3, batch_size=2, seq_len=32)
    init = M.init_tiny(store, prose.mix_id, tmp_path / "init", M.TinyConfig(n_layer=1, n_embd=64))
    a = M.train(store, init["model_id"], prose.mix_id, tmp_path / "a", small)
    assert a["self_consumption"]["self_consumed"] == 0  # trained on human text only
    M.generate(store, a["model_id"], M.GenerateConfig(n=6, prompts_where="source = 'prose'", max_new_tokens=8))
    written = store.scalar("SELECT count(DISTINCT sample_id) FROM generations WHERE model_id = ?", [a["model_id"]])
    mixed = build(store, MixRecipe.parse({"name": "with-synthetic", "status": ["kept", "uncurated"],
                                          "groups": [{"name": "all", "where": "TRUE"}]}))
    # Training a on its own output: self-consumption, flagged before training starts.
    again = M.train(store, a["model_id"], mixed.mix_id, tmp_path / "a2", small)
    assert again["self_consumption"]["self_consumed"] == written > 0
    # A sibling (same initial weights, never saw a's output) is family, not ancestry.
    sibling = M.train(store, init["model_id"], prose.mix_id, tmp_path / "b", M.TrainConfig(steps=3, batch_size=2, seq_len=32, seed=1))
    fam = self_consumption(store, mixed.mix_id, sibling["model_id"], record=False)
    assert (fam["self_consumed"], fam["family"]) == (0, written)
    assert {g["relation"] for g in fam["by_generator"]} == {"family"}
    flagged = store.rows("SELECT reason FROM decisions WHERE verdict = 'flagged' AND step = 'self_consumption_v1'")
    assert len(flagged) == written and all(r["reason"] == f"generated_by_ancestor:{a['model_id']}" for r in flagged)
