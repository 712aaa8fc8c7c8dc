"""Scale-out: the in-process executor vs Ray Data, and a single DuckDB file vs DuckLake.

    python benchmarks/bench_scale.py executors 100000 1000000   # curate and ingest, local vs Ray
    python benchmarks/bench_scale.py lake 10                     # DuckLake vs file: ingest, trace p50 at 10M
    python benchmarks/bench_scale.py nightly 500                 # a lake after 500 small runs, and optimize
    python benchmarks/bench_scale.py driver 250000 1000000 4000000  # the Ray driver's peak memory
    python benchmarks/bench_scale.py register 1000000            # shards copied (file) or added in place (lake)
    python benchmarks/bench_scale.py bigfile 1000000             # one large JSONL file: in-process vs Ray spans

Executors: documents are assembled from real sentences (Common Crawl, MedQuAD answers, OASST,
State of the Union), 1% exact copies and 1% near copies; each is ingested and curated with the
default recipe, in-process and on a local Ray instance with the machine's CPUs. Ray's fixed
overhead per pass is measured on a 1-document run.

Lake: the bench_lineage graph (10M samples, 20M edges) is built in a single file and in a
DuckLake store on a SQLite catalog (and on PostgreSQL when MIXLINE_TEST_PG names a server);
ingest throughput is measured on the same JSONL files into a fresh store of each kind.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, realdata, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "mixline.pipelines.cli"]
OUT = WORK / "scale"


def sentences() -> list[str]:
    data = realdata()
    pool: list[str] = []
    split = re.compile(r"(?<=[.!?])\s+")

    def add(text: str) -> None:
        pool.extend(s.strip() for s in split.split(text) if 40 <= len(s.strip()) <= 400)

    for f in sorted((data / "web").glob("dolma_*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            for line in fh:
                add(json.loads(line).get("text", ""))
    with gzip.open(data / "domain_medical" / "medquad_qa.jsonl.gz", "rt") as fh:
        for line in fh:
            add(json.loads(line).get("answer", ""))
    with open(data / "conversations" / "oasst_en_100_message.jsonl") as fh:
        for line in fh:
            add(json.loads(line).get("text", ""))
    return sorted(set(pool))


def write_docs(n: int, folder: Path, files: int = 8, sentences_per_doc: tuple[int, int] = (6, 14)) -> list[Path]:
    """n documents of 6-14 real sentences (or `sentences_per_doc`), 1% exact copies and 1% near
    copies, in `files` JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"docs-{i}.jsonl" for i in range(files)]
    if all(p.exists() for p in paths):
        return paths
    pool = sentences()
    rng = random.Random(n)
    handles = [p.open("w") for p in paths]
    recent: list[list[str]] = []
    for i in range(n):
        r = rng.random()
        if recent and r < 0.01:
            sents = list(rng.choice(recent))
        elif recent and r < 0.02:
            sents = list(rng.choice(recent))
            sents[rng.randrange(len(sents))] = rng.choice(pool)
        else:
            sents = [rng.choice(pool) for _ in range(rng.randint(*sentences_per_doc))]
            if len(recent) < 5000:
                recent.append(sents)
            else:
                recent[rng.randrange(5000)] = sents
        handles[i % files].write(json.dumps({"text": " ".join(sents)}) + "\n")
    for h in handles:
        h.close()
    return paths


