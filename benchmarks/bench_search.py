"""Mixture search as evidence: does the searched mix beat hand-written weights and natural
proportions at the same token budget, confirmed on a fresh seed?

Five groups from ../shared/data, curated by length and exact dedup: Common Crawl pages (web),
MedQuAD answers (medical), LegalBench (legal), GSM8K solutions (math) and OpenAssistant
conversations. Target: held-out MedQuAD answers; general guard: held-out web pages (an eighth
of each, by a hash of the sample id, never in a proxy mix). The hand-written recipe gives
web 0.4, medical 0.15, legal 0.15, math 0.15, conversations 0.15. For each seed the search
trains `--proxies` tiny GPT-2 proxies (2 layers, 64 wide) and confirms its choice with one
more proxy per mix (chosen, hand, natural) on a fresh seed.

    .venv/bin/python benchmarks/bench_search.py [--seeds 2] [--proxies 16] [--proxy-tokens 100000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WORK, machine, realdata  # noqa: E402

HELD = "substr(md5(sample_id), 1, 1) IN ('0', '1')"
TARGET = f"source = 'medquad' AND {HELD}"
GENERAL = f"source = 'cc' AND {HELD}"
RECIPE = {"name": "hand", "seed": 0, "total_tokens": 400_000, "groups": [
    {"name": "web", "where": "source = 'cc'", "weight": 0.4},
    {"name": "medical", "where": "source = 'medquad'", "weight": 0.15},
    {"name": "legal", "where": "source = 'legal'", "weight": 0.15},
    {"name": "math", "where": "source = 'gsm8k'", "weight": 0.15},
    {"name": "conversations", "where": "source = 'oasst'", "weight": 0.15}]}


def build_store(data: Path, work: Path) -> Path:
    from mixline.curation.recipe import Recipe
    from mixline.store import Store

    from mixline import api

    work.mkdir(parents=True, exist_ok=True)
    med = [json.loads(line) for _, line in zip(range(3000), gzip.open(data / "domain_medical/medquad_qa.jsonl.gz", "rt"), strict=False)]
    (work / "med.jsonl").write_text("".join(json.dumps({"text": r["answer"]}) + "\n" for r in med))
    gsm = [json.loads(line) for line in (data / "benchmarks/gsm8k_train.jsonl").open()][:3000]
    (work / "gsm.jsonl").write_text("".join(json.dumps({"text": f"{r['question']}\n{r['answer']}"}) + "\n" for r in gsm))
    path = work / "store.duckdb"
    with Store(path) as st:
        api.ingest(st, [str(data / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")], kind="web", source="cc")
        api.ingest(st, [str(work / "med.jsonl")], kind="domain", domain="medical", source="medquad")
        api.ingest(st, [str(data / "domain_legal/legalbench_train_permissive.jsonl")], kind="domain", domain="legal", source="legal")
        api.ingest(st, [str(work / "gsm.jsonl")], kind="domain", domain="math", source="gsm8k")
        api.ingest(st, [str(data / "conversations/oasst_en_100_message.jsonl")], kind="conversation", source="oasst")
        api.curate(st, Recipe.parse({"name": "light", "steps": [{"type": "length", "min_chars": 50},
                                                                {"type": "exact_dedup"}]}, "bench"))
    return path


def main() -> None:
    from mixline.pipelines.mix import MixRecipe
    from mixline.pipelines.search import SearchConfig, search
    from mixline.store import Store

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--proxies", type=int, default=16)
    ap.add_argument("--proxy-tokens", type=int, default=100_000)
    args = ap.parse_args()
    work = WORK / "search"
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    path = build_store(realdata(), work)
    setup_s = time.perf_counter() - t0
    rows = []
    for seed in range(args.seeds):
        with Store(path) as st:
            cfg = SearchConfig(target=TARGET, general=GENERAL, proxies=args.proxies, proxy_tokens=args.proxy_tokens, seed=seed)
            rows.append(search(st, MixRecipe.parse(RECIPE), cfg, work / "proxies"))
            sources = st.rows("SELECT source, count(*) AS docs FROM sample_status JOIN samples USING (sample_id) "
                              "WHERE status = 'kept' GROUP BY 1 ORDER BY 1")
    groups = [g["name"] for g in RECIPE["groups"]]
    print(f"# Mixture search ({machine()})\n")
    print("Kept documents: " + ", ".join(f"{r['source']} {r['docs']:,}" for r in sources) + f"; set-up {setup_s:.0f} s.\n")
    print(f"{args.proxies} proxies per seed, {args.proxy_tokens:,} train tokens each ({rows[0]['proxy_steps']} steps), "
          "tiny GPT-2 2x64; target held-out MedQuAD, guard held-out web.\n")
    print("| seed | fit R² (in sample) | R² (leave-one-out) | Spearman (leave-one-out) | chosen weights (" + ", ".join(groups)
          + ") | predicted gain (bits/char) | fresh seed: chosen / hand / natural target | general chosen / hand | wins | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    wins, rhos = 0, []
    for seed, r in enumerate(rows):
        f = r["fit"]["target"]
        rhos.append(f["spearman_loo"])
        if not r["reliable"]:
            print(f"| {seed} | {f['r2_in_sample']:.2f} | {f['r2_loo']:.2f} | {f['spearman_loo']:.2f} | - | - | {r['verdict']} | - | - | "
                  f"{r['seconds']['total']} |")
            continue
        c = r["confirmation"]
        ct, ht, nt = (c[k]["target_bpc"] for k in ("confirm-chosen", "confirm-hand", "confirm-natural"))
        won = ct < min(ht, nt)
        wins += won
        p = r["predicted"]
        print(f"| {seed} | {f['r2_in_sample']:.2f} | {f['r2_loo']:.2f} | {f['spearman_loo']:.2f} | "
              + ", ".join(f"{w:.2f}" for w in r["chosen_weights"])
              + f" | {p['gain_bpc']:+.4f} ± {p['gain_sd']:.4f} | {ct:.4f} / {ht:.4f} / {nt:.4f} | "
              f"{c['confirm-chosen']['general_bpc']:.4f} / {c['confirm-hand']['general_bpc']:.4f} | {'yes' if won else 'no'} | "
              f"{r['seconds']['total']} |")
    print(f"\nThe searched mix beat both the hand-written weights and natural proportions on the target at a fresh seed "
          f"in {wins} of {len(rows)} seeds; leave-one-out Spearman {', '.join(f'{x:.2f}' for x in rhos)}.")
    total = sum(r["seconds"]["total"] for r in rows)
    print(f"Cost: {sum(r['proxies'] + 3 for r in rows)} proxies in {total / 60:.1f} minutes "
          f"({sum(r['seconds']['proxies'] for r in rows) / total:.0%} of it the search's proxies: mix build, training and "
          "evaluation; the rest is the shared initial model, the fit and the three confirmations).")


if __name__ == "__main__":
    main()
