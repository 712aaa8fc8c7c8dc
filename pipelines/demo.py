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
from mixline.pipelines.cli import cli


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
            ("GSM8K (eval, for decontamination)", [str(real / "benchmarks" / "gsm8k_train.jsonl"), "--kind", "eval", "--source", "gsm8k", "--text-field", "question"]),
            ("HumanEval (eval)", [str(real / "benchmarks" / "HumanEval.jsonl.gz"), "--kind", "eval", "--source", "humaneval", "--text-field", "prompt", "--id-field", "task_id"]),
        ]
    else:
        print("(real data folder not found; set MIXLINE_REALDATA to add web, OASST and MedQuAD)")
    for title, args in inputs:
        step(f"ingest {title}")
        print(mixline(store, "ingest", *args, "--quiet").strip())
    step("ingest again: nothing is added twice")
    print(mixline(store, "ingest", *inputs[0][1], "--quiet").strip())
    step("curate with the default recipe (filters, decontamination, PII scrubbing, exact and near dedup)")
    print(mixline(store, "curate", "--quiet").rstrip())
    step("stats")
    print(mixline(store, "stats").rstrip())
    step("build a training mix")
    recipe = out / "mix.toml"
    recipe.write_text(MIX_RECIPE if real is not None else MIX_RECIPE_PIP)
    built = json.loads(mixline(store, "mix", "build", str(recipe), "--json"))
    print(mixline(store, "mix", "show", built["mix_id"]).rstrip())
    step("export it with a manifest and dataset card, then verify every hash")
    os.environ.setdefault("MIXLINE_EXPORT_ROOT", str(out.resolve()))
    print(mixline(store, "mix", "export", built["mix_id"], "--out", str(out / "export")).strip())
    print(mixline(store, "mix", "verify", str(out / "export")).strip())
    step("trace a scrubbed sample back to its raw parent (whose text stays in the store)")
    scrubbed = json.loads(mixline(store, "sql", """SELECT e.child_id FROM edges e LEFT JOIN mix_members m ON m.sample_id = e.child_id
        WHERE e.relation = 'scrubbed_from' ORDER BY m.mix_id IS NULL, e.child_id LIMIT 1""", "--json"))
    if scrubbed:
        print(mixline(store, "trace", scrubbed[0]["child_id"]).rstrip())
        step("impact of the raw sample: what a deletion request must cover")
        raw = json.loads(mixline(store, "sql", f"SELECT parent_id FROM edges WHERE child_id = '{scrubbed[0]['child_id']}'", "--json"))[0]["parent_id"]
        print(mixline(store, "impact", raw).rstrip())
    step("why was a sample dropped?")
    dropped = json.loads(mixline(store, "sql", "SELECT sample_id FROM decisions WHERE verdict = 'dropped' ORDER BY sample_id LIMIT 1", "--json"))
    if dropped:
        print(mixline(store, "why", dropped[0]["sample_id"]).rstrip())
    step("quarantine")
    print(mixline(store, "quarantine", "--limit", "5").rstrip())
    prose = prose_jsonl(out, real)
    if prose is not None:
        step("synthetic-data loop: a tiny GPT-2 trained here, 3 generations under replace and accumulate")
        print(mixline(store, "ingest", str(prose), "--kind", "domain", "--source", "prose", "--domain", "prose", "--quiet").strip())
        loop_cfg = out / "loop.toml"
        loop_cfg.write_text(LOOP_CONFIG)
        print(mixline(store, "loop", str(loop_cfg), "--workdir", str(out / "models")).rstrip())
        step("drift report")
        print(mixline(store, "drift", "report").rstrip())
        member = json.loads(mixline(store, "sql", "SELECT m.sample_id FROM mix_members m JOIN mixes x USING (mix_id) WHERE x.name = 'collapse-real' AND m.split = 'train' ORDER BY m.sample_id LIMIT 1", "--json"))
        if member:
            step("impact of one real training sample: the models it reached, and what they wrote")
            print(mixline(store, "impact", member[0]["sample_id"]).rstrip().splitlines()[0])
    print(f"\nstore: {store}  export: {out / 'export'}  ({time.time() - started:.0f} s)")
    print(f"Try: .venv/bin/mixline --store {store} stats   |   .venv/bin/mixline --store {store} sql \"SELECT * FROM runs\"")
    print(f"Dashboard: .venv/bin/mixline --store {store} dashboard   (then open http://127.0.0.1:8765/)")


LOOP_CONFIG = """name = "collapse"
real_where = "source = 'prose'"
generations = 3
strategies = ["replace", "accumulate"]
samples_per_generation = 150
train_steps = 120
temperature = 1.0
max_new_tokens = 64
eval_docs = 60
"""


def prose_jsonl(out: Path, real: Path | None) -> Path | None:
    """Paragraphs of real prose for the loop: Tiny Shakespeare if present, else Python's docs."""
    if real is not None and (real / "prose" / "tinyshakespeare.txt").exists():
        text = (real / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")
        paras = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200][:1500]
    else:
        from pydoc_data.topics import topics

        paras = [p.strip() for t in topics.values() for p in t.split("\n\n") if len(p.strip()) > 200]
    if len(paras) < 100:
        return None
    path = out / "prose.jsonl"
    path.write_text("\n".join(json.dumps({"text": p}) for p in paras) + "\n", encoding="utf-8")
    return path


MIX_RECIPE_PIP = """name = "demo"
seed = 0
[[groups]]
name = "docs"
where = "domain = 'code'"
[[groups]]
name = "chat"
where = "kind = 'conversation'"
"""

MIX_RECIPE = """name = "demo"
seed = 0
total_tokens = 300000
max_synthetic_share = 0.2
[[groups]]
name = "web"
where = "kind = 'web'"
weight = 0.3
max_repeats = 2
[[groups]]
name = "chat"
where = "kind = 'conversation'"
weight = 0.2
[[groups]]
name = "medical"
where = "domain = 'medical'"
weight = 0.5
[holdout]
fraction = 0.02
"""


if __name__ == "__main__":
    main()