def remove_store(pattern: str) -> None:
    """Delete a benchmark store and everything beside it (snapshot, lineage index, spools)."""
    for p in OUT.glob(pattern):
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, *args, "--json", "-q"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mixline {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def executors(sizes: list[int]) -> None:
    cpus = os.cpu_count() or 1
    ray = ["--executor", "ray", "--num-cpus", str(cpus)]
    rows, notes = [], []
    # Ray's fixed cost: a one-document run (start Ray, run every pass, stop it).
    tiny = OUT / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    tiny.mkdir(parents=True)
    (tiny / "one.jsonl").write_text(json.dumps({"text": "A single short document about the river town market."}) + "\n")
    fixed = {}
    for name, extra in (("local", []), ("ray", ray)):
        store = str(tiny / f"{name}.duckdb")
        t_ing, _ = run_cli("--store", store, "ingest", str(tiny / "one.jsonl"), "--kind", "web", *extra)
        t_cur, _ = run_cli("--store", store, "curate", *extra)
        fixed[name] = (t_ing, t_cur)
    notes.append(f"fixed cost of a 1-document run (process start, models, and for Ray: start a local instance with "
                 f"{cpus} CPUs, one map pass, one pair-search pass per dedup step): ingest local {fixed['local'][0]:.1f} s, "
                 f"Ray {fixed['ray'][0]:.1f} s; curate local {fixed['local'][1]:.1f} s, Ray {fixed['ray'][1]:.1f} s")
    for n in sizes:
        docs = write_docs(n, OUT / f"docs-{n}")
        outcome = {}
        which = os.environ.get("BENCH_EXECUTORS", "local,ray").split(",")
        for name, extra in (("local", []), ("ray", ray)):
            if name not in which:
                continue
            store = OUT / f"{name}-{n}.duckdb"
            remove_store(f"{name}-{n}.duckdb*")
            t_ing, ing = run_cli("--store", str(store), "ingest", *map(str, docs), "--kind", "web", *extra)
            t_cur, cur = run_cli("--store", str(store), "curate", *extra)
            outcome[name] = (ing["ingested"], cur["kept"], cur["dropped"])
            if name == "ray":
                _, runs = run_cli("--store", str(store), "runs", "--limit", "1")
                ex = runs[0]["stats"]["executor"]
                notes.append(f"{n:,} docs on Ray, where the curate's time went: inputs {ex['inputs_s']:.1f} s, map "
                             f"{ex['map_s']:.1f} s ({ex['partitions']} partitions), reduce in tasks (pairs, "
                             f"components, keep choice; {ex['buckets']} buckets) {ex['reduce_s']:.1f} s, "
                             f"register {ex['register_s']:.1f} s")
            rows.append({"docs": f"{n:,}", "executor": name, "ingest s": t_ing, "ingest docs/s": n / t_ing,
                         "curate s": t_cur, "curate docs/s": n / t_cur, "kept": cur["kept"], "dropped": cur["dropped"]})
        same = outcome.get("local") == outcome.get("ray")
        notes.append(f"{n:,} docs: local and Ray agree on ingested/kept/dropped counts: {same} {outcome}")
    print(f"## Scale-out: local vs Ray (`benchmarks/bench_scale.py executors`, {machine()}; {time.strftime('%Y-%m-%d')})\n")
    print(table(rows))
    print()
    for note in notes:
        print(f"- {note}")
    for n in sizes:
        loc = next((r for r in rows if r["docs"] == f"{n:,}" and r["executor"] == "local"), None)
        ray_ = next((r for r in rows if r["docs"] == f"{n:,}" and r["executor"] == "ray"), None)
        if loc is None or ray_ is None:
            continue
        print(f"- {n:,} docs: Ray/local curate time ratio {ray_['curate s'] / loc['curate s']:.2f}, "
              f"ingest {ray_['ingest s'] / loc['ingest s']:.2f}")


def trace_times(st: Any, sample_ids: list[str]) -> list[float]:
    """Seconds per `trace` of each sample, after one warm-up trace."""
    from mixline.store.lineage import trace

    trace(st, sample_ids[0])
    times = []
    for sid in sample_ids:
        t0 = time.perf_counter()
        trace(st, sid)
        times.append(time.perf_counter() - t0)
    return times


def lake(scale: float) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    argv, sys.argv = sys.argv, sys.argv[:1]  # bench_lineage reads its scale from argv at import
    try:
        import bench_lineage as bl
    finally:
        sys.argv = argv

    from mixline.store import Store
    from mixline.store.lineage import optimize

    bl.HUMAN, bl.CURATED, bl.GEN = int(3_500_000 * scale / 10), int(2_000_000 * scale / 10), int(1_500_000 * scale / 10)
    folder = OUT / f"lake-{scale}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    targets = {"file": str(folder / "one.duckdb"), "ducklake sqlite": "sqlite:///" + str(folder / "cat.sqlite")}
    pg = os.environ.get("MIXLINE_TEST_PG")
    if pg:
        sys.path.insert(0, str(ROOT / "tests"))
        import pgcluster

        targets["ducklake postgres"] = pgcluster.create_db(pg.rstrip("/"), f"bench_{int(time.time())}")
    rows = []
    docs = write_docs(200_000, OUT / "docs-200000")
    for name, url in targets.items():
        if name != "file":
            extra = [] if "sqlite" in name else ["--data-path", str(folder / "pg-data")]
            run_cli("init", "--catalog", url, *extra)
        ing_store = url if name == "file" else url
        if name == "file":
            ing_store = str(folder / "ingest.duckdb")
        elif "sqlite" in name:
            ing_store = "sqlite:///" + str(folder / "ingest-cat.sqlite")
            run_cli("init", "--catalog", ing_store)
        t_ing, ing = run_cli("--store", ing_store, "ingest", *map(str, docs), "--kind", "web")
        t0 = time.perf_counter()
        with Store(url) as st:
            n, e = bl.build(st)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        with Store(url) as st:
            optimize(st)
        t_opt = time.perf_counter() - t0
        with Store(url, read_only=True) as st:
            gen3 = [r[0] for r in st.execute("SELECT sample_id FROM samples WHERE source = 'gen3' ORDER BY sample_id "
                                             "LIMIT 100").fetchall()]
            times = trace_times(st, gen3)
        rows.append({"store": name, "ingest docs/s (200k docs)": 200_000 / t_ing, "build 10M graph s": t_build,
                     "optimize s": t_opt, "trace p50 ms": statistics.median(times) * 1000,
                     "trace p95 ms": sorted(times)[int(0.95 * len(times))] * 1000, "samples": n, "edges": e})
    print(f"## Scale-out: single file vs DuckLake (`benchmarks/bench_scale.py lake {scale}`, {machine()}; "
          f"{time.strftime('%Y-%m-%d')})\n")
    print(table(rows))


def nightly(runs: int) -> None:
    """Many small runs on a lake, as months of nightly jobs leave it: each commits a few small
    Parquet files. What that costs readers, and what `optimize` (merge) and
    `optimize --expire-days 0` give back."""
    from mixline.store import Store
    from mixline.store.lineage import optimize

    from mixline import api

    folder = OUT / f"nightly-{runs}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = "sqlite:///" + str(folder / "cat.sqlite")
    run_cli("init", "--catalog", url)
    docs = write_docs(20_000, OUT / "docs-20000", files=1)
    small = folder / "small.jsonl"
    with Store(url) as st:
        api.ingest(st, docs, kind="web")
        api.curate(st)
        sample_ids = [r[0] for r in st.execute("SELECT sample_id FROM samples ORDER BY sample_id LIMIT 30").fetchall()]

    def measure(label: str, seconds_per_run: float | None = None) -> dict[str, object]:
        with Store(url, read_only=True) as st:
            t0 = time.perf_counter()
            st.rows(f"SELECT * FROM {st.runs_sql()} ORDER BY started_at DESC LIMIT 20")
            t_runs = time.perf_counter() - t0
            times = trace_times(st, sample_ids)
            files = st.scalar("SELECT count(*) FROM ducklake_list_files('lake', 'runs')")
            snaps = st.scalar("SELECT count(*) FROM lake.snapshots()")
        on_disk = sum(1 for _ in (folder / "cat.sqlite.files").rglob("*.parquet"))
        return {"state": label, "runs listed ms": t_runs * 1000, "trace p50 ms": statistics.median(times) * 1000,
                "files in runs": files, "parquet files on disk": on_disk, "snapshots": snaps,
                "s per small run": "" if seconds_per_run is None else f"{seconds_per_run:.3f}"}

    rows = [measure("after ingest + curate")]
    pool = sentences()
    t0 = time.perf_counter()
    with Store(url) as st:
        for i in range(runs):
            picks = [pool[(i * 37 + j * 5 + k) % len(pool)] for j in range(5) for k in range(4)]
            small.write_text("".join(json.dumps({"text": f"Night {i} note {j}. " + " ".join(picks[j * 4:j * 4 + 4])}) + "\n"
                                     for j in range(5)))
            api.ingest(st, small, kind="web", source=f"night{i}")
    rows.append(measure(f"after {runs} small ingests", (time.perf_counter() - t0) / runs))
    with Store(url) as st:
        t0 = time.perf_counter()
        out = optimize(st)
        t_opt = time.perf_counter() - t0
    rows.append(measure(f"optimize ({t_opt:.1f} s, merged {out['files_merged']} files into {out['files_created']})"))
    with Store(url) as st:
        out = optimize(st, expire_days=0)
    rows.append(measure(f"optimize --expire-days 0 (expired {out['snapshots_expired']})"))
    os.environ["MIXLINE_LAKE_CLEANUP_GRACE_S"] = "0"  # as a pass an hour later sees it
    try:
        with Store(url) as st:
            out = optimize(st)
    finally:
        del os.environ["MIXLINE_LAKE_CLEANUP_GRACE_S"]
    rows.append(measure(f"optimize after the grace period (deleted {out['files_deleted']} files)"))
    print(f"## Scale-out: a lake after many small runs (`benchmarks/bench_scale.py nightly {runs}`, {machine()}; "
          f"{time.strftime('%Y-%m-%d')})\n")
    print("20,000 documents ingested and curated on a SQLite-catalog lake, then small ingests of 5 documents each. "
          "Files that a merge or an expiry replaced stay on disk for readers in flight until an optimize an hour "
          "or more later (the last row).\n")
    print(table(rows))


DRIVER = """
import json, resource, sys, time
from mixline import api
from mixline.curation.distributed import RayExecutor
from mixline.curation.recipe import Recipe
from mixline.store import Store
recipe = Recipe.parse({"batch_size": 5000, "steps": [{"type": "exact_dedup"}, {"type": "minhash_dedup"}]}, "dedup")
ex = RayExecutor(num_cpus=int(sys.argv[2]))
with Store(sys.argv[1]) as st:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = api.curate(st, recipe, executor=ex)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall": wall, "before_mb": before / 1024, "peak_mb": peak / 1024, "kept": res.kept,
                  "dropped": res.dropped, "stats": ex.stats}))
"""


def driver(sizes: list[int]) -> None:
    """The Ray driver's peak memory as the corpus grows, on documents of 2-5 real sentences
    (about 450 bytes): ingest (in-process), then a curate with
    the dedup steps on a local Ray instance; the driver's own peak RSS (RUSAGE_SELF, so not
    the Ray workers or raylet) is what must stay flat."""
    cpus = os.cpu_count() or 1
    rows, notes = [], []
    for n in sizes:
        docs = write_docs(n, OUT / f"short-{n}", sentences_per_doc=(2, 5))
        store = OUT / f"driver-{n}.duckdb"
        remove_store(f"driver-{n}.duckdb*")
        t_ing, _ = run_cli("--store", str(store), "ingest", *map(str, docs), "--kind", "web")
        proc = subprocess.run([sys.executable, "-c", DRIVER, str(store), str(cpus)], capture_output=True, text=True,
                              cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"curate of {n} docs failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        st = out["stats"]
        stages = {k.removeprefix("reduce_"): v for k, v in st.items() if k.startswith("reduce_") and isinstance(v, dict)}
        rows.append({"docs": f"{n:,}", "ingest s": t_ing, "curate s": out["wall"], "map s": st["map_s"],
                     "reduce s": st["reduce_s"], "register s": st["register_s"], "partitions": st["partitions"],
                     "driver RSS before MB": out["before_mb"], "driver peak RSS MB": out["peak_mb"],
                     "kept": out["kept"], "dropped": out["dropped"]})
        notes.append(f"{n:,} docs, per dedup step: " + "; ".join(
            f"{k}: {v['pairs']:,} pairs, {v['rounds']} component rounds, {v['dropped']:,} dropped, {v['seconds']:.1f} s"
            for k, v in stages.items()))
        remove_store(f"driver-{n}.duckdb*")
    print(f"## Ray driver memory (`benchmarks/bench_scale.py driver`, {machine()}, local Ray with {cpus} CPUs; "
          f"{time.strftime('%Y-%m-%d')})\n")
    print(table(rows))
    print()
    for note in notes:
        print(f"- {note}")
    by = {r["docs"]: r["driver peak RSS MB"] for r in rows}
    if "1,000,000" in by and "4,000,000" in by:
        print(f"- driver peak RSS from 1M to 4M docs: {by['4,000,000'] / by['1,000,000']:.2f}x (target at most 1.20x)")


def register(n: int) -> None:
    """Registration of a Ray curate's shards at n documents: copied into a single file, and
    registered in place (ducklake_add_data_files) on a SQLite-catalog lake."""
    cpus = os.cpu_count() or 1
    docs = write_docs(n, OUT / f"short-{n}", sentences_per_doc=(2, 5))
    folder = OUT / f"register-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = []
    for name, store in (("single file (copy)", str(folder / "one.duckdb")),
                        ("DuckLake, SQLite catalog (in place)", "sqlite:///" + str(folder / "cat.sqlite"))):
        if store.startswith("sqlite"):
            run_cli("init", "--catalog", store)
        t_ing, _ = run_cli("--store", store, "ingest", *map(str, docs), "--kind", "web")
        proc = subprocess.run([sys.executable, "-c", DRIVER, store, str(cpus)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"curate on {name} failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        st = out["stats"]
        rows.append({"store": name, "docs": f"{n:,}", "curate s": out["wall"], "register s": st["register_s"],
                     "shards registered in place": st.get("registered_in_place", 0), "partitions": st["partitions"],
                     "driver peak RSS MB": out["peak_mb"]})
    shutil.rmtree(folder, ignore_errors=True)
    print(f"## Registering a Ray run's shards (`benchmarks/bench_scale.py register {n}`, {machine()}; "
          f"{time.strftime('%Y-%m-%d')})\n")
    print(table(rows))


INGEST_DRIVER = """
import json, resource, sys, time
from mixline import api
from mixline.curation.distributed import RayExecutor
from mixline.store import Store
ex = RayExecutor(num_cpus=int(sys.argv[3])) if sys.argv[3] != "0" else None
with Store(sys.argv[1]) as st:
    t0 = time.perf_counter()
    res = api.ingest(st, [sys.argv[2]], kind="web", executor=ex)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = st.scalar("SELECT count(*) FROM samples")
print(json.dumps({"wall": wall, "peak_mb": peak / 1024, "ingested": res.ingested, "samples": n,
                  "stats": (ex.stats if ex is not None else {})}))
"""


def bigfile(n: int) -> None:
    """One large JSONL file of n short documents, ingested in-process and on a local Ray
    instance. Ray splits it into byte-range spans (MIXLINE_INGEST_SPAN_BYTES, 64 MB); with
    BENCH_BEFORE_PYTHON naming another checkout's interpreter, that checkout (one task per
    input file, rows read back by the driver) runs too. The driver's peak RSS is its own."""
    cpus = os.cpu_count() or 1
    path = write_docs(n, OUT / f"bigfile-{n}", files=1, sentences_per_doc=(2, 5))[0]
    size = path.stat().st_size
    runs = [("in-process", sys.executable, "0", {}),
            ("Ray, one task for the file", sys.executable, str(cpus), {"MIXLINE_INGEST_SPAN_BYTES": str(1 << 40)}),
            ("Ray, 64 MB spans", sys.executable, str(cpus), {})]
    before = os.environ.get("BENCH_BEFORE_PYTHON")
    if before:
        runs.insert(1, ("Ray, before (one task a file, driver reads rows back)", before, str(cpus), {}))
    rows, counts = [], set()
    for name, python, workers, env in runs:
        store = OUT / f"bigfile-{n}.duckdb"
        remove_store(f"bigfile-{n}.duckdb*")
        proc = subprocess.run([python, "-c", INGEST_DRIVER, str(store), str(path), workers], capture_output=True,
                              text=True, cwd=ROOT, env={**os.environ, **env})
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        counts.add((out["ingested"], out["samples"]))
        rows.append({"run": name, "docs": f"{n:,}", "file MB": size / 1e6, "wall s": out["wall"],
                     "MB/s": size / 1e6 / out["wall"], "tasks": out["stats"].get("partitions", "-"),
                     "plan s": out["stats"].get("plan_s", "-"), "map s": out["stats"].get("map_s", "-"),
                     "load s": out["stats"].get("load_s", "-"), "driver peak RSS MB": out["peak_mb"]})
    remove_store(f"bigfile-{n}.duckdb*")
    print(f"## Ray ingest of one large file (`benchmarks/bench_scale.py bigfile {n}`, {machine()}, local Ray with "
          f"{cpus} CPUs; {time.strftime('%Y-%m-%d')})\n")
    print(table(rows))
    print()
    print(f"- every run ingested the same samples: {len(counts) == 1} {sorted(counts)}")
    base = rows[0]["wall s"]
    for r in rows[1:]:
        print(f"- {r['run']}: {base / r['wall s']:.2f}x the in-process speed")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "executors"
    if what == "executors":
        executors([int(x) for x in sys.argv[2:]] or [100_000, 1_000_000])
    elif what == "lake":
        lake(float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
    elif what == "nightly":
        nightly(int(sys.argv[2]) if len(sys.argv) > 2 else 500)
    elif what == "register":
        register(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
    elif what == "bigfile":
        bigfile(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
    elif what == "driver":
        driver([int(x) for x in sys.argv[2:]] or [250_000, 1_000_000, 4_000_000])
    else:
        sys.exit("usage: bench_scale.py executors [N ...] | lake [MILLIONS] | nightly [RUNS] | driver [N ...] | register [N] | bigfile [N]")
