"""The default recipe on real known-good text of every kind: each kind meets its own rules.

Measured share kept once exact and near duplicates are removed; the bar is 95% for every set.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from mixline.curation.pipeline import curate
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.store import Store

DEDUP_STEPS = ("exact_dedup_v1", "minhash_dedup_v2")


def _oasst_rank0(realdata: Path, out: Path) -> Path:
    """First-ranked human replies to each prompt of the OASST trees, as OpenAI-style chats."""
    with out.open("w") as fh:
        for line in (realdata / "conversations/oasst_en_100_message.jsonl").open():
            tree = json.loads(line)
            for r in tree.get("replies") or []:
                if r.get("rank") == 0 and not r.get("synthetic") and not r.get("deleted"):
                    fh.write(json.dumps({"messages": [{"role": "user", "content": tree["text"]},
                                                      {"role": "assistant", "content": r["text"]}]}) + "\n")
    return out


def _humaneval(realdata: Path, out: Path) -> Path:
    with out.open("w") as fh:
        for line in gzip.open(realdata / "benchmarks/HumanEval.jsonl.gz", "rt"):
            r = json.loads(line)
            fh.write(json.dumps({"text": r["prompt"] + r["canonical_solution"]}) + "\n")
    return out


@pytest.mark.realdata
@pytest.mark.slow
def test_default_recipe_keeps_known_good_text_of_every_kind(realdata: Path, tmp_path: Path) -> None:
    sets = [
        ("medquad", realdata / "domain_medical/medquad_qa.jsonl.gz",
         IngestOptions(kind="domain", source="medquad", domain="medical", text_fields=("answer",))),
        ("legalbench", realdata / "domain_legal/legalbench_train_permissive.jsonl",
         IngestOptions(kind="domain", source="legalbench", domain="legal")),
        ("gsm8k", realdata / "benchmarks/gsm8k_train.jsonl",
         IngestOptions(kind="domain", source="gsm8k", domain="math", text_fields=("question", "answer"))),
        ("humaneval", _humaneval(realdata, tmp_path / "humaneval.jsonl"),
         IngestOptions(kind="domain", source="humaneval", domain="code")),
        ("oasst_rank0", _oasst_rank0(realdata, tmp_path / "oasst.jsonl"),
         IngestOptions(kind="conversation", source="oasst_rank0")),
    ]
    with Store(tmp_path / "s.duckdb") as st:
        for _, path, opts in sets:
            ingest(st, [path], opts)
        run = curate(st).run_id
        rows = st.rows(f"""
            WITH d AS (SELECT s.source, d.sample_id, d.verdict, d.step, split_part(d.reason, ':', 1) AS reason
                       FROM decisions d JOIN samples s USING (sample_id) WHERE d.run_id = ?),
                 per AS (SELECT source, sample_id, bool_or(verdict = 'dropped') AS dropped,
                                bool_or(verdict = 'dropped' AND step IN {DEDUP_STEPS}) AS dup,
                                any_value(reason) FILTER (WHERE verdict = 'dropped') AS reason
                         FROM d GROUP BY 1, 2)
            SELECT source, count(*) AS docs, count(*) FILTER (WHERE dup) AS duplicates,
                   count(*) FILTER (WHERE NOT dropped) AS kept,
                   list(reason) FILTER (WHERE dropped AND NOT dup) AS reasons
            FROM per GROUP BY 1 ORDER BY 1""", [run])
    print("\nsource        docs  dups  kept share  top drop reasons")
    shares = {}
    for r in rows:
        base = r["docs"] - r["duplicates"]
        shares[r["source"]] = r["kept"] / base
        counts: dict[str, int] = {}
        for reason in r["reasons"] or []:
            counts[reason] = counts.get(reason, 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3])
        print(f"{r['source']:<12} {r['docs']:>5} {r['duplicates']:>5} {shares[r['source']]:>10.3f}  {top}")
    assert set(shares) == {name for name, _, _ in sets}
    for name, share in shares.items():
        assert share >= 0.95, f"{name}: default recipe keeps only {share:.1%} of known-good text"
