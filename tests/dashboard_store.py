"""A small but complete store for the dashboard tests: web pages (one of them hostile HTML),
Shakespeare prose, conversations with PII, a curation run, mixes, and a 3-generation loop
with replace and accumulate, drift checks and gate checks."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from mixline.curation.classifier import score
from mixline.curation.pipeline import curate
from mixline.curation.recipe import Recipe
from mixline.pipelines.classifiers import TrainSpec, train
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.loop import Loop, LoopConfig
from mixline.pipelines.mix import MixRecipe
from mixline.pipelines.mix import build as build_mix
from mixline.store import Store

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def build(path: Path, realdata: Path, work: Path) -> dict[str, str]:
    work.mkdir(parents=True, exist_ok=True)
    text = (realdata / "prose/tinyshakespeare.txt").read_text()
    paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:240]
    (work / "prose.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in paras))
    with gzip.open(realdata / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as f:
        web = [json.loads(line) for _, line in zip(range(120), f, strict=False)]
    (work / "web.jsonl").write_text("".join(json.dumps({"text": r["text"], "id": r.get("id")}) + "\n" for r in web))
    (work / "hostile.jsonl").write_text(json.dumps({"text": HOSTILE}) + "\n")
    chats = [{"messages": [{"role": "user", "content": f"Hi, I am Maria Lopez, write to maria.lopez{i}@gmail.com or call "
                                                       f"+1 415 555 01{i:02d} about order {i}."},
                           {"role": "assistant", "content": f"Thanks Maria, order {i} ships tomorrow; we will email you."}]}
             for i in range(30)]
    (work / "chats.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    with Store(path) as st:
        ingest(st, work / "prose.jsonl", IngestOptions(kind="domain", source="prose", domain="literature", license="public-domain"))
        ingest(st, work / "web.jsonl", IngestOptions(kind="web", source="cc", license="ODC-BY", id_field="id"))
        ingest(st, work / "hostile.jsonl", IngestOptions(kind="web", source="hostile"))
        ingest(st, work / "chats.jsonl", IngestOptions(kind="conversation", source="support"))
        curate(st, Recipe.default(), "source <> 'hostile'")
        # The hostile page is only scanned for PII (the default rules would drop it as too short).
        curate(st, Recipe.parse({"steps": [{"type": "pii"}]}, "pii only"), "source = 'hostile'")
        cfg = LoopConfig(name="t", real_where="source = 'prose'", generations=3, samples_per_generation=24, train_steps=8,
                         batch_size=4, seq_len=64, eval_docs=10, max_new_tokens=16, tiny={"n_layer": 1, "n_embd": 32})
        Loop(st, cfg, work / "loop").run()
        gen3 = st.scalar("SELECT sample_id FROM samples WHERE synth_depth = 3 ORDER BY sample_id LIMIT 1")
        hostile = st.scalar("SELECT sample_id FROM samples WHERE source = 'hostile'")
        raw = st.scalar("SELECT e.parent_id FROM edges e WHERE e.relation = 'scrubbed_from' LIMIT 1")
        scrubbed = st.scalar("SELECT e.child_id FROM edges e WHERE e.relation = 'scrubbed_from' AND e.parent_id = ?", [raw])
        mixes = [r[0] for r in st.execute("SELECT mix_id FROM mixes ORDER BY created_at, mix_id").fetchall()]
        loop = st.scalar("SELECT DISTINCT loop_id FROM loop_state")
        model = st.scalar("SELECT model_id FROM models WHERE parent_model_id IS NOT NULL ORDER BY created_at DESC LIMIT 1")
        # A learned classifier, its scores over every sample (raw conversations included: their
        # text must stay withheld on its page), and a mix it ranked.
        clf = train(st, TrainSpec("lit", positive="source = 'prose'", negative="source = 'cc'", max_per_class=60))
        score(st, "lit")
        build_mix(st, MixRecipe.parse({"name": "top-lit", "seed": 1, "groups": [
            {"name": "web", "where": "kind = 'web'", "docs": 8, "rank_by": "lit", "top_share": 0.5}]}, "dashboard"))
    return {"gen3": gen3, "hostile": hostile, "raw": raw, "scrubbed": scrubbed, "mix_a": mixes[0], "mix_b": mixes[-1],
            "model": model, "loop": loop, "classifier": clf["classifier_id"]}
