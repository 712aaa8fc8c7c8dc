"""Curation side by side: Gopher rules vs datatrove, MinHash vs datatrove/datasketch/rensa,
semantic-dedup embedding vs plain sentence-transformers, and MinHash memory at 1M docs.

Peers run from benchmarks/_work/peers (a venv with datatrove, spacy, datasketch, rensa),
because datatrove pins xxhash<4. Create it with `make bench`.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PEAK_RSS, RUNS, WORK, best_of, best_peer, machine, realdata, table, timed  # noqa: E402

N_DOCS = int(os.environ.get("BENCH_DOCS", 10_000))


def load_docs(n: int) -> list[dict[str, str]]:
    data = realdata()
    web = [json.loads(x)["text"] for x in gzip.open(data / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt")]
    texts = [("web", t) for t in web if t.strip()]
    for line in gzip.open(data / "domain_medical/medquad_qa.jsonl.gz", "rt"):
        r = json.loads(line)
        texts.append(("medical", r["question"] + "\n\n" + r["answer"]))
        if len(texts) >= n:
            break
    return [{"id": f"d{i}", "source": src, "text": t} for i, (src, t) in enumerate(texts[:n])]


def agreement(ids: list[str], a: set[str], b: set[str]) -> float:
    return sum(1 for i in ids if (i in a) == (i in b)) / len(ids)


def bench_gopher(docs: list[dict[str, str]], path: Path) -> list[dict]:
    from mixline.curation.filters.gopher import GopherQuality

    step = GopherQuality()
    batch = pa.table({"text": [d["text"] for d in docs]})
    step.decide(batch.slice(0, 200))  # warm up, as the datatrove script does with a sentence
    ours_s, verdicts = best_of(lambda: step.decide(batch))
    ours = verdicts.keep
    theirs = best_peer("datatrove_gopher.py", str(path))
    same = sum(1 for d, k in zip(docs, ours.tolist(), strict=True) if theirs["verdicts"][d["id"]] == k) / len(docs)
    n = len(docs)
    return [
        {"step": "Gopher quality", "tool": "mixline", "docs/s": n / ours_s, "speed-up": theirs["seconds"] / ours_s, "same verdict": same},
        {"step": "Gopher quality", "tool": "datatrove GopherQualityFilter", "docs/s": n / theirs["seconds"], "speed-up": 1.0, "same verdict": 1.0},
    ]


def bench_minhash(docs: list[dict[str, str]], path: Path) -> list[dict]:
    from mixline.curation.dedup.minhash import MinHashDedup, MinHashParams

    ids = [d["id"] for d in docs]
    step = MinHashDedup()
    # Warm up (the rensa import, first allocations): the peers also import before their clocks start.
    step.features(pa.table({"sample_id": ids[:200], "text": [d["text"] for d in docs[:200]]}))

    def run() -> Any:
        feats = [step.features(pa.table({"sample_id": ids[i:i + 5000], "text": [d["text"] for d in docs[i:i + 5000]]}))
                 for i in range(0, len(docs), 5000)]
        return step.reduce(pa.concat_tables(feats), np.arange(len(ids)))[0]

    ours_s, v = best_of(run)
    ours = {i for i, k in zip(ids, v.keep.tolist(), strict=True) if not k}
    dt = best_peer("datatrove_minhash.py", str(path), str(WORK / "dt_minhash"))
    ds = best_peer("sketch_minhash.py", "datasketch", str(path))
    rs = best_peer("sketch_minhash.py", "rensa", str(path))
    n = len(docs)
    rows = [{"step": "MinHash end to end", "tool": "mixline", "docs/s": n / ours_s, "speed-up": dt["seconds"] / ours_s,
             "same verdict": agreement(ids, ours, set(dt["removed"])), "removed": len(ours)}]
    for name, r in (("datatrove (4 stages)", dt), ("datasketch", ds), ("rensa pipeline", rs)):
        rows.append({"step": "MinHash end to end", "tool": name, "docs/s": n / r["seconds"], "speed-up": dt["seconds"] / r["seconds"],
                     "same verdict": agreement(ids, ours, set(r["removed"])), "removed": len(r["removed"])})
    # The noise floor: how often each tool agrees with itself (another seed) or with a
    # peer, on the web docs and on the templated medical answers apart.
    other = MinHashDedup(MinHashParams(seed=2))
    v2, _ = other.reduce(other.features(pa.table({"sample_id": ids, "text": [d["text"] for d in docs]})), np.arange(len(ids)))
    ours2 = {i for i, k in zip(ids, v2.keep.tolist(), strict=True) if not k}
    web = [d["id"] for d in docs if d["source"] == "web"]
    med = [d["id"] for d in docs if d["source"] == "medical"]
    sets = {"mixline": ours, "mixline seed 2": ours2, "datatrove": set(dt["removed"]), "datasketch": set(ds["removed"]),
            "rensa": set(rs["removed"])}
    global AGREEMENT
    AGREEMENT = [{"pair": f"{a} vs {b}", "all docs": agreement(ids, sets[a], sets[b]), f"web ({len(web)})": agreement(web, sets[a], sets[b]),
                  f"medical ({len(med)})": agreement(med, sets[a], sets[b])}
                 for a, b in (("mixline", "datatrove"), ("mixline", "datasketch"), ("mixline", "rensa"), ("mixline", "mixline seed 2"),
                              ("datatrove", "datasketch"), ("datasketch", "rensa"))]
    return rows


AGREEMENT: list[dict] = []


def bench_semantic(docs: list[dict[str, str]]) -> list[dict]:
    from mixline.curation.embed import Embedder, cached_embeddings
    from mixline.store import Store
    from mixline.store.ids import content_id

    texts = [d["text"][:2000] for d in docs[:2000]]
    hashes = [content_id(t) for t in texts]
    emb = Embedder()
    emb.encode(["warm up"])
    st = Store(":memory:")
    t0 = time.perf_counter()
    cached_embeddings(st, emb, hashes, texts)
    ours_s = time.perf_counter() - t0
    before = emb.embedded
    t0 = time.perf_counter()
    cached_embeddings(st, emb, hashes, texts)
    second_s = time.perf_counter() - t0
    again = emb.embedded - before
    model = emb._load()
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64, normalize_embeddings=True)
    plain_s = time.perf_counter() - t0
    n = len(texts)
    return [
        {"step": "embedding (first run)", "tool": "mixline cached_embeddings", "docs/s": n / ours_s, "speed-up": plain_s / ours_s, "same verdict": "", "removed": ""},
        {"step": "embedding (second run)", "tool": "mixline cached_embeddings", "docs/s": n / second_s, "speed-up": plain_s / second_s, "same verdict": f"{again} re-embedded", "removed": ""},
        {"step": "embedding", "tool": "sentence-transformers encode (fp32)", "docs/s": n / plain_s, "speed-up": 1.0, "same verdict": "", "removed": ""},
    ]


MEMORY = PEAK_RSS + """
import json, random, time
import numpy as np, pyarrow as pa
from mixline.curation.dedup.minhash import MinHashDedup
docs = json.load(open('{src}'))
rng = random.Random(0)
step = MinHashDedup()
feats = []
t0 = time.perf_counter()
n = 0
while n < {n}:
    texts = []
    for _ in range(10000):
        words = docs[rng.randrange(len(docs))].split()
        k = rng.randrange(len(words)) if words else 0
        words[k:k + 1] = [str(n)]  # a change per copy; most stay near-duplicates of their source
        texts.append(' '.join(words))
        n += 1
    feats.append(step.features(pa.table({{'sample_id': [str(i) for i in range(n - len(texts), n)], 'text': texts}})))
