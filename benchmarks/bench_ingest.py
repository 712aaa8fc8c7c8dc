"""Ingest throughput and memory vs `datasets.load_dataset("json")` + `save_to_disk`.

Builds a JSONL corpus of at least 1 GB from real web and medical text, repeated with
changes (a counter, shuffled sentences, a share of exact copies), then ingests it with
mixline (hashing, exact dedup, provenance) and loads+saves it with datasets, each in a
fresh process, on the same file.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PEAK_RSS, WORK, machine, realdata, table, timed  # noqa: E402

TARGET_BYTES = int(float(sys.argv[1]) * 2**30) if len(sys.argv) > 1 else 2**30


def base_texts() -> list[str]:
    data = realdata()
    texts = []
    with gzip.open(data / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rt") as fh:
        texts += [json.loads(line)["text"] for line in fh]
    with gzip.open(data / "domain_medical/medquad_qa.jsonl.gz", "rt") as fh:
        texts += [(r := json.loads(line))["question"] + "\n\n" + r["answer"] for line in fh]
    return [t for t in texts if t.strip()]


def build(path: Path) -> tuple[int, int]:
    rng = random.Random(0)
    texts = base_texts()
    n = size = 0
    with path.open("w", encoding="utf-8") as fh:
        while size < TARGET_BYTES:
            t = texts[n % len(texts)]
            if rng.random() < 0.9:  # 10% stay exact copies of earlier records
                sents = t.split(". ")
                rng.shuffle(sents)
                t = f"[{n}] " + ". ".join(sents)
            line = json.dumps({"id": f"doc-{n}", "text": t, "url": f"https://example.org/{n}"}) + "\n"
            fh.write(line)
            size += len(line.encode())
            n += 1
    return n, size


MIXLINE = PEAK_RSS + """
import json, time, sys
from pathlib import Path
from mixline.store import Store
from mixline.pipelines.ingest import ingest, IngestOptions
t0 = time.perf_counter()
st = Store(sys.argv[1] if len(sys.argv) > 1 else '{store}')
r = ingest(st, Path('{src}'), IngestOptions(kind='web', source='bench'))
st.close()
print(json.dumps({{'inner_s': time.perf_counter() - t0, 'peak_mb': _peak(), 'ingested': r.ingested, 'duplicates': r.duplicates}}))
"""

DATASETS = PEAK_RSS + """
import json, time
import datasets
datasets.disable_progress_bars()
t0 = time.perf_counter()
ds = datasets.load_dataset('json', data_files='{src}', split='train', cache_dir='{cache}')
ds.save_to_disk('{out}')
print(json.dumps({{'inner_s': time.perf_counter() - t0, 'peak_mb': _peak(), 'rows': len(ds)}}))
"""


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    src = WORK / "ingest_corpus.jsonl"
    if not src.exists() or src.stat().st_size < TARGET_BYTES:
        n, size = build(src)
    else:
        size = src.stat().st_size
        n = sum(1 for _ in src.open("rb"))
    mb = size / 2**20
    store = WORK / "ingest_bench.duckdb"
    for p in (store, WORK / "hf_cache", WORK / "hf_saved"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    m = timed(MIXLINE.format(store=store, src=src), env={"HF_DATASETS_OFFLINE": "1", "MIXLINE_MEMORY_LIMIT": "1GB"})
    d = timed(DATASETS.format(src=src, cache=WORK / "hf_cache", out=WORK / "hf_saved"),
              env={"HF_DATASETS_OFFLINE": "1", "HF_HOME": str(WORK / "hf_home")})
    rows = [
        {"tool": "mixline ingest (hash, exact dedup, provenance, DuckDB)", "seconds": m["wall_s"], "MB/s": mb / m["wall_s"], "peak RSS MB": m["peak_mb"]},
        {"tool": "datasets load_dataset(json) + save_to_disk", "seconds": d["wall_s"], "MB/s": mb / d["wall_s"], "peak RSS MB": d["peak_mb"]},
    ]
    print(f"## Ingest ({machine()})\n")
    print(f"Corpus: {n:,} JSONL records, {mb:,.0f} MB (real web + MedQuAD text repeated with changes, 10% exact copies).")
    print(f"mixline stored {m['ingested']:,} samples and found {m['duplicates']:,} duplicates.\n")
    print(table(rows))
    print(f"\nmixline / datasets time ratio: {m['wall_s'] / d['wall_s']:.2f} (target <= 2.0); "
          f"mixline MB/s: {mb / m['wall_s']:.0f} (target >= 50); peak RSS {m['peak_mb']:.0f} MB (target < 2048)")
    for p in (store, WORK / "hf_cache", WORK / "hf_saved"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
