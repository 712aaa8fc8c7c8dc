"""The default recipe's speed on 10,000 mixed real docs: the per-kind profiles against the
web-only default they replaced (Gopher rules on every kind), in one run, three ways:

- "before": mixline as it was (commit BASELINE, checked out as a git worktree under
  benchmarks/_work and run in a subprocess), its own ingest and default recipe;
- "before's recipe, today's code": the old default recipe run by today's steps;
- "now": today's default recipe (profiles per kind).

Docs (about 10,000 read, fewer once ingest drops identical records): every Common Crawl
page of the Dolma files (717), 4,000 MedQuAD answers (medical), 500 LegalBench rows
(legal), 1,500 GSM8K question + solution (math), 2,300 hh-rlhf dialogues (conversation)
and 1,000 pythia outputs to Open-Assistant prompts (synthetic). Each recipe runs on its own copy of one ingested
store, best of BENCH_RUNS runs; the table gives seconds, docs/s, and the share kept per kind.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, RUNS, machine, realdata, table, worktree  # noqa: E402

BASELINE = "8805ea9"  # the last commit before the per-kind profiles

def baseline_recipe() -> str:
    """The default recipe at BASELINE (web rules on every kind), read from git, not copied here."""
    import ast

    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE}:curation/recipe.py"], capture_output=True,
                            text=True, check=True).stdout
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DEFAULT_RECIPE" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise SystemExit(f"no DEFAULT_RECIPE in curation/recipe.py at {BASELINE}")


WEB = ("web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "web/dolma_cc_en_head-0091.jsonl.gz",
       "web/dolma_cc_en_head-0174.jsonl.gz")


def _head(path: Path, n: int) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def _synthetic(data: Path, n: int) -> list[dict]:
    out: list[dict] = []
    for f in sorted((data / "synthetic").glob("oasst_sampling_*.json")):
        doc = json.loads(f.read_text())
        for item in doc["prompts"]:
            for result in item["results"]:
                for text in result["outputs"]:
                    if len(out) < n:
                        out.append({"text": text, "model": doc["model_name"]})
    return out


def input_files(data: Path, work: Path) -> list[tuple[Path, dict]]:
    """The mixed input as JSONL files, each with its ingest options."""

    def write(name: str, rows: list[dict]) -> Path:
        p = work / f"{name}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return p

    return [
        (write("web", [r for f in WEB for r in _head(data / f, 5000)]),
         {"kind": "web", "source": "common-crawl"}),
        (write("medquad", [{"text": r["answer"]} for r in _head(data / "domain_medical/medquad_qa.jsonl.gz", 4000)]),
         {"kind": "domain", "source": "medquad", "domain": "medical"}),
        (write("legal", _head(data / "domain_legal/legalbench_train_permissive.jsonl", 500)),
         {"kind": "domain", "source": "legalbench", "domain": "legal"}),
        (write("gsm8k", [{"text": r["question"] + "\n" + r["answer"]} for r in _head(data / "benchmarks/gsm8k_train.jsonl", 1500)]),
         {"kind": "domain", "source": "gsm8k", "domain": "math"}),
        (write("hh", [{"text": r["chosen"]} for r in _head(data / "conversations/hh-rlhf_harmless-base_test.jsonl.gz", 2300)]),
         {"kind": "conversation", "source": "hh-rlhf"}),
        (write("synthetic", _synthetic(data, 1000)), {"kind": "synthetic", "source": "oasst-pythia"}),
    ]


def build_store(path: Path, files: list[tuple[Path, dict]]) -> int:
    from mixline.pipelines.ingest import IngestOptions, ingest
    from mixline.store import Store

    with Store(path) as st:
        for p, opts in files:
            ingest(st, [p], IngestOptions(**opts))
        return int(st.scalar("SELECT count(*) FROM samples"))


# Run inside the baseline's worktree: its own ingest, then its default recipe, timed.
_BASELINE_CODE = """
import json, sys, time
from pathlib import Path
from store.store import Store
from pipelines.ingest import IngestOptions, ingest
from curation.pipeline import curate
files, db = json.loads(sys.argv[1]), sys.argv[2]
with Store(db) as st:
    for p, opts in files:
        ingest(st, [Path(p)], IngestOptions(**opts))
    docs = st.execute("SELECT count(*) FROM samples").fetchone()[0]
    t0 = time.perf_counter()
    curate(st)
    print(json.dumps({"docs": docs, "seconds": time.perf_counter() - t0}))
"""


def baseline(files: list[tuple[Path, dict]], work: Path) -> dict | None:
    """Seconds for the baseline commit's default recipe, best of RUNS; None where git cannot check it out."""
    tree = worktree(BASELINE)
    if tree is None:
        return None
    best = None
    for i in range(RUNS):
        db = work / f"baseline{i}.duckdb"
        out = subprocess.run([sys.executable, "-c", _BASELINE_CODE, json.dumps([[str(p), o] for p, o in files]), str(db)],
                             cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        db.unlink()
        best = res if best is None or res["seconds"] < best["seconds"] else best
    return best


def run_recipe(store_copy: Path, recipe_text: str | None) -> tuple[float, dict[str, float]]:
    import tomllib

    from mixline.curation.pipeline import curate
    from mixline.curation.recipe import Recipe
    from mixline.store import Store

    recipe = Recipe.parse(tomllib.loads(recipe_text), "bench") if recipe_text else Recipe.default()
    with Store(store_copy) as st:
        t0 = time.perf_counter()
        res = curate(st, recipe)
        secs = time.perf_counter() - t0
        kept = {r["kind"]: r["share"] for r in st.rows("""
            SELECT s.kind, round(1 - count(DISTINCT d.sample_id) FILTER (WHERE d.verdict = 'dropped') / count(DISTINCT s.sample_id), 3) AS share
            FROM samples s LEFT JOIN decisions d ON d.sample_id = s.sample_id AND d.run_id = ?
            WHERE s.synth_depth = 0 OR s.kind = 'synthetic'
            GROUP BY 1 ORDER BY 1""", [res.run_id])}
    return secs, kept


def main() -> None:
    data = realdata()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = work / "base.duckdb"
        files = input_files(data, work)
        docs = build_store(base, files)
        rows = []
        old = baseline(files, work)
        if old:
            rows.append({"recipe": f"before: web rules on every kind, mixline at {BASELINE}", "docs": old["docs"],
                         "seconds": round(old["seconds"], 2), "docs/s": round(old["docs"] / old["seconds"])})
        for name, text in (("before's recipe, today's code", baseline_recipe()), ("now: profiles per kind", None)):
            best = None
            for i in range(RUNS):
                copy = work / f"run{i}.duckdb"
                shutil.copy(base, copy)
                secs, kept = run_recipe(copy, text)
                copy.unlink()
                best = (secs, kept) if best is None or secs < best[0] else best
            assert best is not None
            rows.append({"recipe": name, "docs": docs, "seconds": round(best[0], 2), "docs/s": round(docs / best[0]),
                         **{f"kept {k}": v for k, v in best[1].items()}})
    print(f"machine: {machine()}\n")
    print(table(rows))
    now = rows[-1]
    for r in rows[:-1]:
        print(f"\nnow / {r['recipe']}: {now['seconds'] / r['seconds']:.2f}x the time, "
              f"{now['docs/s'] / r['docs/s']:.2f}x the docs/s")


if __name__ == "__main__":
    main()
