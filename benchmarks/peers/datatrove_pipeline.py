"""Peer: datatrove's closest pipeline to mixline's default recipe, on one worker.

Stage 1: JSONL reader, Gopher repetition, Gopher quality, C4 quality, FineWeb quality, the PII
formatter (emails and IPs), a JSONL writer of the survivors, MinHash signatures. Stages 2-4:
MinHash buckets (one task per bucket, one at a time), clusters, and the filter over the
survivors. Prints seconds, peak RSS (this process and its children) and counts.
Language identification is left out: datatrove's LanguageFilter downloads a fastText model.

    python datatrove_pipeline.py docs.jsonl WORK_DIR
"""

import json
import resource
import shutil
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
)
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig


def count(folder: Path) -> int:
    return sum(1 for f in folder.glob("*.jsonl") for _ in open(f))


if __name__ == "__main__":
    src, work = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    stages = [
        [JsonlReader(str(src.parent), glob_pattern=src.name), GopherRepetitionFilter(), GopherQualityFilter(),
         C4QualityFilter(), FineWebQualityFilter(), PIIFormatter(),
         JsonlWriter(str(work / "filtered"), compression=None),
         MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg)],
        [MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
        [MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"), config=cfg)],
        [JsonlReader(str(work / "filtered"), glob_pattern="*.jsonl"),
         MinhashDedupFilter(input_folder=str(work / "remove_ids")), JsonlWriter(str(work / "kept"), compression=None)],
    ]
    t0 = time.perf_counter()
    for i, pipe in enumerate(stages):
        tasks = cfg.num_buckets if i == 1 else 1
        LocalPipelineExecutor(pipeline=pipe, tasks=tasks, workers=1, logging_dir=str(work / f"logs{i}")).run()
    dt = time.perf_counter() - t0
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"seconds": dt, "peak_rss_mb": peak / 1024, "docs": sum(1 for _ in open(src)),
                      "after_filters": count(work / "filtered"), "kept": count(work / "kept")}))
