"""Dashboard latency on a store of 1M samples with 3 synthetic generations.

The store is built in SQL, shaped like a real one: 700k human samples over 3 kinds and 9
sources, 100k PII-scrubbed copies, three generations of 66,667 synthetic samples (each
written by a model trained on a mix of the generation before), about 4.5M curation
decisions, redactions, 4 mixes of 100k-300k members, 4 models with evals, a loop's state
and its drift checks. Then `optimize` builds the indexes, as a user would at this size.

Each page is requested through the app in-process (routing, store open, queries, Jinja
rendering), REPEAT times with varied ids; p50 and p95 per page are printed. Targets:
p95 <= 500 ms per page, a gen-3 sample's lineage page <= 300 ms, the overview <= 500 ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, table  # noqa: E402
from mixline.store import Store  # noqa: E402
from mixline.store.lineage import optimize  # noqa: E402

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
REPEAT = 20
HUMAN, SCRUBBED, GEN = int(700_000 * SCALE), int(100_000 * SCALE), int(66_667 * SCALE)


def sid(expr: str) -> str:
    return f"substr(md5(({expr})::VARCHAR), 1, 32)"


def key(col: str) -> str:
    return f"('0x' || substr({col}, 1, 16))::UBIGINT"


def build(path: Path) -> dict[str, object]:
    path.unlink(missing_ok=True)
    words = "['the','patient','court','function','answer','river','data','model','price','water','law','cell']"
    with Store(path) as st:
        st.execute("""INSERT INTO runs VALUES
            ('run-ingest', 'ingest', 'ingest_v1', 1, '{}', 'h0', 'v', NULL, now() - INTERVAL 3 HOUR, now() - INTERVAL 3 HOUR, 'ok', '{}', NULL),
            ('run-curate-1', 'curate', 'curate_v1', 1, '{}', 'h1', 'v', NULL, now() - INTERVAL 2 HOUR, now() - INTERVAL 2 HOUR, 'ok', '{}', NULL),
            ('run-curate-2', 'curate', 'curate_v1', 1, '{}', 'h2', 'v', NULL, now() - INTERVAL 1 HOUR, now() - INTERVAL 1 HOUR, 'ok', '{}', NULL)""")
        st.execute("""INSERT INTO sources (source_id, name, kind, license, domain)
            SELECT 'src' || i, 'source' || i, ['web','domain','conversation'][i % 3 + 1], 'CC-BY-4.0',
                   ['medical','legal','code'][i % 3 + 1] FROM range(9) t(i)""")
        text = f"list_aggregate(list_transform(range(40), k -> {words}[(hash(i, k) % 12)::INT + 1]), 'string_agg', ' ')"
        st.execute(f"""INSERT INTO sample_rows (sample_id, source_id, source, kind, text, content_hash, domain, n_chars, synth_depth, created_run_id)
            SELECT {sid('i')}, 'src' || (i % 9), 'source' || (i % 9), ['web','domain','conversation'][(i % 9) % 3 + 1],
                   {text}, {sid('i')}, CASE WHEN (i % 9) % 3 = 1 THEN ['medical','legal','code'][(i % 9) // 3 + 1] END,
                   240, 0, 'run-ingest'
            FROM range({HUMAN + SCRUBBED}) t(i)""")
        # Scrubbed copies: one parent each among the human samples.
        st.execute(f"""INSERT INTO edges SELECT {sid(f'{HUMAN} + i')}, {sid('i * 7')}, 'scrubbed_from', 'run-curate-1', 'pii_v3',
                          {key(sid(f'{HUMAN} + i'))}, {key(sid('i * 7'))} FROM range({SCRUBBED}) t(i)""")
        st.execute(f"""INSERT INTO redactions SELECT {sid(f'{HUMAN} + i')}, 'run-curate-1', ['EMAIL','PHONE','PERSON'][i % 3 + 1],
                          10, 20, 'regex', 'replace' FROM range({SCRUBBED}) t(i)""")
        # Curation: 6 decisions per input; 1 in 5 dropped by one of four reasons; scrubbed inputs rewritten.
        st.execute(f"""INSERT INTO decisions SELECT CASE WHEN i % 2 = 0 THEN 'run-curate-1' ELSE 'run-curate-2' END, {sid('i')},
                          ['length_v1','gopher_quality_v1','domain_quality_v1','pii_v3','exact_dedup_v1','minhash_dedup_v2'][s + 1],
                          CASE WHEN s = 3 AND i % 7 = 0 AND i < {SCRUBBED * 7} THEN 'rewritten'
                               WHEN s = 1 AND i % 5 = 0 THEN 'dropped' ELSE 'kept' END,
                          CASE WHEN s = 1 AND i % 5 = 0 THEN ['short','symbols','stop_words','bullets'][i % 4 + 1] END, NULL
                   FROM range({HUMAN}) t(i), range(6) r(s)""")
        mixes, models = [], []
        prev_members = f"SELECT {sid('i')} AS sample_id FROM range({HUMAN}) t(i) WHERE i % 5 <> 0 AND i % 3 = 0"
        off = HUMAN + SCRUBBED
        for g in range(0, 4):
            mix_id, model_id = f"mix-bench-gen{g}", f"model-bench-gen{g}"
            st.execute(f"INSERT INTO mixes VALUES ('{mix_id}', 'gen{g}', '{{\"name\": \"gen{g}\"}}', 'rh{g}', 'run-curate-2', now())")
            st.execute(f"INSERT INTO mix_members SELECT '{mix_id}', sample_id, 1, CASE WHEN hash(sample_id) % 50 = 0 THEN 'heldout' ELSE 'train' END FROM ({prev_members})")
            cfg = json.dumps({"steps": 200, "lr": 3e-3, "loss_curve": [round(5 - k * 0.01, 3) for k in range(200)]})
            st.execute("INSERT INTO models (model_id, name, base_ref, parent_model_id, method, mix_id, train_run_id, checkpoint_uri, config, created_at) VALUES (?, ?, 'tiny', ?, 'full', ?, 'run-curate-2', '/ckpt', ?, now())",
                       [model_id, f"gen{g}", models[-1] if models else None, mix_id, cfg])
            st.execute("INSERT INTO evals (model_id, eval_set, metric, value, run_id, n_docs, n_chars) VALUES (?, 'general', 'bits_per_char', ?, 'run-curate-2', 200, 50000), "
                       "(?, 'domain', 'bits_per_char', ?, 'run-curate-2', 200, 50000)", [model_id, 2.8 + g * 0.1, model_id, 3.0 + g * 0.05])
            mixes.append(mix_id)
            models.append(model_id)
            if g == 3:
                break
            # Generation g+1: written by this model, prompted by a member of its mix.
            st.execute(f"""INSERT INTO sample_rows (sample_id, source_id, source, kind, text, content_hash, n_chars, synth_depth, created_run_id)
                SELECT {sid(f'{off} + i')}, 'gen', 'loop:bench:replace:gen{g + 1}', 'synthetic', {text}, {sid(f'{off} + i')}, 240, {g + 1}, 'run-curate-2'
                FROM range({GEN}) t(i)""")
            st.execute(f"""INSERT INTO generations SELECT {sid(f'{off} + i')}, '{model_id}', 'run-curate-2', NULL, 't', '{{}}', i FROM range({GEN}) t(i)""")
            st.execute(f"""INSERT INTO edges SELECT {sid(f'{off} + i')}, p.sample_id, 'prompted_by', 'run-curate-2', 'generate_v1',
                              {key(sid(f'{off} + i'))}, {key('p.sample_id')}
                           FROM range({GEN}) t(i) JOIN (SELECT sample_id, row_number() OVER (ORDER BY sample_id) - 1 AS r FROM mix_members
                                                       WHERE mix_id = '{mix_id}') p ON p.r = i""")
            prev_members = f"SELECT {sid(f'{off} + i')} AS sample_id FROM range({GEN}) t(i)"
            off += GEN
        for g in range(1, 4):
            st.execute("INSERT INTO loop_state VALUES ('bench-00000000', ?, 'replace', 'eval', ?, 'run-curate-2'), "
                       "('bench-00000000', ?, 'replace', 'train', ?, 'run-curate-2'), ('bench-00000000', ?, 'replace', 'mix', ?, 'run-curate-2')",
                       [g, json.dumps({"sets": {"real_heldout": {"bits_per_char": 2.8 + g * 0.15}}}), g, json.dumps({"model_id": models[g]}),
                        g, json.dumps({"mix_id": mixes[g]})])
            for m in range(12):
                st.execute("INSERT INTO drift VALUES (?, ?, 'human', ?, 1.0, 1.0, ?, 0.1, ?, now(), 0.0, 0.05)",
                           [f"run-drift-{g}", f"loop:bench:replace:gen{g}:output", f"metric{m}", 0.05 * g, g > 1])
        gen3 = st.scalar("SELECT sample_id FROM samples WHERE synth_depth = 3 ORDER BY sample_id LIMIT 1")
        n = st.scalar("SELECT count(*) FROM samples")
        d = st.scalar("SELECT count(*) FROM decisions")
        optimize(st)
    return {"samples": n, "decisions": d, "gen3": gen3, "mixes": mixes, "models": models}


def main() -> None:
    from mixline.dashboards.app import create_app
    from starlette.testclient import TestClient

    path = WORK / "dashboard" / "bench.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    info = build(path)
    print(f"built {info['samples']:,} samples, {info['decisions']:,} decisions in {time.perf_counter() - t:.0f} s", flush=True)
    with Store(path, read_only=True) as st:
        gen3 = [r[0] for r in st.execute("SELECT sample_id FROM samples WHERE synth_depth = 3 ORDER BY hash(sample_id) LIMIT 20").fetchall()]
        human = [r[0] for r in st.execute("SELECT sample_id FROM samples WHERE synth_depth = 0 ORDER BY hash(sample_id) LIMIT 20").fetchall()]
    mixes, models = info["mixes"], info["models"]
    assert isinstance(mixes, list) and isinstance(models, list)
    cold_client = TestClient(create_app(path), base_url="http://127.0.0.1")  # no lifespan: no warm-up at start
    t = time.perf_counter()
    assert cold_client.get("/").status_code == 200
    cold = time.perf_counter() - t
    app = create_app(path)
    client = TestClient(app, base_url="http://127.0.0.1")
    client.__enter__()  # runs the lifespan: the server computes the overview in the background at start
    t = time.perf_counter()
    app.state.dashboard.warmed.wait()
    warm_up = time.perf_counter() - t
    t = time.perf_counter()
    assert client.get("/").status_code == 200
    first = time.perf_counter() - t
    pages = {
        "/ (overview, cached)": lambda i: "/",
        "/samples": lambda i: "/samples",
        "/samples?q=text": lambda i: f"/samples?q=river%20court%20{['data', 'law', 'cell'][i % 3]}",
        "/samples?q=id prefix": lambda i: f"/samples?q={human[i][:6]}",
        "/samples/{gen-3 id} (lineage)": lambda i: f"/samples/{gen3[i]}",
        "/samples/{human id}": lambda i: f"/samples/{human[i]}",
        "/mixes": lambda i: "/mixes",
        "/mixes/{id}": lambda i: f"/mixes/{mixes[i % 4]}",
        "/mixes/diff": lambda i: f"/mixes/diff?a={mixes[i % 3]}&b={mixes[i % 3 + 1]}",
        "/models": lambda i: "/models",
        "/models/{id}": lambda i: f"/models/{models[i % 4]}",
        "/loops/{id}": lambda i: "/loops/bench-00000000",
        "/drift": lambda i: "/drift",
        "/runs": lambda i: "/runs",
    }
    rows = []
    worst = {}
    for name, url in pages.items():
        times = []
        for i in range(REPEAT):
            t = time.perf_counter()
            r = client.get(url(i))
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, (url(i), r.text[:300])
        times.sort()
        p95 = times[int(0.95 * (len(times) - 1))]
        worst[name] = p95
        rows.append({"page": name, "p50 ms": round(1000 * statistics.median(times)), "p95 ms": round(1000 * p95)})
    rows.insert(0, {"page": "/ (overview, first view, server warmed up at start)", "p50 ms": round(1000 * first), "p95 ms": round(1000 * first)})
    rows.insert(0, {"page": "/ (overview, first view with no warm-up)", "p50 ms": round(1000 * cold), "p95 ms": round(1000 * cold)})
    # A new curation run commits (100k inputs, 6 decisions each); the next overview computes only its funnel.
    with Store(path) as st:
        st.execute("INSERT INTO runs VALUES ('run-curate-3', 'curate', 'curate_v1', 1, '{}', 'h3', 'v', NULL, now(), now(), 'ok', '{}', NULL)")
        st.execute(f"""INSERT INTO decisions SELECT 'run-curate-3', {sid('i')}, ['length_v1','gopher_quality_v1','domain_quality_v1',
                       'pii_v3','exact_dedup_v1','minhash_dedup_v2'][s + 1], CASE WHEN s = 4 AND i % 9 = 0 THEN 'dropped' ELSE 'kept' END,
                       CASE WHEN s = 4 AND i % 9 = 0 THEN 'duplicate' END, NULL FROM range({int(100_000 * SCALE)}) t(i), range(6) r(s)""")
    t = time.perf_counter()
    r = client.get("/")
    after_run = time.perf_counter() - t
    assert r.status_code == 200 and "run-curate-3" in r.text
    rows.insert(1, {"page": "/ (overview, first view after a new run)", "p50 ms": round(1000 * after_run), "p95 ms": round(1000 * after_run)})
    worst["/ (overview, first view after a new run)"] = after_run
    print(f"\nDashboard latency, {info['samples']:,} samples, {REPEAT} requests per page ({machine()})")
    print(table(rows))
    lineage = worst["/samples/{gen-3 id} (lineage)"]
    print(f"\nmax p95 over pages: {1000 * max(worst.values()):.0f} ms (target 500); gen-3 lineage p95 {1000 * lineage:.0f} ms "
          f"(target 300); overview: warm-up at start {1000 * warm_up:.0f} ms in the background, then first view {1000 * first:.0f} ms "
          f"(with no warm-up {1000 * cold:.0f} ms), after a new run {1000 * after_run:.0f} ms, cached p95 {1000 * worst['/ (overview, cached)']:.0f} ms (target 500)")


if __name__ == "__main__":
    main()
