"""Training stages as lineage: continued pretraining with a forgetting check, SFT on assistant
turns, LoRA adapters and their composition, registered models, and the provenance card."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from mixline.pipelines import models as M
from mixline.pipelines import stages
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build
from mixline.pipelines.model_card import SCHEMA_PATH, card, render_md
from mixline.pipelines.stages import adversarial_eval
from mixline.store import Store

from mixline.errors import ConfigError

SMALL = {"steps": 12, "batch_size": 4, "seq_len": 64}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _mix(st: Store, name: str, groups: list[dict], holdout: float = 0.2, **extra) -> str:
    return build(st, MixRecipe.parse({"name": name, "status": ["kept", "uncurated"], "groups": groups,
                                      "holdout": {"fraction": holdout}, **extra})).mix_id


def held(mix_id: str) -> str:
    return f"sample_id IN (SELECT sample_id FROM mix_members WHERE mix_id = '{mix_id}' AND split = 'heldout')"


@pytest.fixture(scope="module")
def lab(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with general prose, medical and legal text and chats; a base trained on prose; and
    three stages after it: continued pretraining on medicine (10% prose replayed), SFT on chats,
    and a LoRA adapter on legal text."""
    tmp = tmp_path_factory.mktemp("stages")
    st = Store(tmp / "m.duckdb")
    prose = [p.strip() for p in (realdata / "prose/tinyshakespeare.txt").read_text().split("\n\n") if len(p.strip()) > 200][:200]
    with gzip.open(realdata / "domain_medical/medquad_qa.jsonl.gz", "rt") as f:
        med = [json.loads(line)["answer"] for _, line in zip(range(200), f, strict=False)]
    legal = [r["text"] for r in map(json.loads, (realdata / "domain_legal/legalbench_train_permissive.jsonl").read_text().splitlines()) if r.get("text")][:200]
    with gzip.open(realdata / "conversations/hh-rlhf_harmless-base_test.jsonl.gz", "rt") as f:
        hh = [json.loads(line)["chosen"] for _, line in zip(range(160), f, strict=False)]
    chats, redteam = [], []
    for t in hh:
        turns = [x.strip() for x in t.split("\n\nHuman:") if x.strip()]
        first = turns[0].split("\n\nAssistant:")
        if len(first) == 2 and first[0].strip() and first[1].strip():
            chats.append({"messages": [{"role": "user", "content": first[0].strip()}, {"role": "assistant", "content": first[1].strip()}]})
            redteam.append({"messages": [{"role": "user", "content": first[0].strip()}]})
    ingest(st, _jsonl(tmp / "prose.jsonl", [{"text": p} for p in prose]), IngestOptions(kind="domain", source="prose", domain="literature", license="public-domain"))
    ingest(st, _jsonl(tmp / "med.jsonl", [{"text": t} for t in med if t]), IngestOptions(kind="domain", source="medquad", domain="medical", license="CC-BY-4.0"))
    ingest(st, _jsonl(tmp / "legal.jsonl", [{"text": t} for t in legal]), IngestOptions(kind="domain", source="legalbench", domain="legal", license="CC-BY-4.0"))
    ingest(st, _jsonl(tmp / "chats.jsonl", chats[:100]), IngestOptions(kind="conversation", source="hh", license="MIT"))
    ingest(st, _jsonl(tmp / "redteam.jsonl", redteam[100:130]), IngestOptions(kind="eval", source="hh-redteam", license="MIT"))
    general = _mix(st, "general", [{"name": "prose", "where": "source = 'prose'"}])
    medical = _mix(st, "medical", [{"name": "med", "where": "source = 'medquad'"}])
    # Continued pretraining with replay: medicine, plus 10% of the tokens from general prose
    # (its training part: the general held-out split stays out).
    cpt_mix = _mix(st, "med-replay", [{"name": "med", "where": f"source = 'medquad' AND NOT ({held(medical)})", "weight": 0.9},
                                      {"name": "replay", "where": f"source = 'prose' AND NOT ({held(general)})", "weight": 0.1}],
                   holdout=0.0, total_tokens=40_000)
    chat_mix = _mix(st, "chats", [{"name": "hh", "where": "source = 'hh'"}], holdout=0.1)
    legal_mix = _mix(st, "legal", [{"name": "legal", "where": "source = 'legalbench'"}])
    init = M.init_tiny(st, general, tmp / "init", M.TinyConfig(n_layer=1, n_embd=64, vocab_size=1024))
    base = M.train(st, init["model_id"], general, tmp / "base", M.TrainConfig(**{**SMALL, "steps": 120}), "base")
    cpt = M.train(st, base["model_id"], cpt_mix, tmp / "cpt", M.TrainConfig(**{**SMALL, "steps": 80}), "med-cpt")
    sft = M.train(st, cpt["model_id"], chat_mix, tmp / "sft", M.TrainConfig(**SMALL, stage="sft"), "chat-sft")
    lora = M.train(st, sft["model_id"], legal_mix, tmp / "lora", M.TrainConfig(**SMALL, method="lora"), "legal-lora")
    yield {"st": st, "tmp": tmp, "mixes": {"general": general, "medical": medical, "cpt": cpt_mix, "chat": chat_mix, "legal": legal_mix},
           "init": init, "base": base, "cpt": cpt, "sft": sft, "lora": lora}
    st.close()