v, c = step.reduce(pa.concat_tables(feats), np.arange(n))
print(json.dumps({{'seconds': time.perf_counter() - t0, 'peak_mb': _peak(), 'removed': int((~v.keep).sum())}}))
"""


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    docs = load_docs(N_DOCS)
    path = WORK / "curation_docs.jsonl"
    with path.open("w") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    rows = bench_gopher(docs, path) + bench_minhash(docs, path) + bench_semantic(docs)
    for r in rows:
        r.setdefault("removed", "")
    src = WORK / "memory_docs.json"
    json.dump([d["text"][:1500] for d in docs], src.open("w"))
    mem_n = int(os.environ.get("BENCH_MEMORY_DOCS", 1_000_000))
    mem = timed(MEMORY.format(src=src, n=mem_n))
    print(f"## Curation ({machine()})\n")
    print(f"{len(docs):,} real docs (Common Crawl + MedQuAD); one core for mixline's filters, peers as shipped; each tool's best of {RUNS} runs.\n")
    print(table(rows))
    print("\nMinHash verdicts (removed or kept), each pair of tools on the same docs:\n")
    print(table(AGREEMENT))
    print(f"\nMinHash on {mem_n:,} docs (real text with one changed word per copy): {mem['seconds']:.0f} s, "
          f"peak RSS {mem['peak_mb']:.0f} MB (target < 4096), {mem['removed']:,} removed as near-duplicates.")


if __name__ == "__main__":
    main()
