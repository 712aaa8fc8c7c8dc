"""`make demo`: the end-to-end story on real text, into a fresh store.

Real text that any fresh machine gets through pip: Python's own documentation
(`pydoc_data`, domain kind) and the chatterbot corpus (conversation kind). When the real
data folder ($MIXLINE_REALDATA, default ../shared/data) is present, Common Crawl web
text, Open-Assistant trees and MedQuAD join them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from pipelines.cli import cli


def realdata_dir() -> Path | None:
    p = Path(os.environ.get("MIXLINE_REALDATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    return p if p.is_dir() else None


def pydoc_topics_jsonl(out: Path) -> Path:
    """Python's bundled help topics, one JSONL record per topic."""
    from pydoc_data.topics import topics

    path = out / "pydoc_topics.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for name in sorted(topics):
            fh.write(json.dumps({"id": name, "text": topics[name]}) + "\n")
    return path


def chatterbot_dir() -> Path:
    import chatterbot_corpus

    return Path(chatterbot_corpus.__file__).parent / "data" / "english"


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def mixline(store: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--store", str(store), *args], catch_exceptions=False)
    if result.exit_code != 0:
        sys.stderr.write(result.output)
        raise SystemExit(f"mixline {' '.join(args)} failed with exit code {result.exit_code}")
    return result.output


def main() -> None:
    started = time.time()
    out = Path(os.environ.get("MIXLINE_DEMO_DIR", "demo-out"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    store = out / "mixline.duckdb"
    inputs: list[tuple[str, list[str]]] = [
        ("Python documentation (pydoc_data)", [str(pydoc_topics_jsonl(out)), "--kind", "domain", "--source", "python-docs", "--domain", "code", "--license", "PSF-2.0"]),
        ("chatterbot corpus (pip)", [str(chatterbot_dir()), "--kind", "conversation", "--source", "chatterbot", "--license", "BSD-3-Clause"]),
    ]
    real = realdata_dir()
    if real is not None:
        inputs += [
            ("Common Crawl sample", [str(real / "web" / "dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"), "--kind", "web", "--source", "common-crawl", "--license", "ODC-By"]),
            ("WARC pages", [str(real / "web" / "dolma_sample-0000.warc.gz"), str(real / "web" / "dolma_sample-0001.warc.gz"), "--kind", "web", "--source", "warc-sample"]),
            ("Open-Assistant trees", [str(real / "conversations" / "oasst_en_100_message.jsonl"), "--kind", "conversation", "--source", "oasst", "--license", "Apache-2.0"]),
            ("MedQuAD", [str(real / "domain_medical" / "medquad_qa.jsonl.gz"), "--kind", "domain", "--source", "medquad", "--domain", "medical", "--license", "CC-BY-4.0", "--text-field", "question", "--text-field", "answer", "--id-field", "qid"]),
        ]
    else:
        print("(real data folder not found; set MIXLINE_REALDATA to add web, OASST and MedQuAD)")
    for title, args in inputs:
        step(f"ingest {title}")
        print(mixline(store, "ingest", *args, "--quiet").strip())
    step("ingest again: nothing is added twice")
    print(mixline(store, "ingest", *inputs[0][1], "--quiet").strip())
    step("stats")
    print(mixline(store, "stats").rstrip())
    step("trace one conversation sample")
    sid = json.loads(mixline(store, "sql", "SELECT sample_id FROM samples WHERE kind = 'conversation' ORDER BY sample_id LIMIT 1", "--json"))[0]["sample_id"]
    print(mixline(store, "trace", sid).rstrip())
    step("quarantine")
    print(mixline(store, "quarantine", "--limit", "5").rstrip())
    print(f"\nstore: {store}  ({time.time() - started:.1f} s). Try: .venv/bin/mixline --store {store} stats")


if __name__ == "__main__":
    main()