def test_stages_are_recorded(lab: dict) -> None:
    st = lab["st"]
    got = {r[0]: r[1:] for r in st.execute("SELECT model_id, stage, method FROM models").fetchall()}
    assert got[lab["base"]["model_id"]] == ("pretraining", "full")
    assert got[lab["cpt"]["model_id"]] == ("continued-pretraining", "full")
    assert got[lab["sft"]["model_id"]] == ("sft", "full")
    assert got[lab["lora"]["model_id"]] == ("adapter", "lora")
    with pytest.raises(ConfigError, match="model register"):
        M.train(st, lab["sft"]["model_id"], lab["mixes"]["chat"], lab["tmp"] / "x", M.TrainConfig(**SMALL, stage="preference"))
    with pytest.raises(ConfigError, match="holds none"):
        M.train(st, lab["base"]["model_id"], lab["mixes"]["medical"], lab["tmp"] / "y", M.TrainConfig(**SMALL, stage="sft"))


def test_sft_trains_on_assistant_turns_only() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"<eos>": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(["User", "Assistant", ":", "hi", "there", "how", "are", "you", "fine"])}},
                                     unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<eos>")
    msgs = [{"role": "user", "content": "hi there how are you"}, {"role": "assistant", "content": "fine"}]
    ids, labels = M._sft_examples(tok, [msgs], 16)
    trained = [tok.convert_ids_to_tokens(int(i)) for i, lab_ in zip(ids[0], labels[0], strict=True) if lab_ != -100]
    assert trained == ["fine"]
    assert int((labels[0] != -100).sum()) == 1 and ids.shape == (1, 16)


def test_forgetting_check(lab: dict) -> None:
    st, mixes = lab["st"], lab["mixes"]
    res = stages.compare(st, lab["base"]["model_id"], lab["cpt"]["model_id"],
                         {"general": held(mixes["general"]), "medical": held(mixes["medical"])},
                         roles={"general": "guard", "medical": "domain"}, threshold=0.0, max_docs=30, bootstrap=300)
    g, m = res["sets"]["general"], res["sets"]["medical"]
    # Continued pretraining on medicine makes medical text cheaper; general text gets dearer.
    assert m["bits_per_char_after"] < m["bits_per_char_before"]
    assert g["relative_change"] > 0 and g["forgetting_alert"] and res["forgetting_alerts"] == ["general"]
    assert g["ci95"][0] <= g["relative_change"] <= g["ci95"][1]
    rows = st.rows("SELECT eval_set, role, alert, relative_change FROM model_comparisons WHERE run_id = ? ORDER BY eval_set", [res["run_id"]])
    assert [(r["eval_set"], r["role"], r["alert"]) for r in rows] == [("general", "guard", True), ("medical", "domain", False)]
    assert abs(rows[0]["relative_change"] - g["relative_change"]) < 1e-12
    # A loose threshold: the same change is no alert.
    loose = stages.compare(st, lab["base"]["model_id"], lab["cpt"]["model_id"], {"general": held(mixes["general"])},
                           roles={"general": "guard"}, threshold=10.0, max_docs=30, bootstrap=100)
    assert loose["forgetting_alerts"] == []
    with pytest.raises(ConfigError, match="held out of both"):
        stages.compare(st, lab["base"]["model_id"], lab["cpt"]["model_id"], {"train": "source = 'prose' AND NOT (" + held(mixes["general"]) + ")"})


