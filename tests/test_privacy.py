"""The privacy audit on real conversations and tiny models trained here: canaries planted into
copies of OpenAssistant conversations, exposure that rises with repeats, PII-shaped canaries
that scrubbing removed sitting at chance, dedup collapsing copies, membership inference and
extraction that grow with training, the gate, and secrets that never leave the store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mixline.curation.recipe import Recipe
from mixline.pipelines.audit import CHANCE_BITS, AuditConfig, audit
from mixline.pipelines.canaries import PlantSpec, plant
from mixline.store import Store
from mixline.store.canaries import load_secrets, mix_canaries

from mixline import api
from mixline.errors import ConfigError, NotFoundError
from tests.conftest import Mixline

CHATS = "conversations/oasst_en_100_message.jsonl"
MIX = {"name": "chats", "seed": 0, "groups": [{"name": "c", "where": "kind = 'conversation'"}], "holdout": {"fraction": 0.2}}
# Every canary copy (or its scrubbed child) and 250 other conversations: a small mix, so that
# 400 steps see each document several times, as fine-tuning on conversations does.
CANARIES = ("sample_id IN (SELECT sample_id FROM canary_copies) OR sample_id IN (SELECT child_id FROM edges "
            "WHERE relation = 'scrubbed_from' AND parent_id IN (SELECT sample_id FROM canary_copies))")
SMALL = {"name": "chats-small", "seed": 0, "holdout": {"fraction": 0.3}, "groups": [
    {"name": "canaries", "where": CANARIES}, {"name": "rest", "where": "kind = 'conversation'", "max_docs": 250}]}


@pytest.fixture(scope="module")
def trained(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Canaries (4 per format and repeat count) in OpenAssistant conversations, curated by the pii
    step only (no dedup), one mix, and two tiny models on it: 60 and 400 steps."""
    root = tmp_path_factory.mktemp("privacy")
    path = root / "p.duckdb"
    with Store(path) as st:
        api.ingest(st, [str(realdata / CHATS)], kind="conversation", source="support")
        planted = plant(st, PlantSpec("support", n=4, repeats=(1, 4, 16), formats=("plain", "phone"), seed=1))
        api.curate(st, Recipe.parse({"name": "pii only", "steps": [{"type": "pii"}]}, "test"))
        mix = api.build_mix(st, api.MixRecipe.parse(SMALL)).mix_id
        init = api.init_tiny(st, mix, root / "init", seed=0).model_id
        short = api.train(st, init, mix, root / "short", steps=60, seed=0).model_id
        long = api.train(st, init, mix, root / "long", steps=400, seed=0).model_id
        cfg = AuditConfig(candidates=1000, extraction_samples=60, mia_docs=150)
        audits = {"short": audit(st, short, cfg), "long": audit(st, long, cfg)}
    return {"path": path, "root": root, "planted": planted, "mix": mix, "init": init, "short": short, "long": long,
            "audits": audits}


