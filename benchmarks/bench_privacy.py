"""The privacy audit as evidence: what tiny models trained on real conversations memorise, and
what curation changes about it.

For each seed: OpenAssistant conversations from ../shared/data, with canaries planted into
copies of them (plain digit codes and PII-shaped phone numbers; 1, 4 and 16 copies each).
The store is then copied, so both arms hold the very same secrets:

- arm "pii only": the pii step alone (phone numbers scrubbed, plain codes kept, no dedup);
- arm "pii + exact dedup": the pii step, then exact dedup (which folds a canary's copies).

Each arm builds the same small mix (every canary copy that survived, 250 other conversations,
30% held out), trains a tiny GPT-2 from one initial model, and is audited with the tool's
defaults (10,000 candidates per canary). The "pii only" arm also trains a short model (fewer
steps on the same mix) for the membership and extraction comparison.

    .venv/bin/python benchmarks/bench_privacy.py [--seeds 2] [--long 600] [--short 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import WORK, machine, realdata  # noqa: E402

CANARIES = ("sample_id IN (SELECT sample_id FROM canary_copies) OR sample_id IN (SELECT child_id FROM edges "
            "WHERE relation = 'scrubbed_from' AND parent_id IN (SELECT sample_id FROM canary_copies))")
MIX = {"name": "chats", "seed": 0, "holdout": {"fraction": 0.3}, "groups": [
    {"name": "canaries", "where": CANARIES}, {"name": "rest", "where": "kind = 'conversation'", "max_docs": 250}]}
RECIPES = {"pii only": [{"type": "pii"}], "pii + exact dedup": [{"type": "pii"}, {"type": "exact_dedup"}]}


def run_seed(data: Path, seed: int, n: int, long_steps: int, short_steps: int, candidates: int) -> dict[str, Any]:
    from mixline.curation.recipe import Recipe
    from mixline.pipelines.audit import AuditConfig, audit
    from mixline.pipelines.canaries import PlantSpec, plant
    from mixline.store import Store

    from mixline import api

    work = WORK / "privacy" / f"seed{seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with Store(work / "planted.duckdb") as st:
        api.ingest(st, [str(data / "conversations/oasst_en_100_message.jsonl")], kind="conversation", source="support")
        plant(st, PlantSpec("support", n=n, repeats=(1, 4, 16), formats=("plain", "phone"), seed=seed))
    out: dict[str, Any] = {"seed": seed, "arms": {}}
    for arm, steps in RECIPES.items():
        path = work / f"{arm.replace(' ', '_').replace('+', 'and')}.duckdb"
        shutil.copy(work / "planted.duckdb", path)
        with Store(path) as st:
            t0 = time.perf_counter()
            api.curate(st, Recipe.parse({"name": arm, "steps": steps}, "bench"))
            mix = api.build_mix(st, api.MixRecipe.parse(MIX)).mix_id
            init = api.init_tiny(st, mix, work / f"{path.stem}-init", seed=seed).model_id
            models = {"long": api.train(st, init, mix, work / f"{path.stem}-long", steps=long_steps, seed=seed).model_id}
            if arm == "pii only":
                models["short"] = api.train(st, init, mix, work / f"{path.stem}-short", steps=short_steps, seed=seed).model_id
            train_s = time.perf_counter() - t0
            audits = {k: audit(st, m, AuditConfig(candidates=candidates, seed=seed)) for k, m in models.items()}
        out["arms"][arm] = {"mix": mix, "train_s": round(train_s, 1), "audits": audits}
    return out


def _exposure(a: dict[str, Any], fmt: str, planted: int) -> list[float]:
    """Exposures of the canaries of a format planted with `planted` copies that reached training."""
    return [c["exposure_bits"] for c in a["canaries"] if c["format"] == fmt and c["planted_copies"] == planted
            and c["trained_copies"] > 0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--n", type=int, default=4, help="canaries per format and repeat count")
    ap.add_argument("--long", type=int, default=600, help="training steps of the audited models")
    ap.add_argument("--short", type=int, default=100, help="training steps of the shorter model (same mix)")
    ap.add_argument("--candidates", type=int, default=10_000)
    args = ap.parse_args()
    data = realdata()
    t_all = time.perf_counter()
    results = [run_seed(data, s, args.n, args.long, args.short, args.candidates) for s in range(args.seeds)]
    from mixline.pipelines.audit import CHANCE_BITS

    print(f"# Privacy audit ({machine()})\n")
    print(f"OpenAssistant conversations; {args.n} canaries per format and repeat count; tiny GPT-2 "
          f"(2 layers, 128 wide), {args.long} steps (long) and {args.short} (short); {args.candidates:,} candidates "
          f"per canary. Chance exposure {CHANCE_BITS:.2f} bits.\n")
    print("| seed | arm | model | plain x1 | plain x4 | plain x16 | phone (scrubbed) x1/x4/x16 | canaries extracted | "
          "extraction exact | suffix tokens matched | membership AUC [95% CI] | audit s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    checks: dict[str, list[bool]] = {"plain exposure x1 < x4 < x16 (pii only, long)": [],
                                     "scrubbed phone canaries within 1 bit of chance": [],
                                     "exact dedup lowers x16 exposure": [],
                                     "longer training: higher membership AUC": [],
                                     "longer training: more suffix tokens reproduced": []}
    for r in results:
        for arm, d in r["arms"].items():
            for which, a in d["audits"].items():
                res = a["results"]
                p = {k: _exposure(a, "plain", k) for k in (1, 4, 16)}
                ph = [x for k in (1, 4, 16) for x in _exposure(a, "phone", k)]
                m, x = res["membership"], res["extraction"]
                fmt = {k: f"{np.mean(v):.2f} ({len(v)})" if v else "-" for k, v in p.items()}
                print(f"| {r['seed']} | {arm} | {which} | {fmt[1]} | {fmt[4]} | {fmt[16]} | "
                      f"{np.mean(ph):.2f} ({len(ph)}) | {res['exposure']['extracted']} | {x.get('exact')}/{x.get('n')} | "
                      f"{x.get('token_match', 0):.1%} | {m['auc']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] | "
                      f"{res['seconds']['total']} |")
        a, b = r["arms"]["pii only"]["audits"], r["arms"]["pii + exact dedup"]["audits"]
        p = {k: np.mean(_exposure(a["long"], "plain", k)) for k in (1, 4, 16)}
        checks["plain exposure x1 < x4 < x16 (pii only, long)"].append(bool(p[1] < p[4] < p[16]))
        ph = [x for k in (1, 4, 16) for x in _exposure(a["long"], "phone", k)]
        checks["scrubbed phone canaries within 1 bit of chance"].append(bool(abs(np.mean(ph) - CHANCE_BITS) < 1.0))
        checks["exact dedup lowers x16 exposure"].append(
            bool(np.mean(_exposure(b["long"], "plain", 16)) < np.mean(_exposure(a["long"], "plain", 16))))
        checks["longer training: higher membership AUC"].append(
            a["long"]["results"]["membership"]["auc"] > a["short"]["results"]["membership"]["auc"])
        checks["longer training: more suffix tokens reproduced"].append(
            a["long"]["results"]["extraction"]["token_match"] > a["short"]["results"]["extraction"]["token_match"])
    print("\nCells are mean exposure in bits (canaries that reached training). Checks, per seed:\n")
    for name, ok in checks.items():
        print(f"- {name}: {sum(ok)} of {len(ok)} seeds")
    audit_s = [a["results"]["seconds"] for r in results for d in r["arms"].values() for a in d["audits"].values()]
    long_audits = [s for r in results for d in r["arms"].values() for k, s in
                   ((k, a["results"]["seconds"]) for k, a in d["audits"].items()) if k == "long"]
    n_can = len(results[0]["arms"]["pii only"]["audits"]["long"]["canaries"])
    print(f"\nCost of one audit ({n_can} canaries x {args.candidates:,} candidates, 100 conversations for extraction, "
          f"up to 200 + 200 documents for membership): {np.mean([s['total'] for s in audit_s]):.0f} s on average "
          f"(exposure {np.mean([s['exposure'] for s in long_audits]):.0f} s, extraction "
          f"{np.mean([s['extraction'] for s in long_audits]):.1f} s, membership {np.mean([s['membership'] for s in long_audits]):.1f} s), "
          f"against {np.mean([d['train_s'] for r in results for d in r['arms'].values()]):.0f} s to curate, mix and train an arm. "
          f"Whole benchmark {time.perf_counter() - t_all:.0f} s.")


if __name__ == "__main__":
    main()