def test_register_a_model_trained_elsewhere(lab: dict) -> None:
    st = lab["st"]
    ext = lab["tmp"] / "dpo-from-our-trainer"
    shutil.copytree(lab["sft"]["path"], ext, dirs_exist_ok=True)
    a = stages.register(st, ext, parent=lab["sft"]["model_id"], mix=lab["mixes"]["chat"], stage="preference", notes="trl DPO, beta 0.1")
    b = stages.register(st, ext, parent=lab["sft"]["model_id"], mix=lab["mixes"]["chat"], stage="preference")
    assert a["model_id"] == b["model_id"] and st.scalar("SELECT count(*) FROM models WHERE model_id = ?", [a["model_id"]]) == 1
    row = st.rows("SELECT stage, method, parent_model_id, weight_hash FROM models WHERE model_id = ?", [a["model_id"]])[0]
    assert row == {"stage": "preference", "method": "external", "parent_model_id": lab["sft"]["model_id"], "weight_hash": M.weight_hash(ext)}
    c = card(st, a["model_id"])
    assert c["stages"][-1]["trained_elsewhere"] and c["stages"][-1]["stage"] == "preference"
    with pytest.raises(ConfigError, match="no weight files"):
        stages.register(st, lab["tmp"], parent=None, mix=None, stage="sft")


def test_compose_adapters(lab: dict) -> None:
    st, tmp, mixes = lab["st"], lab["tmp"], lab["mixes"]
    med = M.train(st, lab["sft"]["model_id"], mixes["medical"], tmp / "med-lora", M.TrainConfig(**SMALL, method="lora"), "med-lora")
    for method in ("linear", "cat"):
        res = stages.compose(st, [med["model_id"], lab["lora"]["model_id"]], [0.5, 0.5], method, tmp / f"comp-{method}", max_docs=20)
        assert res["parents"] == [med["model_id"], lab["lora"]["model_id"]] and res["base_model_id"] == lab["sft"]["model_id"]
        assert {i["adapter"] for i in res["interference"]} == set(res["parents"])
        for i in res["interference"]:
            assert i["composed"] > 0 and i["alone"] > 0 and abs(i["interference"] - (i["composed"] / i["alone"] - 1)) < 1e-9
        row = st.rows("SELECT stage, method, parent_model_id, config FROM models WHERE model_id = ?", [res["model_id"]])[0]
        assert (row["stage"], row["method"], row["parent_model_id"]) == ("compose", "lora", lab["sft"]["model_id"])
        assert json.loads(row["config"])["parents"] == res["parents"]
        M.load_model(st, res["model_id"])  # the composed adapter loads onto its base
    # Another base: refused. Unequal ranks: refused for linear, accepted by cat.
    other = M.train(st, lab["base"]["model_id"], mixes["medical"], tmp / "other-lora", M.TrainConfig(**SMALL, method="lora"))
    with pytest.raises(ConfigError, match="different bases"):
        stages.compose(st, [med["model_id"], other["model_id"]], [0.5, 0.5], "linear", tmp / "bad")
    r4 = M.train(st, lab["sft"]["model_id"], mixes["legal"], tmp / "r4", M.TrainConfig(**SMALL, method="lora", lora_r=4))
    with pytest.raises(ConfigError, match="equal rank"):
        stages.compose(st, [med["model_id"], r4["model_id"]], [0.5, 0.5], "linear", tmp / "bad2")
    assert stages.compose(st, [med["model_id"], r4["model_id"]], [0.5, 0.5], "cat", tmp / "cat2", max_docs=10)["model_id"]


