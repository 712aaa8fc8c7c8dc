"""Lineage at scale: trace and impact on 10M samples and 20M edges, vs a recursive CTE.

The graph is shaped like curation plus three synthetic generations: 3.5M human samples;
2M curated rewrites (one parent each); then three generations of 1.5M synthetic samples,
each with 4 parents: a prompt from the layer before and 3 few-shot samples from below.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, table  # noqa: E402
from mixline.store import Store  # noqa: E402
from mixline.store.lineage import impact, optimize, trace  # noqa: E402

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
HUMAN, CURATED, GEN = int(3_500_000 * SCALE), int(2_000_000 * SCALE), int(1_500_000 * SCALE)


def sid(expr: str) -> str:
    return f"substr(md5(({expr})::VARCHAR), 1, 32)"


def edge_select(child: str, parent: str, relation: str, run: str, frm: str) -> str:
    c, p = sid(child), sid(parent)
    return (f"SELECT {c}, {p}, '{relation}', '{run}', 'step_v1', ('0x' || substr({c}, 1, 16))::UBIGINT, "
            f"('0x' || substr({p}, 1, 16))::UBIGINT FROM {frm}")


def build(st: Store) -> tuple[int, int]:
    layers = [("human", 0, HUMAN), ("curated", HUMAN, CURATED)]
    off = HUMAN + CURATED
    for g in range(1, 4):
        layers.append((f"gen{g}", off, GEN))
        off += GEN
    total = off
    st.execute(f"""INSERT INTO sample_rows (sample_id, source_id, source, kind, text, content_hash, n_chars, synth_depth, created_run_id)
        SELECT {sid('i')}, 'src', CASE WHEN i < {HUMAN + CURATED} THEN 'web' ELSE 'gen' || ((i - {HUMAN + CURATED}) // {GEN} + 1) END,
               CASE WHEN i < {HUMAN + CURATED} THEN 'web' ELSE 'synthetic' END, 'x', {sid('i')}, 1,
               CASE WHEN i < {HUMAN + CURATED} THEN 0 ELSE (i - {HUMAN + CURATED}) // {GEN} + 1 END, 'r0'
        FROM range({total}) t(i)""")
    # Curated rewrites: one parent in the human layer.
    st.execute("INSERT INTO edges " + edge_select(f"{HUMAN} + i", f"(i * 7919) % {HUMAN}", "scrubbed_from", "r1", f"range({CURATED}) t(i)"))
    prev_off, prev_n = HUMAN, CURATED
    off = HUMAN + CURATED
    for g in range(1, 4):
        # Each synthetic sample: one prompt from the layer before, three few-shot parents anywhere below.
        st.execute("INSERT INTO edges " + edge_select(f"{off} + i", f"{prev_off} + (hash(i, {g}) % {prev_n})", "prompted_by", f"r{g + 1}", f"range({GEN}) t(i)"))
        st.execute("INSERT INTO edges " + edge_select(f"{off} + i", f"hash(i, {g}, k) % {off}", "generated_from", f"r{g + 1}", f"range({GEN}) t(i), range(3) k(k)"))
        prev_off, prev_n = off, GEN
        off += GEN
    return total, int(st.scalar("SELECT count(*) FROM edges"))


def recursive_cte_trace(st: Store, sample_id: str) -> int:
    return len(st.execute("""WITH RECURSIVE anc(id, d) AS (
            SELECT ?::VARCHAR, 0
            UNION
            SELECT e.parent_id, a.d + 1 FROM edges e JOIN anc a ON e.child_id = a.id)
        SELECT * FROM anc""", [sample_id]).fetchall())


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"lineage_{SCALE}.duckdb"
    if not path.exists():
        t0 = time.perf_counter()
        with Store(path) as st:
            n, e = build(st)
            optimize(st)
        print(f"built {n:,} samples, {e:,} edges in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    with Store(path) as st:  # migrate a graph built by an older mixline, and index it
        from mixline.store import lineage_index

        if lineage_index.LineageIndex.open(st) is None:
            t0 = time.perf_counter()
            lineage_index.build(st)
            print(f"lineage index built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rng = random.Random(0)
    with Store(path, read_only=True) as st:
        n = st.scalar("SELECT count(*) FROM samples")
        e = st.scalar("SELECT count(*) FROM edges")
        gen3 = [r[0] for r in st.execute("SELECT sample_id FROM (SELECT sample_id FROM samples WHERE source = 'gen3') USING SAMPLE 200 ROWS (reservoir, 1)").fetchall()]
        human = [r[0] for r in st.execute("SELECT sample_id FROM (SELECT sample_id FROM samples WHERE synth_depth = 0) USING SAMPLE 10000 ROWS (reservoir, 2)").fetchall()]
        trace(st, gen3[0])  # warm the cache
        times, sizes = [], []
        for s in gen3:
            t0 = time.perf_counter()
            sizes.append(len(trace(st, s).ancestors))
            times.append(time.perf_counter() - t0)
        cte = []
        for s in gen3[:10]:
            t0 = time.perf_counter()
            recursive_cte_trace(st, s)
            cte.append(time.perf_counter() - t0)
        imp = []
        for k in range(3):
            roots = human if k == 0 else rng.sample(human, 10_000)
            t0 = time.perf_counter()
            res = impact(st, roots)
            imp.append(time.perf_counter() - t0)
        reached = len(res.samples)
    p50 = statistics.median(times) * 1000
    rows = [
        {"query": "mixline trace (gen-3 sample, full ancestry)", "p50 ms": p50, "p95 ms": sorted(times)[int(0.95 * len(times))] * 1000, "target": "p50 <= 5 ms"},
        {"query": "recursive CTE ancestors, same samples", "p50 ms": statistics.median(cte) * 1000, "p95 ms": max(cte) * 1000, "target": "(peer)"},
        {"query": "mixline impact of 10,000 human roots", "p50 ms": statistics.median(imp) * 1000, "p95 ms": max(imp) * 1000, "target": "<= 1000 ms"},
    ]
    print(f"## Lineage ({machine()})\n")
    print(f"Graph: {n:,} samples, {e:,} edges (curation + 3 synthetic generations); traces return a median of "
          f"{statistics.median(sizes):.0f} ancestor edges; the last impact reached {reached:,} samples.\n")
    print(table(rows))
    print(f"\ntrace speed-up over the recursive CTE: {statistics.median(cte) / statistics.median(times):.0f}x")


if __name__ == "__main__":
    main()
