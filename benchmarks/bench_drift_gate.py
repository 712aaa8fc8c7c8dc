"""The drift gate, validated: does it tell the loop that collapses from the loop that is safe?

Two real prose corpora (Tiny Shakespeare; the State of the Union addresses 1945-2006), a tiny
GPT-2 trained locally, BENCH_GENERATIONS generations (default 5) of replace and accumulate,
at temperatures 0.7 and 1.0, with seeds BENCH_SEEDS (default 0,1). The loops run with the
gate in report mode (`gate = "none"`, checks on) so that both strategies reach the last
generation. Then:

- the mix gate (`check-mix` on the mix about to be trained) per generation;
- `trend` over the generations, for mixes and for outputs;
- the tail metrics (rare-word coverage, share of the human vocabulary used) per generation;
- human vs human: 20 splits of each corpus as a fake mix (check-mix) and as five fake
  generations (trend), counting false alerts.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, realdata, table  # noqa: E402
from mixline.curation.drift import DriftChecker, DriftConfig, trips_gate  # noqa: E402
from mixline.curation.drift_gate import trend, trend_of  # noqa: E402
from mixline.pipelines.ingest import IngestOptions, ingest  # noqa: E402
from mixline.pipelines.loop import Loop, LoopConfig  # noqa: E402
from mixline.store import Store  # noqa: E402

GENERATIONS = int(os.environ.get("BENCH_GENERATIONS", 5))
SEEDS = [int(s) for s in os.environ.get("BENCH_SEEDS", "0,1").split(",")]
TEMPS = [float(t) for t in os.environ.get("BENCH_TEMPS", "0.7,1.0").split(",")]
CORPORA = os.environ.get("BENCH_CORPORA", "shakespeare,sotu").split(",")
SPLITS = int(os.environ.get("BENCH_SPLITS", 20))
TAIL = ("rare_word_coverage", "ref_vocab_coverage")


def corpus(name: str) -> list[str]:
    data = realdata() / "prose"
    if name == "shakespeare":
        text = (data / "tinyshakespeare.txt").read_text(encoding="utf-8")
        return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:1500]
    paras = []
    with zipfile.ZipFile(data / "state_union.zip") as z:
        for n in sorted(z.namelist()):
            if n.endswith(".txt"):
                body = z.read(n).decode("latin-1").split("\n", 3)[-1]
                paras += [p.strip() for p in body.split("\n") if len(p.strip()) > 200]
    rng = np.random.default_rng(0)
    return [paras[i] for i in sorted(rng.choice(len(paras), min(1500, len(paras)), replace=False))]


def human_false_alerts(texts: list[str]) -> tuple[int, int]:
    """(check-mix false alerts, trend false alerts) over SPLITS random human-vs-human splits."""
    mix_alerts = trend_alerts = 0
    cfg = DriftConfig(embeddings=False, bootstrap=20)
    for s in range(SPLITS):
        rng = np.random.default_rng(100 + s)
        perm = rng.permutation(len(texts))
        ref = [texts[i] for i in perm[: len(texts) // 2]]
        rest = perm[len(texts) // 2:]
        # What check-mix alerts on: moves beyond noise, toward collapse, past the practical margins.
        rep0 = DriftChecker(DriftConfig(embeddings=False, bootstrap=20, seed=s)).check([texts[i] for i in rest[:300]], ref)
        mix_alerts += any(trips_gate(m, cfg) for m in rep0.metrics)
        # Five fake generations: disjoint human samples, checked like a loop's outputs.
        series: dict[str, list[tuple[int, float, float, float, float, float]]] = {}
        for g in range(1, 6):
            part = [texts[i] for i in rest[(g - 1) * 120: g * 120]]
            rep = DriftChecker(DriftConfig(embeddings=False, bootstrap=20, seed=1000 * s + g)).check(part, ref)
            for m in rep.metrics:
                signed = m.signed_distance
                series.setdefault(m.metric, []).append((g, signed, m.null_sd, m.value, m.reference_value or 0.0, m.null_mean))
        trend_alerts += trend_of(series, cfg.alpha)["flagged"]
    return mix_alerts, trend_alerts


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    gen_rows, trend_rows, checks, human = [], [], [], []
    t_start = time.perf_counter()
    for name in CORPORA:
        texts = corpus(name)
        store_path = WORK / f"gate_{name}.duckdb"
        for f in (store_path, Path(f"{store_path}.wal"), Path(f"{store_path}.snapshot")):
            f.unlink(missing_ok=True)
        src = WORK / f"{name}.jsonl"
        src.write_text("".join(json.dumps({"text": p}) + "\n" for p in texts))
        with Store(store_path) as st:
            ingest(st, src, IngestOptions(kind="domain", source=name))
            for temp in TEMPS:
                for seed in SEEDS:
                    loop = f"{name}-t{temp}-s{seed}"
                    cfg = LoopConfig(name=loop, real_where=f"source = '{name}'", generations=GENERATIONS,
                                     samples_per_generation=150, train_steps=120, temperature=temp, seed=seed, eval_docs=60)
                    out = Loop(st, cfg, WORK / "gate_models" / loop).run()
                    tails = {(r["subject"], r["metric"]): r for r in st.rows(
                        "SELECT subject, metric, value, reference_value FROM drift WHERE subject LIKE ?", [f"loop:{loop}:%"])}
                    for r in out:
                        if r["generation"] == 0:
                            continue
                        row = {"corpus": name, "temperature": temp, "seed": seed, "strategy": r["strategy"],
                               "generation": r["generation"], "bits/char": round(r["bits_per_char"], 3),
                               "mix gate": "ALERT" if r["mix_alert"] else "pass",
                               "output check": "ALERT" if r["drift_alert"] else "pass"}
                        for m in TAIL:
                            t = tails.get((f"loop:{loop}:{r['strategy']}:gen{r['generation']}:output", m))
                            row[f"{m} (out / human)"] = round(t["value"] / t["reference_value"], 3) if t and t["reference_value"] else "-"
                        gen_rows.append(row)
                    for t in trend(st, loop)["trends"]:
                        trend_rows.append({"corpus": name, "temperature": temp, "seed": seed, "strategy": t["strategy"],
                                           "of": t["of"], "trend": "FLAGGED" if t["flagged"] else "none",
                                           "moved": ", ".join(t["moved"]) or "-"})
        human.append((name, *human_false_alerts(texts)))

    def rows_of(**kw: object) -> list[dict]:
        return [r for r in gen_rows if all(r[k] == v for k, v in kw.items())]

    for name in CORPORA:
        for seed in SEEDS:
            for temp in TEMPS:
                rep = rows_of(corpus=name, seed=seed, temperature=temp, strategy="replace")
                first = next((r["generation"] for r in rep if r["mix gate"] == "ALERT"), None)
                checks.append({"check": f"{name} t={temp} seed {seed}: mix gate alerts on replace by generation 2",
                               "result": f"first alert at generation {first}", "holds": first is not None and first <= 2})
                acc = rows_of(corpus=name, seed=seed, temperature=temp, strategy="accumulate")
                n_acc = sum(r["mix gate"] == "ALERT" for r in acc)
                checks.append({"check": f"{name} t={temp} seed {seed}: mix gate silent on accumulate"
                               + ("" if temp == 1.0 else " (reported at 0.7)"),
                               "result": f"{n_acc} of {len(acc)} generations alert", "holds": n_acc == 0 if temp == 1.0 else "-"})
                tr = {(t["strategy"], t["of"]): t["trend"] for t in trend_rows
                      if t["corpus"] == name and t["seed"] == seed and t["temperature"] == temp}
                checks.append({"check": f"{name} t={temp} seed {seed}: trend flags replace, not accumulate (outputs)",
                               "result": f"replace {tr.get(('replace', 'output'))}, accumulate {tr.get(('accumulate', 'output'))}",
                               "holds": tr.get(("replace", "output")) == "FLAGGED" and tr.get(("accumulate", "output")) == "none"})
                for m in TAIL:
                    last_r = next((r for r in rep if r["generation"] == GENERATIONS), None)
                    last_a = next((r for r in acc if r["generation"] == GENERATIONS), None)
                    if last_r and last_a and last_r[f"{m} (out / human)"] != "-":
                        checks.append({"check": f"{name} t={temp} seed {seed}: {m} falls further under replace",
                                       "result": f"replace {last_r[f'{m} (out / human)']}, accumulate {last_a[f'{m} (out / human)']}",
                                       "holds": last_r[f"{m} (out / human)"] < last_a[f"{m} (out / human)"]})
    for name, mix_fa, trend_fa in human:
        checks.append({"check": f"{name}: human vs human, {SPLITS} splits", "result": f"check-mix {mix_fa}, trend {trend_fa} false alerts",
                       "holds": mix_fa <= 1 and trend_fa <= 1})
    print(f"machine: {machine()}; corpora {', '.join(CORPORA)}; seeds {SEEDS}; temperatures {TEMPS}; "
          f"{GENERATIONS} generations of 150 samples; {time.perf_counter() - t_start:.0f} s in all\n")
    print(table(gen_rows))
    print()
    print(table(trend_rows))
    print()
    print(table(checks))


if __name__ == "__main__":
    main()
