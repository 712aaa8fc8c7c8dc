"""Curation evidence on real data: Common Crawl copies, CPython near-duplicates, planted benchmarks."""

import gzip
import json
import random
from itertools import combinations

import numpy as np
import pyarrow as pa
from mixline.curation.decontam.ngram import Decontaminate
from mixline.curation.dedup.minhash import MinHashDedup
from mixline.curation.pipeline import curate
from mixline.pipelines.ingest import IngestOptions, ingest

CC = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def test_common_crawl_copies_and_empty_docs_are_removed(store, realdata):
    r = ingest(store, realdata / CC, IngestOptions(kind="web", source="cc"))
    res = curate(store)
    raw = [json.loads(line)["text"] for line in gzip.open(realdata / CC, "rt")]
    stored = [t for (t,) in store.execute("SELECT text FROM samples WHERE created_run_id = ?", [r.run_id]).fetchall()]
    # No empty doc and no second copy of any text survives ingest + curation.
    assert not any(not t.strip() for t in stored)
    assert len(stored) == len(set(stored)) == r.ingested
    assert sum(1 for t in raw if not t.strip()) == 27
    assert len(raw) - len(set(raw)) == 35
    assert 0 < res.kept < res.selected
    # Every kept sample is a raw document or the scrubbed child of one.
    orphans = store.scalar("""SELECT count(*) FROM sample_status st JOIN samples s USING (sample_id)
        WHERE st.status = 'kept' AND s.created_run_id <> ? AND NOT EXISTS (
            SELECT 1 FROM edges e WHERE e.child_id = s.sample_id AND e.relation = 'scrubbed_from')""", [r.run_id])
    assert orphans == 0


def cpython_pairs(realdata):
    rows = [json.loads(line) for line in gzip.open(realdata / "code/cpython_stdlib_3.8_vs_3.12.jsonl.gz", "rt")]
    ids = [f"{r['module']}@{r['python_version']}" for r in rows]
    return rows, ids


def test_cpython_near_duplicate_precision_and_recall(realdata):
    rows, ids = cpython_pairs(realdata)
    step = MinHashDedup()
    _, clusters = step.reduce(step.features(pa.table({"sample_id": ids, "text": [r["text"] for r in rows]})), np.arange(len(ids)))
    groups: dict[str, list[str]] = {}
    for s, c in zip(clusters.sample_ids, clusters.cluster_ids, strict=True):
        groups.setdefault(c, []).append(s)
    predicted = {p for g in groups.values() for p in combinations(sorted(g), 2)}
    gold = {(f"{m}@3.12.1", f"{m}@3.8.18") for m in {r["module"] for r in rows}}
    gold = {tuple(sorted(p)) for p in gold}
    precision = len(predicted & gold) / len(predicted)
    recall = len(predicted & gold) / len(gold)
    print(f"CPython 3.8 vs 3.12 near-dup at the default threshold: precision {precision:.3f}, recall {recall:.3f}")
    # Measured: precision 1.000, recall 0.724 (14 bands x 8 rows; modules edited over four years
    # often fall below Jaccard 0.7). A looser 28 x 4 banding reaches recall 0.955 at precision 0.970.
    assert precision >= 0.95 and recall >= 0.70


def eval_items(realdata):
    items = []
    for line in open(realdata / "benchmarks/gsm8k_train.jsonl"):
        r = json.loads(line)
        items.append(("gsm8k", r["question"]))
    for line in gzip.open(realdata / "benchmarks/HumanEval.jsonl.gz", "rt"):
        r = json.loads(line)
        items.append((f"humaneval:{r['task_id']}", r["prompt"]))
    for line in open(realdata / "benchmarks/mt_bench_question.jsonl"):
        r = json.loads(line)
        items.append((f"mt_bench:{r['question_id']}", "\n\n".join(r["turns"])))
    return items


def test_planted_benchmark_items_are_found(realdata):
    rng = random.Random(7)
    items = eval_items(realdata)
    gsm = [i for i in items if i[0] == "gsm8k"]
    # Index the eval sets except GSM8K's train split, then a held-out slice of GSM8K as the eval.
    evals = [i for i in items if i[0] != "gsm8k"] + [(f"gsm8k:{k}", t) for k, (_, t) in enumerate(gsm[:1000])]
    d = Decontaminate()
    d.load_items(evals)
    web = [json.loads(line)["text"] for line in gzip.open(realdata / CC, "rt")]
    web = [t for t in web if len(t) > 500]
    planted, labels = [], []
    for label, text in rng.sample(evals, 300):
        how = rng.choice(["verbatim", "case_ws", "embedded"])
        if how == "verbatim":
            doc = text
        elif how == "case_ws":
            doc = " \n ".join(text.upper().split())
        else:
            host = rng.choice(web)
            cut = rng.randrange(len(host))
            doc = host[:cut] + "\n" + text + "\n" + host[cut:]
        planted.append(doc)
        labels.append(label)
    reasons = d.decide(pa.table({"text": planted})).reasons
    found = sum(1 for r, lab in zip(reasons, labels, strict=True) if r == f"contaminated:{lab}")
    recall = found / len(planted)
    print(f"planted benchmark recall {recall:.3f}")
    assert recall >= 0.95


def test_negative_control_gsm8k_train_vs_humaneval(realdata):
    items = eval_items(realdata)
    d = Decontaminate()
    d.load_items([i for i in items if i[0].startswith("humaneval")])
    gsm = [t for label, t in items if label == "gsm8k"]
    reasons = d.decide(pa.table({"text": gsm})).reasons
    fp = sum(1 for r in reasons if r is not None) / len(gsm)
    print(f"GSM8K train vs HumanEval false positives {fp:.4f}")
    assert fp <= 0.01
