"""A fixed mixed corpus from the real data, and digests of what the default recipe decides on it.

The digests in `tests/fixtures/default_recipe_digests.json` were written by the commit named
there. A speed change must leave every one of them equal (tests/test_same_decisions.py). A
deliberate change of decisions bumps the step's version and rewrites the file:

    .venv/bin/python tests/decisions_corpus.py --write
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIGESTS = ROOT / "tests" / "fixtures" / "default_recipe_digests.json"
LANGS = ("de", "fr", "es", "ru", "zh", "ja", "ar", "hi", "th", "ko", "el", "tr", "vi", "pl", "sw")


def _head(path: Path, n: int) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def files(data: Path, work: Path) -> list[tuple[Path, dict[str, Any]]]:
    """JSONL files of every kind (about 3,000 docs), each with its ingest options."""
    from mixline.curation.lang.derive import documents, read_sentences, split

    def write(name: str, rows: list[dict[str, Any]]) -> Path:
        p = work / f"{name}.jsonl"
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return p

    by = read_sentences(data / "multilingual/leipzig_web_sentences_75.jsonl.gz")
    pii = json.loads((data / "pii/presidio_generated_small.json").read_text())
    synth = json.loads((data / "synthetic/oasst_sampling_pythia-1b-deduped-sft.json").read_text())
    outputs = [t for item in synth["prompts"] for r in item["results"] for t in r["outputs"]][:200]
    web = _head(data / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", 800)
    return [
        (write("web", [{"text": r["text"]} for r in web]), {"kind": "web", "source": "common-crawl"}),
        (write("leipzig", [{"text": d} for lang in LANGS for d in list(documents(split(by[lang], "eval"), seed=7))[:12]]),
         {"kind": "web", "source": "leipzig"}),
        (write("pii", [{"text": r["full_text"]} for r in pii]), {"kind": "web", "source": "presidio"}),
        (write("medquad", [{"text": r["answer"]} for r in _head(data / "domain_medical/medquad_qa.jsonl.gz", 600)]),
         {"kind": "domain", "source": "medquad", "domain": "medical"}),
        (write("legal", _head(data / "domain_legal/legalbench_train_permissive.jsonl", 200)),
         {"kind": "domain", "source": "legalbench", "domain": "legal"}),
        (write("gsm8k", [{"text": r["question"] + "\n" + r["answer"]} for r in _head(data / "benchmarks/gsm8k_train.jsonl", 200)]),
         {"kind": "domain", "source": "gsm8k", "domain": "math"}),
        (write("hh", [{"text": r["chosen"]} for r in _head(data / "conversations/hh-rlhf_harmless-base_test.jsonl.gz", 500)]),
         {"kind": "conversation", "source": "hh-rlhf"}),
        (write("synthetic", [{"text": t, "model": synth["model_name"]} for t in outputs]),
         {"kind": "synthetic", "source": "oasst-pythia"}),
    ]


def digests(store: Any, run_id: str) -> dict[str, Any]:
    """Per step, a digest of every decision (sample content hash, verdict, reason, score to 4
    places); one of the languages found; one of the scrubbed texts (parent and child hashes)."""
    out: dict[str, Any] = {}
    # A sample is named by its text, with the store's salted pseudonym suffixes (<EMAIL_3f2a>) cut,
    # so scrubbed children of two stores compare equal.
    key = "md5(regexp_replace(coalesce(s.text, '') || coalesce(s.messages::VARCHAR, ''), '<([A-Z_]+)_[0-9a-f]+>', '<\\1>', 'g'))"
    rows = store.execute(f"""SELECT d.step, {key}, d.verdict, coalesce(d.reason, ''),
                                   coalesce(round(d.score, 4)::VARCHAR, '')
                            FROM decisions d JOIN samples s USING (sample_id) WHERE d.run_id = ? ORDER BY ALL""",
                         [run_id]).fetchall()
    steps: dict[str, Any] = {}
    for step, *rest in rows:
        steps.setdefault(step, hashlib.sha256())
        steps[step].update("\x1f".join(map(str, rest)).encode() + b"\n")
    out["decisions"] = {k: v.hexdigest() for k, v in sorted(steps.items())}
    out["counts"] = {k: n for k, n in store.execute(
        "SELECT step, count(*) FROM decisions WHERE run_id = ? GROUP BY 1 ORDER BY 1", [run_id]).fetchall()}

    def digest(sql: str) -> str:
        h = hashlib.sha256()
        for row in store.execute(sql).fetchall():
            h.update("\x1f".join("" if x is None else str(x) for x in row).encode() + b"\n")
        return h.hexdigest()

    out["languages"] = digest(f"""SELECT {key}, s.lang, s.script, s.lang_score, s.lang_mix::VARCHAR FROM samples s
                                  WHERE s.synth_depth = 0 ORDER BY ALL""")
    out["scrubbed"] = digest(f"""SELECT p.content_hash, {key} FROM edges e JOIN samples p ON p.sample_id = e.parent_id
                                 JOIN samples s ON s.sample_id = e.child_id WHERE e.relation = 'scrubbed_from' ORDER BY ALL""")
    out["clusters"] = digest(f"""SELECT c.method, {key}, c.kept, dense_rank() OVER (PARTITION BY c.method ORDER BY c.cluster_id)
                                FROM clusters c JOIN samples s USING (sample_id) ORDER BY ALL""")
    return out


def compute(data: Path, work: Path) -> dict[str, Any]:
    from mixline.curation.pipeline import curate
    from mixline.pipelines.ingest import IngestOptions, ingest
    from mixline.store.store import Store

    with Store(work / "golden.duckdb") as st:
        for p, opts in files(data, work):
            ingest(st, [p], IngestOptions(**opts))
        res = curate(st)
        return digests(st, res.run_id)


def main() -> None:
    import os
    import tempfile

    if "--write" not in sys.argv:
        raise SystemExit(__doc__)
    data = Path(os.environ.get("MIXLINE_REALDATA", ROOT.parent / "shared" / "data"))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        got = compute(data, Path(tmp))
    DIGESTS.write_text(json.dumps({"written_by": commit, **got}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS} ({len(got['decisions'])} steps) from {commit}")


if __name__ == "__main__":
    main()
