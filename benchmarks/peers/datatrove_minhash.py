"""Peer: datatrove's four-stage MinHash (signatures, buckets, clusters, filter), one task each."""

import json
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
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig

if __name__ == "__main__":
    src, work = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    reader = JsonlReader(str(src.parent), glob_pattern=src.name)
    stages = [
        [reader, MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg)],
        [MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
        [MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"), config=cfg)],
        [JsonlReader(str(src.parent), glob_pattern=src.name),
         MinhashDedupFilter(input_folder=str(work / "remove_ids"), exclusion_writer=JsonlWriter(str(work / "removed"), compression=None)),
         JsonlWriter(str(work / "kept"), compression=None)],
    ]
    t0 = time.perf_counter()
    for i, pipe in enumerate(stages):
        # The bucket stage needs one task per bucket; all run one at a time on one worker.
        tasks = cfg.num_buckets if i == 1 else 1
        LocalPipelineExecutor(pipeline=pipe, tasks=tasks, workers=1, logging_dir=str(work / f"logs{i}")).run()
    dt = time.perf_counter() - t0
    removed = [json.loads(line)["id"] for f in sorted((work / "removed").glob("*.jsonl")) for line in open(f)]
    print(json.dumps({"seconds": dt, "removed": removed}))