def by_copies(a: dict[str, Any], fmt: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for c in a["canaries"]:
        if c["format"] == fmt:
            out.setdefault(c["secret_trained"], []).append(c["exposure_bits"])
    return out


def test_exposure_rises_with_repeats(trained: dict[str, Any]) -> None:
    a = trained["audits"]["long"]
    plain = by_copies(a, "plain")
    assert {1, 16} <= set(plain), plain  # canaries that reached the mix with 1 and 16 copies of their secret
    # Carlini's curve: a secret seen 16 times is ranked far above random candidates, one seen once is
    # not. Medians: secrets are truly random, and one of four single-copy canaries can rank high by luck.
    med = {k: float(np.median(v)) for k, v in plain.items()}
    assert med[16] > med[1] + 2.0 and med[16] > CHANCE_BITS + 2.5, plain
    if 4 in med:
        assert med[4] < med[16], plain
    trained_bits = [c["exposure_bits"] for c in a["canaries"] if c["secret_trained"]]
    assert a["results"]["exposure"]["max_bits"] == max(trained_bits)


def test_scrubbed_pii_canaries_sit_at_chance(trained: dict[str, Any]) -> None:
    a = trained["audits"]["long"]
    phone = [c for c in a["canaries"] if c["format"] == "phone" and c["trained_copies"] > 0]
    assert phone and all(c["secret_trained"] == 0 for c in phone)  # the pii step replaced every number
    # The mean of -log2(uniform rank) is 1.44 bits; 12 canaries' mean lies within about 1 bit of it.
    assert abs(np.mean([c["exposure_bits"] for c in phone]) - CHANCE_BITS) < 1.2
    controls = [c for c in a["canaries"] if c["trained_copies"] == 0]
    assert all(c["exposure_bits"] <= np.log2(c["candidates"] + 1) for c in controls)


def test_membership_and_extraction_grow_with_training(trained: dict[str, Any]) -> None:
    short, long = trained["audits"]["short"]["results"], trained["audits"]["long"]["results"]
    assert long["membership"]["auc"] > short["membership"]["auc"] + 0.05, (short["membership"], long["membership"])
    assert long["membership"]["member_loss"] < long["membership"]["heldout_loss"]
    assert long["extraction"]["n"] > 20 and long["extraction"]["token_match"] > short["extraction"]["token_match"]
    # The audit is recorded with the model, with the data it was measured on.
    with Store(trained["path"], read_only=True) as st:
        rows = st.rows("SELECT model_id, mix_id, passed FROM audits ORDER BY created_at")
        n = st.scalar("SELECT count(*) FROM audit_canaries WHERE audit_id = ?", [trained["audits"]["long"]["audit_id"]])
    assert [(r["model_id"], r["mix_id"], r["passed"]) for r in rows] == [(trained["short"], trained["mix"], None),
                                                                           (trained["long"], trained["mix"], None)]
    assert n == len(trained["audits"]["long"]["canaries"]) == trained["planted"]["canaries"]


def test_exact_dedup_keeps_one_copy_of_each_canary(realdata: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "d.duckdb") as st:
        api.ingest(st, [str(realdata / CHATS)], kind="conversation", source="support")
        plant(st, PlantSpec("support", n=3, repeats=(16,), formats=("plain",)))
        api.curate(st, Recipe.parse({"name": "pii + exact", "steps": [{"type": "pii"}, {"type": "exact_dedup"}]}, "test"))
        mix = api.build_mix(st, api.MixRecipe.parse(MIX)).mix_id
        got = mix_canaries(st, mix)
    # 16 copies differ only in trailing whitespace, which exact dedup folds: one of each is left.
    assert got["canaries"] == 3 and got["copies"] == 3


def test_the_gate_and_the_card(trained: dict[str, Any], tmp_path: Path) -> None:
    cli = Mixline(trained["path"])
    r = cli("model", "audit", trained["long"], "--candidates", "500", "--extraction-samples", "10", "--mia-docs", "50",
            "--max-exposure", "3", ok=False)
    assert r.exit_code == 6 and "audit FAILED: canary exposure" in r.output and "--max-exposure 3" in r.output
    ok = cli("model", "audit", trained["long"], "--candidates", "500", "--extraction-samples", "10", "--mia-docs", "50",
             "--max-exposure", "60", "--max-extraction", "0.5")
    assert "PASSED" in ok.output
    card = cli("model", "card", trained["long"]).output
    assert "## Privacy audit" in card and trained["mix"] in card.split("## Privacy audit")[1] and "passed" in card
    c = cli.json("model", "card", trained["long"])
    assert c["privacy_audit"]["passed"] is True and c["privacy_audit"]["measured_on_mix"] == trained["mix"]
    assert cli.json("model", "card", trained["init"])["privacy_audit"] == "no privacy audit recorded"


def test_secrets_never_leave_the_store(trained: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mixline.dashboards.app import create_app
    from starlette.testclient import TestClient

    with Store(trained["path"], read_only=True) as st:
        secrets = [s["secret"] for s in load_secrets(st).values()]
        # A plain canary's copy as training saw it: the copy if the pii step kept it, else its scrubbed child.
        copy = st.scalar("""SELECT coalesce(e.child_id, cc.sample_id) FROM canary_copies cc JOIN canaries c USING (canary_id)
                            LEFT JOIN edges e ON e.parent_id = cc.sample_id AND e.relation = 'scrubbed_from'
                            WHERE c.format = 'plain' ORDER BY cc.sample_id LIMIT 1""")
        logged = json.dumps(st.rows("SELECT config, stats, error FROM runs"), default=str)
        recorded = json.dumps(st.rows("SELECT results, config FROM audits"), default=str)
    assert len(secrets) == trained["planted"]["canaries"]
    pattern = re.compile("|".join(re.escape(s) for s in secrets))
    cli = Mixline(trained["path"])
    t = cli.json("trace", copy)
    assert "[canary secret]" in t["sample"]["text"] and not t["sample"].get("withheld")
    outputs = [logged, recorded, json.dumps(t), cli("trace", copy).output, cli("canary", "list").output,
               cli("mix", "show", trained["mix"]).output, json.dumps(trained["audits"]["long"], default=str),
               cli("sql", "SELECT text, messages FROM samples WHERE sample_id IN (SELECT sample_id FROM canary_copies)").output]
    assert "withheld: a canary copy" in outputs[-1]
    hidden = cli("sql", "SELECT * FROM store_secrets", ok=False)
    assert hidden.exit_code != 0 and "hidden" in hidden.output
    client = TestClient(create_app(trained["path"]), base_url="http://127.0.0.1")
    for page in (f"/samples/{copy}", "/samples?kind=conversation", f"/models/{trained['long']}", f"/api/samples/{copy}"):
        r = client.get(page)
        assert r.status_code == 200, page
        outputs.append(r.text)
    assert "Privacy audit" in outputs[-2] and "secret trained" in outputs[-2]
    for out in outputs:
        assert not pattern.search(out)
    # An export refuses a mix holding canaries, unless told.
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    with Store(trained["path"], read_only=True) as st:
        with pytest.raises(ConfigError, match="holds .* canaries"):
            api.export_mix(st, trained["mix"], tmp_path / "out")
        api.export_mix(st, trained["mix"], tmp_path / "out", "jsonl", allow_canaries=True)


def test_impact_of_a_carrier_reaches_its_canary_and_the_audits(trained: dict[str, Any]) -> None:
    with Store(trained["path"], read_only=True) as st:
        carrier, cid = st.one("SELECT carrier_id, canary_id FROM canaries WHERE format = 'plain' AND repeats = 16 LIMIT 1")
        imp = api.impact(st, [carrier]).as_dict()
    assert [c["canary_id"] for c in imp["canaries"]] == [cid]
    assert {trained["short"], trained["long"]} <= {m["model_id"] for m in imp["models"]}
    assert {a["model_id"] for a in imp["audits"]} >= {trained["short"], trained["long"]}
    # The carrier itself never entered a mix: its canary copies took its place.
    assert trained["mix"] in {m["mix_id"] for m in imp["mixes"]}
    with Store(trained["path"], read_only=True) as st:
        assert not st.scalar("SELECT count(*) FROM mix_members WHERE sample_id = ?", [carrier])


def test_bad_plant_requests_say_how_to_fix_them(trained: dict[str, Any], tmp_path: Path) -> None:
    with Store(tmp_path / "b.duckdb") as st, pytest.raises(NotFoundError, match="source 'nope' is not in the store"):
        plant(st, PlantSpec("nope"))
    with Store(trained["path"]) as st:
        with pytest.raises(ConfigError, match="need .* carrier samples"):
            plant(st, PlantSpec("support", n=10_000))
        with pytest.raises(ConfigError, match="--format"):
            plant(st, PlantSpec("support", formats=("ssn",)))
        with pytest.raises(ConfigError, match="--repeats"):
            plant(st, PlantSpec("support", repeats=(0,)))


def test_a_loop_audits_each_model_and_its_gate_stops_it(realdata: Path, tmp_path: Path) -> None:
    from mixline.pipelines.loop import Loop, LoopConfig

    text = (realdata / "prose/tinyshakespeare.txt").read_text()
    paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:160]
    (tmp_path / "prose.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in paras))
    small = {"n_layer": 1, "n_embd": 32}
    audit_cfg = {"candidates": 200, "extraction_samples": 10, "mia_docs": 20}
    common = {"real_where": "source = 'prose'", "samples_per_generation": 24, "train_steps": 8, "batch_size": 4,
              "seq_len": 64, "eval_docs": 10, "max_new_tokens": 16, "tiny": small, "drift": False}
    with Store(tmp_path / "l.duckdb") as st:
        api.ingest(st, [str(tmp_path / "prose.jsonl")], kind="domain", source="prose")
        plant(st, PlantSpec("prose", n=2, repeats=(4,), formats=("plain",)))
        # Any exposure at all fails (a negative limit): the loop stops before generation 1.
        stopped = Loop(st, LoopConfig(name="strict", generations=2, strategies=("replace",), gate="stop",
                                      audit={**audit_cfg, "max_exposure": -1.0}, **common), tmp_path / "w1").run()
        assert len(stopped) == 1 and stopped[0]["generation"] == 0
        assert stopped[0]["audit"]["passed"] is False and stopped[0]["gate"].startswith("stopped: the privacy audit failed")
        # No gate: every model is audited against the limit, and the loop runs to the end.
        ran = Loop(st, LoopConfig(name="lenient", generations=1, strategies=("replace",), gate="none",
                                  audit={**audit_cfg, "max_exposure": 1000.0}, **common), tmp_path / "w2").run()
        assert [r["generation"] for r in ran] == [0, 1] and all(r["audit"]["passed"] for r in ran)
        audited = {r[0] for r in st.execute("SELECT model_id FROM audits").fetchall()}
        assert {r["model_id"] for r in ran} | {stopped[0]["model_id"]} == audited
    with pytest.raises(ConfigError, match="audit has unknown settings"):
        Loop(Store(":memory:"), LoopConfig(name="x", real_where="TRUE", audit={"max_exposer": 1}), tmp_path)
