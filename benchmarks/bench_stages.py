"""Training stages: replay against forgetting, LoRA against full fine-tuning, and card speed.

1. A tiny GPT-2 (2 layers, 128 wide) is trained on Tiny Shakespeare, then continued on
   MedQuAD answers with 0%, 10% and 30% of the tokens replayed from its prose (training part).
   `model compare` reports, for each, the change in bits/char on held-out prose (forgetting)
   and on held-out MedQuAD (the domain gain), with bootstrap CIs over documents.
2. Full fine-tuning against LoRA (r = 8, on c_attn) at equal steps, no replay. Biderman et
   al. 2024 ("LoRA Learns Less and Forgets Less") found that LoRA forgets less and gains less.
   Two seeds; the table says whether each direction holds at this size.
3. Two LoRA adapters on the seed-0 base, medical and legal, composed with linear, cat, ties
   and dare_ties; interference is each adapter's own held-out text, composition against alone.
4. `model card` for a model with 5 stages whose mixes hold 1M members in all (built in SQL).
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, realdata, table  # noqa: E402
from mixline.pipelines import models as M  # noqa: E402
from mixline.pipelines import stages  # noqa: E402
from mixline.pipelines.ingest import IngestOptions, ingest  # noqa: E402
from mixline.pipelines.mix import MixRecipe, build  # noqa: E402
from mixline.pipelines.model_card import card  # noqa: E402
from mixline.store import Store  # noqa: E402

SEEDS = [0, 1]
BASE_STEPS, STAGE_STEPS, TOKENS = 300, 150, 120_000


def held(mix_id: str) -> str:
    return f"sample_id IN (SELECT sample_id FROM mix_members WHERE mix_id = '{mix_id}' AND split = 'heldout')"


def mix(st: Store, name: str, groups: list[dict], **extra: object) -> str:
    return build(st, MixRecipe.parse({"name": name, "status": ["kept", "uncurated"], "groups": groups, **extra})).mix_id


def forgetting(out: Path) -> list[dict[str, object]]:
    data = realdata()
    path = WORK / "stages" / "stages.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    for f in (path, Path(f"{path}.wal")):
        f.unlink(missing_ok=True)
    prose = [p.strip() for p in (data / "prose/tinyshakespeare.txt").read_text().split("\n\n") if len(p.strip()) > 120][:1500]
    with gzip.open(data / "domain_medical/medquad_qa.jsonl.gz", "rt") as f:
        med = [a for a in (json.loads(line).get("answer") for _, line in zip(range(2000), f, strict=False)) if a]
    (out / "prose.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in prose))
    (out / "med.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in med))
    rows = []
    with Store(path) as st:
        ingest(st, out / "prose.jsonl", IngestOptions(kind="domain", source="prose", domain="literature"))
        ingest(st, out / "med.jsonl", IngestOptions(kind="domain", source="medquad", domain="medical"))
        general = mix(st, "general", [{"name": "prose", "where": "source = 'prose'"}], holdout={"fraction": 0.1})
        medical = mix(st, "medical", [{"name": "med", "where": "source = 'medquad'"}], holdout={"fraction": 0.1})
        sets = {"general": held(general), "medical": held(medical)}
        roles = {"general": "guard", "medical": "domain"}
        for seed in SEEDS:
            init = M.init_tiny(st, general, out / f"init-{seed}", M.TinyConfig(), seed)
            base = M.train(st, init["model_id"], general, out / f"base-{seed}", M.TrainConfig(steps=BASE_STEPS, seed=seed), f"base-{seed}")
            runs = []
            for replay in (0.0, 0.1, 0.3):
                groups = [{"name": "med", "where": f"source = 'medquad' AND NOT ({held(medical)})", "weight": 1 - replay}]
                if replay:
                    groups.append({"name": "replay", "where": f"source = 'prose' AND NOT ({held(general)})", "weight": replay})
                m = mix(st, f"cpt-replay{int(replay * 100)}", groups, total_tokens=TOKENS)
                runs.append((f"full, replay {replay:.0%}", m, M.TrainConfig(steps=STAGE_STEPS, seed=seed, lr=1e-3)))
            runs.append(("LoRA r=8, replay 0%", runs[0][1], M.TrainConfig(steps=STAGE_STEPS, seed=seed, lr=1e-3, method="lora")))
            for label, m, cfg in runs:
                t = time.perf_counter()
                after = M.train(st, base["model_id"], m, out / f"{label.replace(' ', '_').replace(',', '').replace('%', '')}-{seed}", cfg)
                secs = time.perf_counter() - t
                c = stages.compare(st, base["model_id"], after["model_id"], sets, roles=roles, max_docs=150, bootstrap=1000, seed=seed)
                g, d = c["sets"]["general"], c["sets"]["medical"]
                rows.append({"seed": seed, "stage": label, "train s": round(secs, 1),
                             "general bits/char": f"{g['bits_per_char_before']:.3f} -> {g['bits_per_char_after']:.3f}",
                             "forgetting (general)": f"{g['relative_change']:+.1%} [{g['ci95'][0]:+.1%}, {g['ci95'][1]:+.1%}]",
                             "medical bits/char": f"{d['bits_per_char_before']:.3f} -> {d['bits_per_char_after']:.3f}",
                             "gain (medical)": f"{-d['relative_change']:+.1%} [{-d['ci95'][1]:+.1%}, {-d['ci95'][0]:+.1%}]",
                             "alert": "FORGETTING" if g["forgetting_alert"] else "-",
                             "_f": g["relative_change"], "_g": -d["relative_change"]})
    return rows


def composition(out: Path) -> list[dict[str, object]]:
    """Two adapters on one base (medical, legal), composed by several methods; interference on
    each adapter's own held-out text: the composition against that adapter alone."""
    data = realdata()
    path = WORK / "stages" / "stages.duckdb"
    legal = [r["text"] for r in map(json.loads, (data / "domain_legal/legalbench_train_permissive.jsonl").read_text().splitlines())
             if r.get("text")]
    (out / "legal.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in legal))
    rows = []
    with Store(path) as st:
        ingest(st, out / "legal.jsonl", IngestOptions(kind="domain", source="legalbench", domain="legal"))
        medical = mix(st, "medical", [{"name": "med", "where": "source = 'medquad'"}], holdout={"fraction": 0.1})
        legal_mix = mix(st, "legal", [{"name": "legal", "where": "source = 'legalbench'"}], holdout={"fraction": 0.1})
        base = st.scalar("SELECT model_id FROM models WHERE name = 'base-0'")
        cfg = M.TrainConfig(steps=STAGE_STEPS, seed=0, lr=1e-3, method="lora")
        med = M.train(st, base, medical, out / "adapter-med", cfg, "adapter-med")
        law = M.train(st, base, legal_mix, out / "adapter-legal", cfg, "adapter-legal")
        for method in ("linear", "cat", "ties", "dare_ties"):
            res = stages.compose(st, [med["model_id"], law["model_id"]], [0.5, 0.5], method, out / f"compose-{method}", max_docs=100)
            for i in res["interference"]:
                rows.append({"method": method, "on the text of": "medical" if i["adapter"] == med["model_id"] else "legal",
                             "adapter alone bits/char": round(i["alone"], 3), "composition bits/char": round(i["composed"], 3),
                             "interference": f"{i['interference']:+.1%} [{i['ci95'][0]:+.1%}, {i['ci95'][1]:+.1%}]"})
    return rows


def card_speed() -> tuple[float, int]:
    path = WORK / "stages" / "card.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    for f in (path, Path(f"{path}.wal")):
        f.unlink(missing_ok=True)
    with Store(path) as st:
        st.execute("INSERT INTO sources (source_id, name, kind, license) SELECT 'src' || i, 'source' || i, 'web', ['CC-BY-4.0','MIT','ODC-BY'][i % 3 + 1] FROM range(6) t(i)")
        st.execute("""INSERT INTO sample_rows (sample_id, source_id, source, kind, text, content_hash, n_chars, synth_depth, created_run_id)
                      SELECT substr(md5(i::VARCHAR), 1, 32), 'src' || (i % 6), 'source' || (i % 6), 'web', 'x', md5(i::VARCHAR), 400,
                             CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END, 'r' FROM range(1000000) t(i)""")
        st.execute("""INSERT INTO decisions SELECT 'rc', substr(md5(i::VARCHAR), 1, 32), s, CASE WHEN s = 'toxicity_v1' AND i % 50 = 0
                      THEN 'kept' ELSE 'kept' END, CASE WHEN s = 'toxicity_v1' AND i % 50 = 0 THEN 'toxic' END, NULL
                      FROM range(1000000) t(i), (VALUES ('pii_v3'), ('toxicity_v1')) v(s)""")
        parent = None
        for k in range(5):
            mix_id = f"mix-stage{k}"
            st.execute("INSERT INTO mixes VALUES (?, ?, '{}', 'h', 'r', now())", [mix_id, f"stage{k}"])
            st.execute(f"""INSERT INTO mix_members SELECT '{mix_id}', substr(md5(i::VARCHAR), 1, 32), 1, 'train'
                           FROM range({k * 200_000}, {(k + 1) * 200_000}) t(i)""")
            mid = f"model-stage{k}"
            st.execute("INSERT INTO models VALUES (?, ?, 'b', ?, 'full', ?, 'r', '/x', '{\"lr\": 0.001}', now(), ?, 'sha256:x')",
                       [mid, f"stage{k}", parent, mix_id, ["pretraining", "continued-pretraining", "sft", "preference", "adapter"][k]])
            st.execute("INSERT INTO evals VALUES (?, 'general', 'bits_per_char', ?, 'r', 100, 1000, 'guard')", [mid, 2.5 + 0.01 * k])
            parent = mid
        times = []
        for _ in range(5):
            t = time.perf_counter()
            c = card(st, "model-stage4")
            times.append(time.perf_counter() - t)
        members = sum(s["mix"]["members"] for s in c["stages"])
    return statistics.median(times), members


def main() -> None:
    out = WORK / "stages" / "models"
    out.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["compose"]:  # after a full run: adapters on its seed-0 base
        print(f"Adapter composition, weights 0.5/0.5 ({machine()})\n")
        print(table(composition(out)))
        return
    t0 = time.perf_counter()
    rows = forgetting(out)
    print(f"Stages: replay and LoRA vs full ({machine()}); base {BASE_STEPS} steps on prose, each stage {STAGE_STEPS} steps "
          f"on {TOKENS:,}-token mixes; {time.perf_counter() - t0:.0f} s\n")
    print(table([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]))
    print()
    checks = []
    for seed in SEEDS:
        by = {r["stage"]: r for r in rows if r["seed"] == seed}
        f = [by[f"full, replay {x}"]["_f"] for x in ("0%", "10%", "30%")]
        checks.append({"seed": seed, "check": "more replay, less forgetting (0% > 10% > 30%)",
                       "holds": f[0] > f[1] > f[2], "values": ", ".join(f"{x:+.1%}" for x in f)})
        full, lora = by["full, replay 0%"], by["LoRA r=8, replay 0%"]
        checks.append({"seed": seed, "check": "LoRA forgets less than full", "holds": lora["_f"] < full["_f"],
                       "values": f"LoRA {lora['_f']:+.1%}, full {full['_f']:+.1%}"})
        checks.append({"seed": seed, "check": "LoRA learns less than full", "holds": lora["_g"] < full["_g"],
                       "values": f"LoRA {lora['_g']:+.1%}, full {full['_g']:+.1%}"})
    print(table(checks))
    print()
    print(table(composition(out)))
    secs, members = card_speed()
    print(f"\nmodel card, 5 stages, {members:,} mix members in all: {1000 * secs:.0f} ms (median of 5; target 1000 ms)")


if __name__ == "__main__":
    main()