def test_provenance_card(lab: dict) -> None:
    st, mixes = lab["st"], lab["mixes"]
    stages.compare(st, lab["base"]["model_id"], lab["cpt"]["model_id"], {"general": held(mixes["general"])},
                   roles={"general": "guard"}, threshold=0.0, max_docs=20, bootstrap=100)
    c = card(st, lab["lora"]["model_id"])
    jsonschema.validate(c, json.loads(SCHEMA_PATH.read_text()))
    chain = [lab[k]["model_id"] for k in ("init", "base", "cpt", "sft", "lora")]
    assert [s["model_id"] for s in c["stages"]] == chain
    assert [s["stage"] for s in c["stages"]] == ["init", "pretraining", "continued-pretraining", "sft", "adapter"]
    for s in c["stages"]:
        row = st.rows("SELECT stage, method, mix_id, weight_hash, parent_model_id FROM models WHERE model_id = ?", [s["model_id"]])[0]
        assert (s["stage"], s["method"], s["weight_hash"]) == (row["stage"], row["method"], row["weight_hash"])
        assert s["parents"] == ([row["parent_model_id"]] if row["parent_model_id"] else [])
        mix = s["mix"]
        assert mix["mix_id"] == row["mix_id"]
        assert mix["members"] == st.scalar("SELECT count(*) FROM mix_members WHERE mix_id = ? AND split = 'train'", [row["mix_id"]])
        assert abs(sum(x["share"] for x in mix["by_license"]) - 1) < 1e-9
        assert mix["synthetic_share"] == 0.0
    cpt = c["stages"][2]
    # The replay mix: medicine and 10% prose by tokens; licences from the sources.
    sources = {x["key"]: x["share"] for x in cpt["mix"]["by_source"]}
    assert set(sources) == {"medquad", "prose"} and 0.05 < sources["prose"] < 0.2
    assert {x["key"] for x in cpt["mix"]["by_license"]} == {"CC-BY-4.0", "public-domain"}
    general = next(e for e in cpt["evaluations"] if e["set"] == "general" and e["metric"] == "bits_per_char")
    base_general = st.scalar("""SELECT value FROM evals WHERE model_id = ? AND eval_set = 'general' AND metric = 'bits_per_char'
                                ORDER BY rowid DESC LIMIT 1""", [lab["base"]["model_id"]])
    assert general["previous_stage"] == base_general and abs(general["change"] - (general["value"] - base_general)) < 1e-12
    assert cpt["forgetting_alerts"] and cpt["forgetting_alerts"][0]["eval_set"] == "general"
    assert c["stages"][4]["hyperparameters"]["lora"]["r"] == 8
    assert c["adversarial_evaluation"] == "no adversarial evaluation recorded"
    md = render_md(c)
    assert "no adversarial evaluation recorded" in md and "FORGETTING ALERT on general" in md and "## Stage 3: continued-pretraining" in md
    # A red-team evaluation on hh-rlhf prompts, then the card says so.
    adv = adversarial_eval(st, lab["lora"]["model_id"], "redteam", "source = 'hh-redteam'", max_docs=10, max_new_tokens=8)
    assert 0.0 <= adv["toxic_reply_share"] <= 1.0 and adv["docs"] == 10
    c2 = card(st, lab["lora"]["model_id"])
    jsonschema.validate(c2, json.loads(SCHEMA_PATH.read_text()))
    assert {(a["set"], a["metric"]) for a in c2["adversarial_evaluation"]} == {("redteam", "toxic_reply_share"), ("redteam", "refusal_share")}


def test_cli_stage_commands(lab: dict, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from mixline.pipelines.cli import cli

    st = lab["st"]
    path = Path(st.path)
    st.close()  # the CLI opens the store itself
    try:
        r = CliRunner().invoke(cli, ["--store", str(path), "model", "card", lab["lora"]["model_id"], "--format", "json"])
        assert r.exit_code == 0, r.output
        jsonschema.validate(json.loads(r.stdout), json.loads(SCHEMA_PATH.read_text()))
        r = CliRunner().invoke(cli, ["--store", str(path), "model", "compare", lab["base"]["model_id"], lab["cpt"]["model_id"],
                                     "--set", f"general={held(lab['mixes']['general'])}", "--guard", "general", "--threshold", "0",
                                     "--max-docs", "10", "--bootstrap", "50"])
        assert r.exit_code == 0 and "FORGETTING ALERT" in r.output, r.output
    finally:
        lab["st"] = Store(path)
