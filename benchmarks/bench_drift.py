"""Drift detection on real text: false alerts between human splits, real model output
against human replies, self-instruct outputs, and the cost of a full check.

Every check here uses all metrics, MiniLM embeddings included (embedded once, up front,
and not counted in the check times).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine, realdata, table  # noqa: E402
from mixline.curation.drift import DriftChecker, DriftConfig  # noqa: E402
from mixline.curation.embed import Embedder  # noqa: E402

from tests.test_drift import human_replies  # noqa: E402  (the same OASST walk as the tests)

SPLITS = int(os.environ.get("BENCH_SPLITS", 20))


def pythia(data: Path, sizes: tuple[str, ...], configs: tuple[str, ...]) -> list[str]:
    out = []
    for size in sizes:
        d = json.loads((data / f"synthetic/oasst_sampling_pythia-{size}-deduped-sft.json").read_text())
        out += [o for p in d["prompts"] for r in p["results"] if r["sampling_config"] in configs for o in r["outputs"]]
    return out


def self_instruct(data: Path, name: str, key: str) -> list[str]:
    rows = [json.loads(line) for line in (data / "synthetic/self_instruct" / name).read_text().splitlines()]
    return [r[key].strip() for r in rows if r[key].strip()]


def medical_answers(data: Path, n: int) -> list[str]:
    out = []
    with gzip.open(data / "domain_medical/medquad_qa.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            a = json.loads(line)["answer"].strip()
            if a:
                out.append(a)
            if len(out) >= n:
                break
    return out


def main() -> None:
    data = realdata()
    emb = Embedder()
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        if todo:
            cache.update(zip(todo, emb.encode(todo), strict=True))
        return np.stack([cache[t] for t in texts])

    t0 = time.perf_counter()
    human = human_replies(data)
    k50 = pythia(data, ("1b", "3b", "12b"), ("k50",))
    greedy = pythia(data, ("1b", "3b", "12b"), ("greedy",))
    si_human = self_instruct(data, "text-davinci-003_predictions.jsonl", "target")
    si_davinci = self_instruct(data, "davinci_predictions.jsonl", "response")
    si_003 = self_instruct(data, "text-davinci-003_predictions.jsonl", "response")
    for group in (human, k50, greedy, si_human, si_davinci, si_003):
        embed(group)
    embed_s = time.perf_counter() - t0
    checker = DriftChecker(DriftConfig())

    def check(batch: list[str], ref: list[str]) -> tuple[dict, float]:
        t = time.perf_counter()
        rep = checker.check(batch, ref, embed(batch), embed(ref)).as_dict()
        return rep, time.perf_counter() - t

    # a. Human vs human: a third of the replies against the other two thirds.
    rng = np.random.default_rng(0)
    false_alerts, p_values, hh_moved = 0, [], []
    for _ in range(SPLITS):
        p = rng.permutation(len(human))
        third = len(human) // 3
        rep, _ = check([human[i] for i in p[:third]], [human[i] for i in p[third:]])
        false_alerts += rep["alert"]
        p_values.append(rep["mmd_p_value"])
        if rep["moved"]:
            hh_moved.append(", ".join(rep["moved"]))

    def row(name: str, rep: dict, seconds: float, target: str) -> dict:
        m = {x["metric"]: x for x in rep["metrics"]}
        return {"check": name, "n a side": rep["n_batch"], "alert": rep["alert"], "metrics moved": len(rep["moved"]),
                "Frechet / threshold": f"{m['frechet']['distance']:.3f} / {m['frechet']['threshold']:.3f}",
                "Vendi batch / ref": f"{m['vendi']['value']:.1f} / {m['vendi']['reference_value']:.1f}",
                "MMD p": rep["mmd_p_value"], "seconds": round(seconds, 1), "target": target}

    rows = [{"check": f"human vs human, {SPLITS} random splits", "n a side": len(human) // 3,
             "alert": f"{false_alerts} false", "metrics moved": "; ".join(hh_moved) or "-", "Frechet / threshold": "",
             "Vendi batch / ref": "", "MMD p": f"median {np.median(p_values):.2f}", "seconds": "", "target": "at most 1 false alert in 20"}]
    rows.append(row("Pythia 1b/3b/12b k50 vs human OASST replies", *check(k50, human), "alert"))
    rows.append(row("Pythia 1b/3b/12b greedy vs k50", *check(greedy, k50), "told apart"))
    rows.append(row("self-instruct davinci vs human", *check(si_davinci, si_human), "placed apart"))
    rows.append(row("self-instruct text-davinci-003 vs human", *check(si_003, si_human), "placed apart"))
    rows.append(row("self-instruct davinci vs text-davinci-003", *check(si_davinci, si_003), "placed apart"))

    # Cost: 1,000 samples against a 3,000-sample reference, all metrics, embeddings cached.
    batch = (pythia(data, ("1b", "3b", "12b"), ("k50", "magic_numbers")))[:1000]
    ref = medical_answers(data, 3000)
    embed(batch + ref)
    t = time.perf_counter()
    rep = DriftChecker(DriftConfig(max_samples=1000)).check(batch, ref, embed(batch), embed(ref)).as_dict()
    rows.append(row("cost: Pythia outputs vs MedQuAD answers", rep, time.perf_counter() - t, "1,000 samples in <= 30 s"))

    print(f"## Drift detection ({machine()})\n")
    print(f"All metrics, MiniLM embeddings included; {checker.config.bootstrap} reference-vs-reference pairs per check, "
          f"family-wise alpha {checker.config.alpha}. Embedding the {len(cache):,} texts once took {embed_s:.0f} s before the checks.\n")
    print(table(rows))


if __name__ == "__main__":
    main()
