"""Semantic dedup on one CPU core: torch fp32 (semantic_dedup_v1's embeddings, v2's `backend: torch`) against
ONNX Runtime fp32 (v2's default on a CPU) and int8, on the same real documents, in one run.

Docs: bench_profiles.py's mixed corpus (web, MedQuAD, LegalBench, GSM8K, hh-rlhf, pythia
outputs) plus 1,000 Leipzig documents in 20 languages, BENCH_SEMANTIC_DOCS of them
(default 3,000, drawn with a fixed seed). Each backend embeds every doc on one thread, then the step's own k-means
partitions, pair search and union-find run on its vectors. Agreement with torch's clusters:
of the pairs either side puts in one cluster, the share both do; and over all pairs.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MIXLINE_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, realdata, table  # noqa: E402
from bench_profiles import input_files  # noqa: E402
from bench_recipe import multilingual  # noqa: E402

THRESHOLDS = (0.95, 0.9)


def corpus() -> list[str]:
    data = realdata()
    work = Path(tempfile.mkdtemp(prefix="bench_semantic_"))
    files = [p for p, _ in input_files(data, work)] + [multilingual(data, work)[0]]
    rows = [json.loads(line) for p in files for line in p.open(encoding="utf-8")]
    texts = [r.get("text") or "\n".join(v for v in r.values() if isinstance(v, str)) for r in rows]
    seen: set[str] = set()
    uniq = [t for t in texts if t.strip() and not (t in seen or seen.add(t))]  # exact dedup runs before
    n = int(os.environ.get("BENCH_SEMANTIC_DOCS", 3000)) or len(uniq)
    random.Random(0).shuffle(uniq)  # every kind in any prefix
    return uniq[:n]


def cluster_pairs(step: object, vecs: np.ndarray) -> tuple[set[tuple[int, int]], np.ndarray]:
    """(every pair of rows in one cluster, keep flags) from the step's own search on vecs."""
    n = len(vecs)
    flat = pa.array(vecs.reshape(-1), pa.float32())
    feats = pa.table({"sample_id": [f"{i:07d}" for i in range(n)],
                      "vec": pa.FixedSizeListArray.from_arrays(flat, vecs.shape[1])})
    verdicts, clusters = step.reduce(feats, np.arange(n))  # type: ignore[attr-defined]
    groups: dict[str, list[int]] = {}
    for sid, cid in zip(clusters.sample_ids, clusters.cluster_ids, strict=True):
        groups.setdefault(cid, []).append(int(sid))
    pairs = {(a, b) for g in groups.values() for i, a in enumerate(sorted(g)) for b in sorted(g)[i + 1:]}
    return pairs, verdicts.keep


def main() -> None:
    import torch
    from mixline.curation.dedup.semantic import SemanticDedup
    from mixline.curation.embed import Embedder

    torch.set_num_threads(1)
    texts = corpus()
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(texts)} docs, {mb:.1f} MB, one thread; {machine()}", flush=True)
    vecs: dict[str, np.ndarray] = {}
    secs: dict[str, float] = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        emb = Embedder(device="cpu", backend=backend)
        emb.encode(["warm up: load the model and, once, export it"])
        t0 = time.perf_counter()
        vecs[backend] = emb.encode(texts)
        secs[backend] = time.perf_counter() - t0
        print(f"  {backend}: {secs[backend]:.1f} s", flush=True)
    rows = []
    n_all = len(texts) * (len(texts) - 1) // 2
    for th in THRESHOLDS:
        step = SemanticDedup(threshold=th)
        ref, ref_keep = cluster_pairs(step, vecs["torch"])
        for backend in ("torch", "onnx", "onnx-int8"):
            got, keep = cluster_pairs(step, vecs[backend])
            union = ref | got
            cos = (vecs["torch"] * vecs[backend]).sum(axis=1)
            rows.append({"threshold": th, "backend": backend, "seconds": round(secs[backend], 1),
                         "docs/s per core": round(len(texts) / secs[backend], 1),
                         "speed-up": round(secs["torch"] / secs[backend], 2),
                         "cosine to torch (mean / min)": f"{cos.mean():.4f} / {cos.min():.4f}",
                         "pairs in clusters": len(got),
                         "pair agreement (either side's)": round(len(ref & got) / len(union), 4) if union else 1.0,
                         "pair agreement (all pairs)": round(1 - len(ref ^ got) / n_all, 6),
                         "same keep": round(float((keep == ref_keep).mean()), 4)})
    print(table(rows))


if __name__ == "__main__":
    main()
