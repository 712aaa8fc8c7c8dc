"""The Ray executor gives the in-process results, survives a killed worker, and resumes.

A local Ray instance with 2 CPUs. The input is real text (web pages with contact details,
conversations, medical answers), and the recipe is the default one plus semantic dedup,
with small batches so that a run has several partitions and several buckets per dedup step.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from mixline.curation.pii.scrub import store_key
from mixline.curation.recipe import DEFAULT_RECIPE, Recipe
from mixline.store import Store

from mixline import api
from mixline.errors import StoreError

ray = pytest.importorskip("ray", reason="Ray tests need `pip install mixline[ray]`")
from mixline.curation.distributed import RayExecutor  # noqa: E402

BATCH = 70


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def recipe() -> Recipe:
    cfg = tomllib.loads(DEFAULT_RECIPE)
    cfg["batch_size"] = BATCH
    cfg["steps"].append({"type": "semantic_dedup", "threshold": 0.9, "partition_size": 150})
    return Recipe.parse(cfg, "test")


def _subset(src: Path, dst: Path, n: int, field: str | None = None) -> Path:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt") as fh, dst.open("w") as out:
        for i, line in enumerate(fh):
            if i >= n:
                break
            if field:
                rec = json.loads(line)
                line = json.dumps({"text": rec[field]}) + "\n"
            out.write(line)
    return dst


@pytest.fixture(scope="module")
def seeded(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with real web pages, conversations and medical answers, ready to curate (its
    PII key made, so that copies scrub alike)."""
    folder = tmp_path_factory.mktemp("ray-seed")
    path = folder / "seed.duckdb"
    with Store(path) as st:
        api.ingest(st, [str(realdata / "web" / "dolma_cc_en_head-0091.jsonl.gz")], kind="web")
        api.ingest(st, [str(realdata / "conversations" / "oasst_en_100_message.jsonl")], kind="conversation")
        med = _subset(realdata / "domain_medical" / "medquad_qa.jsonl.gz", folder / "med.jsonl", 200, "answer")
        api.ingest(st, [str(med)], kind="domain", domain="medical")
        # Exact and near copies, so that every dedup step has clusters to agree on.
        copies = folder / "copies.jsonl"
        rows = st.execute("SELECT text FROM samples WHERE kind = 'domain' ORDER BY sample_id LIMIT 30").fetchall()
        with copies.open("w") as fh:
            for (t,) in rows:
                fh.write(json.dumps({"text": t + " Updated."}) + "\n")
                fh.write(json.dumps({"text": t.upper()}) + "\n")
        api.ingest(st, [str(copies)], kind="domain", domain="medical", source="copies")
        store_key(st)
    return path


def _copy(seed: Path, dst: Path) -> Path:
    shutil.copy(seed, dst)
    return dst


def outcome(path: Path | str) -> dict:
    with Store(path, read_only=True) as st:
        return {k: st.execute(q).fetchall() for k, q in {
            "decisions": "SELECT sample_id, step, verdict, reason, score FROM decisions ORDER BY ALL",
            "clusters": "SELECT sample_id, cluster_id, method, kept FROM clusters ORDER BY ALL",
            "samples": "SELECT sample_id, text FROM samples ORDER BY 1",
            "edges": "SELECT child_id, parent_id, relation, step FROM edges ORDER BY ALL",
            "redactions": 'SELECT sample_id, entity_type, "start", "end", policy FROM redactions ORDER BY ALL',
            "langs": "SELECT sample_id, lang FROM samples ORDER BY 1",
            "prints": "SELECT fingerprint, entity_type FROM pii_fingerprints ORDER BY ALL",
        }.items()}


MIX = {"name": "m", "seed": 7, "total_tokens": 40_000, "groups": [
    {"name": "web", "where": "kind = 'web'", "weight": 0.3}, {"name": "rest", "where": "kind <> 'web'", "weight": 0.7}]}


@pytest.fixture(scope="module")
def local_result(seeded: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    path = _copy(seeded, tmp_path_factory.mktemp("local") / "local.duckdb")
    with Store(path) as st:
        res = api.curate(st, recipe())
        mix = api.build_mix(st, api.MixRecipe.parse(MIX)).mix_id
    assert res.dropped > 0 and res.rewritten > 0
    return path, outcome(path), mix


def test_ray_gives_the_same_decisions_ids_clusters_and_mix(local_ray: None, seeded: Path, local_result: tuple,
                                                          tmp_path: Path) -> None:
    _, expected, mix = local_result
    for workers, buckets in ((2, 4), (1, 3), (4, 7)):
        path = _copy(seeded, tmp_path / f"ray-{workers}-{buckets}.duckdb")
        ex = RayExecutor(workers=workers, buckets=buckets, work_dir=tmp_path / "work")
        with Store(path) as st:
            res = api.curate(st, recipe(), executor=ex)
            assert res.dropped > 0
            got_mix = api.build_mix(st, api.MixRecipe.parse(MIX)).mix_id
        assert ex.stats["partitions"] > 3 and ex.stats["resumed"] == 0
        got = outcome(path)
        for key in expected:
            assert got[key] == expected[key], (key, workers, buckets)
        assert got_mix == mix
        assert not (tmp_path / "work").exists(), "the work folder (raw text) is removed after the commit"
    kinds = {r[2] for r in expected["decisions"]}
    assert {"kept", "dropped", "rewritten"} <= kinds
    methods = {r[2] for r in expected["clusters"]}
    assert {"exact", "minhash", "semantic"} <= methods


def test_ray_keeps_earlier_runs_copies_and_checks_pairs_like_in_process(local_ray: None, seeded: Path,
                                                                       tmp_path: Path) -> None:
    """A second run whose clusters hold samples an earlier run kept (anchors, which always win),
    with MinHash checking each pair's similarity where the pair is found."""
    first = Recipe.parse({"batch_size": BATCH, "steps": [{"type": "exact_dedup"}, {"type": "minhash_dedup"}]}, "first")
    second = Recipe.parse({"batch_size": BATCH, "steps": [
        {"type": "exact_dedup"}, {"type": "minhash_dedup", "verify_threshold": 0.6},
        {"type": "minhash_dedup", "bands": 28, "rows": 4, "split_chains": False}]}, "second")
    got = {}
    for name, ex in (("local", None), ("ray", RayExecutor(workers=2, buckets=5, work_dir=tmp_path / "work"))):
        path = _copy(seeded, tmp_path / f"{name}.duckdb")
        with Store(path) as st:
            api.curate(st, first, where="source = 'copies'", executor=ex)
            res = api.curate(st, second, new_only=True, executor=ex)
            assert res.dropped > 0
            anchored = st.scalar("""SELECT count(*) FROM decisions d JOIN decisions k
                                    ON k.sample_id = split_part(d.reason, ':', 2) AND k.run_id <> d.run_id
                                    WHERE d.run_id = ? AND d.verdict = 'dropped'""", [res.run_id])
        got[name] = outcome(path)
        assert anchored > 0, "some samples are dropped as copies of an earlier run's kept sample"
    assert got["ray"] == got["local"]


def test_a_failed_partition_fails_the_run_cleanly_and_the_rerun_resumes(local_ray: None, seeded: Path,
                                                                        local_result: tuple, tmp_path: Path) -> None:
    _, expected, _ = local_result
    path = _copy(seeded, tmp_path / "s.duckdb")
    work = tmp_path / "work"
    work.mkdir()
    (work / "_inject_fault_4").write_text("")
    with Store(path) as st:
        before = st.scalar("SELECT count(*) FROM samples")
        with pytest.raises(Exception, match="fault injected in partition 4"):
            api.curate(st, recipe(), executor=RayExecutor(workers=2, work_dir=work))
        assert st.scalar("SELECT count(*) FROM decisions") == 0, "a failed run leaves no decisions"
        assert st.scalar("SELECT count(*) FROM samples") == before, "nor scrubbed children"
        assert st.scalar("SELECT status FROM runs WHERE kind = 'curate'") == "failed"
    done = [p for p in next(work.glob("curate-*")).glob("part-*") if "." not in p.name]
    assert done, "completed partitions are kept for the rerun"
    (work / "_inject_fault_4").unlink()
    ex = RayExecutor(workers=2, work_dir=work)
    with Store(path) as st:
        api.curate(st, recipe(), executor=ex)
    assert ex.stats["resumed"] == len(done) > 0
    got = outcome(path)
    for key in expected:
        assert got[key] == expected[key], key


def _ray_workers() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if int(p) != os.getpid()]


def test_a_killed_worker_is_replaced_and_the_run_completes(seeded: Path, local_result: tuple, tmp_path: Path) -> None:
    _, expected, _ = local_result
    path = _copy(seeded, tmp_path / "s.duckdb")
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(path), "curate", "-q",
           str(_write_recipe(tmp_path)), "--executor", "ray", "--num-cpus", "2", "--work-dir", str(work)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline and killed is None:
            parts = [p for p in work.glob("curate-*/part-*") if "." not in p.name]
            workers = _ray_workers()
            if len(parts) >= 1 and workers:
                os.kill(workers[0], signal.SIGKILL)
                killed = workers[0]
            time.sleep(0.2)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no worker was found to kill; the run ended too soon"
    assert proc.returncode == 0, err
    got = outcome(path)
    for key in expected:
        assert got[key] == expected[key], key


def _write_recipe(tmp_path: Path) -> Path:
    cfg = tomllib.loads(DEFAULT_RECIPE)
    out = tmp_path / "recipe.toml"
    lines = [f"name = {json.dumps(cfg.get('name', 'default'))}", f"batch_size = {BATCH}"]
    text = DEFAULT_RECIPE
    # The default recipe's text with the batch size set and semantic dedup appended.
    body = "\n".join(line for line in text.splitlines() if not line.startswith(("name =", "batch_size =")))
    out.write_text("\n".join(lines) + "\n" + body + '\n[[steps]]\ntype = "semantic_dedup"\nthreshold = 0.9\npartition_size = 150\n')
    assert Recipe.from_file(out).config() == recipe().config()
    return out


def test_ray_on_a_lake_store_matches_the_file_store(local_ray: None, seeded: Path, local_result: tuple,
                                                   tmp_path: Path) -> None:
    pytest.importorskip("duckdb_extension_ducklake")
    _, expected, _ = local_result
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    subprocess.run([sys.executable, "-m", "mixline.pipelines.cli", "init", "--catalog", url], check=True,
                   capture_output=True)
    with Store(url) as lake, Store(seeded, read_only=True) as src:
        # The seeded store's PII key replaces the one `init` made, so that both scrub alike.
        lake.execute("DELETE FROM store_secrets")
        for table in ("sources", "samples", "sample_origins", "runs", "store_secrets"):
            cols = [r[0] for r in src.execute(f"DESCRIBE {table}").fetchall()]
            lake.append(table, src.execute(f"SELECT {', '.join(cols)} FROM {table}").to_arrow_table())
    data = tmp_path / "cat.sqlite.files" / "main"

    def placed() -> set[str]:
        return {p.name for p in data.glob("*/mixline-*.parquet")}

    # A dry run computes everything, registers its shards in place, then rolls back: the
    # catalog names none of them and none is left on disk.
    with Store(url) as st:
        api.curate(st, recipe(), executor=RayExecutor(workers=2), dry_run=True)
        assert st.scalar("SELECT count(*) FROM decisions") == 0
        assert not st.execute("SELECT path FROM __ducklake_metadata_lake.ducklake_data_file "
                              "WHERE path LIKE 'mixline-%'").fetchall()
    assert not placed()
    ex = RayExecutor(workers=2)
    with Store(url) as st:
        api.curate(st, recipe(), executor=ex)
        registered = {r[0] for r in st.execute("SELECT path FROM __ducklake_metadata_lake.ducklake_data_file "
                                               "WHERE path LIKE 'mixline-%'").fetchall()}
    assert "_mixline_work" in ex.stats["work_dir"]
    # Decision and cluster shards were registered where they lie, not copied.
    assert ex.stats["registered_in_place"] > ex.stats["partitions"]
    assert registered and registered == placed()
    got = outcome(url)
    for key in expected:
        assert got[key] == expected[key], key


def test_ray_is_refused_for_an_in_memory_store_without_a_work_dir() -> None:
    from mixline.errors import ConfigError

    with Store(":memory:") as st, pytest.raises((ConfigError, StoreError), match="work"):
        api.curate(st, recipe(), executor=RayExecutor(num_cpus=1))


def _ingested(st: Store, r: object, order: str = "") -> tuple:
    """An ingest's summary (less its run id), samples (in store order unless `order`), origins
    and quarantine."""
    return ({k: v for k, v in r.as_dict().items() if k != "run_id"},  # type: ignore[attr-defined]
            st.execute(f"SELECT sample_id, text, messages, content_hash FROM samples {order}").fetchall(),
            st.execute("SELECT sample_id, file, locator, original_id, url, meta::VARCHAR FROM sample_origins "
                       "ORDER BY ALL").fetchall(),
            st.execute("SELECT file, locator, reason, excerpt FROM quarantine ORDER BY ALL").fetchall())


def test_ray_ingest_keeps_the_same_samples_origins_and_quarantine(local_ray: None, realdata: Path,
                                                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "   "}\n{"text": "a short but fine record"}\nnot json at all\n')
    inputs = [realdata / "web" / "dolma_cc_en_head-0091.jsonl.gz", realdata / "conversations" / "oasst_en_100_message.jsonl",
              realdata / "web" / "dolma_cc_en_head-0174.jsonl.gz", bad,
              realdata / "web" / "dolma_cc_en_head-0091.jsonl.gz"]  # twice: its rows are duplicates the second time
    results = {}
    for name, ex in (("local", None), ("ray", RayExecutor(workers=2, work_dir=tmp_path / "work"))):
        with Store(tmp_path / f"{name}.duckdb") as st:
            r = api.ingest(st, inputs, kind="web", source="mixed", allow_bad=True, executor=ex)
            results[name] = _ingested(st, r, "ORDER BY 1")
    assert results["local"] == results["ray"]
    summary = results["local"][0]
    assert summary["quarantined"] == 2 and summary["ingested"] > 600
    assert not (tmp_path / "work").exists()


def classifier_recipe() -> Recipe:
    """The default rules, then a learned classifier twice: as a tag on conversations (scores only)
    and as keep_top on web pages (a global step that ranks every partition's survivors)."""
    cfg = tomllib.loads(DEFAULT_RECIPE)
    cfg["batch_size"] = BATCH
    first_dedup = next(i for i, s in enumerate(cfg["steps"]) if "dedup" in s["type"])
    cfg["steps"].insert(first_dedup, {"type": "classifier", "name": "med", "threshold": 0.5, "mode": "tag",
                                      "kinds": ["conversation"]})
    cfg["steps"].append({"type": "classifier", "name": "med", "keep_top": 0.3, "kinds": ["web"]})
    return Recipe.parse(cfg, "test")


def test_ray_runs_classifier_steps_like_in_process(local_ray: None, seeded: Path, tmp_path: Path) -> None:
    from mixline.pipelines.classifiers import TrainSpec, train

    base = _copy(seeded, tmp_path / "clf-seed.duckdb")
    with Store(base) as st:
        train(st, TrainSpec("med", positive="domain = 'medical' AND source <> 'copies'", negative="kind = 'web'",
                            uncurated=True, max_per_class=150))
    queries = {"scores": "SELECT classifier_id, sample_id, label, round(score, 12) FROM classifier_scores ORDER BY ALL",
               "uses": "SELECT classifier_id, step FROM classifier_uses ORDER BY ALL"}
    results = []
    for ex in (None, RayExecutor(workers=2, buckets=3, work_dir=tmp_path / "work")):
        path = _copy(base, tmp_path / f"clf-{'ray' if ex else 'local'}.duckdb")
        with Store(path) as st:
            api.curate(st, classifier_recipe(), executor=ex)
            extra = {k: st.execute(q).fetchall() for k, q in queries.items()}
        results.append((outcome(path), extra))
    (local, local_extra), (got, got_extra) = results
    assert got == local and got_extra == local_extra
    # Both steps ran: web pages outside the top 30% were dropped by the classifier, conversations only tagged.
    steps = {(r[1], r[2]) for r in local["decisions"] if r[1].startswith("classifier_med")}
    assert ("classifier_med_v1", "dropped") in steps and ("classifier_med_v1", "kept") in steps
    n_scored = {r[1] for r in local_extra["scores"]}
    with Store(base, read_only=True) as st:
        n_train = st.scalar("SELECT count(*) FROM classifier_scores")
    assert len(n_scored) > n_train  # the step scored samples its training did not


def test_ray_ingest_splits_large_files_into_spans_and_keeps_what_in_process_keeps(
        local_ray: None, realdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small reader chunks and spans, so each large file is many tasks: an uncompressed JSONL of
    real conversations, a messy JSONL (bad lines, a line past the record limit, no final newline),
    a Parquet file of many row groups, and a folder; ids, origins, counts and quarantine equal an
    in-process ingest's."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mixline.pipelines import readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 16 << 10)
    monkeypatch.setenv("MIXLINE_INGEST_SPAN_BYTES", str(48 << 10))
    messy = tmp_path / "messy.jsonl"
    lines = [json.dumps({"text": f"line {i} of a messy file, with words {i * 7}", "id": f"m{i}"}) for i in range(3000)]
    lines[10], lines[500], lines[1700] = "{not json", "", json.dumps({"text": "z" * 1_500_000})
    lines[2200] = json.dumps({"body": "no text"})
    messy.write_text("\n".join(lines))  # no final newline
    pq_path = tmp_path / "rows.parquet"
    texts = [json.loads(x) for x in (realdata / "conversations" / "oasst_prompt_lottery_en_250_text.jsonl")
             .read_text().splitlines() if x.strip()]
    pq.write_table(pa.table({"text": texts * 3}), pq_path, row_group_size=40)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a whole text file, read as one record\n")
    (folder / "b.jsonl").write_text(messy.read_text()[:200_000].rsplit("\n", 1)[0] + "\n")
    (folder / "c.unknown").write_bytes(b"\x00\x01 what is this")
    csv_path, bad_csv = tmp_path / "rows.csv", tmp_path / "bad.csv"
    with csv_path.open("w", newline="") as fh:  # quoted fields with commas, quotes and newlines
        w = csv.writer(fh)
        w.writerow(["text", "id"])
        for i, t in enumerate(texts * 2):
            w.writerow([t if i % 3 else f'{t}\nsaid "twice", on line two', f"c{i}"])
    body = csv_path.read_bytes()
    bad_csv.write_bytes(body[: len(body) // 2] + b"\n\xff\xfe,not utf-8\n" + body[len(body) // 2:])
    inputs = [realdata / "conversations" / "oasst_en_100_message.jsonl", messy, pq_path, folder,
              realdata / "web" / "dolma_cc_en_head-0091.jsonl.gz", messy, csv_path, bad_csv,
              realdata / "web" / "dolma_sample-0000.warc.gz"]
    results, stats = {}, {}
    lake = "sqlite:///" + str(tmp_path / "cat.sqlite")
    has_lake = subprocess.run([sys.executable, "-c", "import duckdb_extension_ducklake"]).returncode == 0
    if has_lake:
        subprocess.run([sys.executable, "-m", "mixline.pipelines.cli", "init", "--catalog", lake], check=True,
                       capture_output=True)
    for name, ex, where in (("local", None, tmp_path / "local.duckdb"),
                            ("ray", RayExecutor(workers=2, work_dir=tmp_path / "work"), tmp_path / "ray.duckdb"),
                            ("lake", RayExecutor(workers=2, work_dir=tmp_path / "work"), lake)):
        if name == "lake" and not has_lake:
            continue
        with Store(where) as st:
            # A file the store already holds part of: the anti-join against the store's ids.
            api.ingest(st, [folder / "b.jsonl"], kind="web", source="before", allow_bad=True, executor=ex)
            r = api.ingest(st, inputs, kind="web", source="spans", allow_bad=True, max_bytes=20_000, executor=ex)
            results[name] = _ingested(st, r)
            stats[name] = st.execute("SELECT stats FROM runs WHERE kind = 'ingest' ORDER BY started_at DESC").fetchone()[0]
    assert results["local"] == results["ray"]  # samples in the same (input) order too
    if has_lake:
        assert results["lake"][0] == results["local"][0] and results["lake"][2:] == results["local"][2:]
        assert sorted(results["lake"][1]) == sorted(results["local"][1])
    summary = results["local"][0]
    assert summary["duplicates"] >= 2990 and summary["quarantined"] >= 8
    ray_stats = json.loads(stats["ray"])["executor"]
    assert ray_stats["spans"] > 30 and ray_stats["partitions"] > ray_stats["inputs"]
    assert ray_stats["read_whole"] == 1  # the CSV with bad UTF-8: its spans cannot say what a whole read loses
    files = {f["file"]: f for f in summary["files"]}
    assert files[str(csv_path)]["new"] > 0 and files[str(realdata / "web" / "dolma_sample-0000.warc.gz")]["new"] > 20
    reasons = [q[2] for q in results["ray"][3]]
    assert any("longer than" in x for x in reasons) and any("malformed JSON" in x for x in reasons)


def test_a_failed_span_fails_the_ingest_cleanly_and_the_rerun_resumes(local_ray: None, realdata: Path,
                                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mixline.pipelines import readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setenv("MIXLINE_INGEST_SPAN_BYTES", str(128 << 10))
    src = realdata / "conversations" / "oasst_en_100_message.jsonl"  # about 1 MB: 8 spans
    work = tmp_path / "work"
    work.mkdir()
    (work / "_inject_fault_5").write_text("")
    with Store(tmp_path / "ray.duckdb") as st:
        with pytest.raises(Exception, match="fault injected in input 5"):
            api.ingest(st, [src], kind="conversation", executor=RayExecutor(workers=2, work_dir=work))
        assert st.scalar("SELECT count(*) FROM samples") == 0, "a failed ingest writes nothing"
        assert st.scalar("SELECT count(*) FROM sample_origins") == 0
        assert st.scalar("SELECT status FROM runs WHERE kind = 'ingest'") == "failed"
    done = [p for p in next(work.glob("ingest-*")).glob("unit-*") if "." not in p.name]
    assert done, "completed spans are kept for the rerun"
    (work / "_inject_fault_5").unlink()
    ex = RayExecutor(workers=2, work_dir=work)
    with Store(tmp_path / "ray.duckdb") as st:
        r = api.ingest(st, [src], kind="conversation", executor=ex)
        got = st.execute("SELECT sample_id, text FROM samples").fetchall()
        origins = st.execute("SELECT sample_id, locator FROM sample_origins ORDER BY ALL").fetchall()
    assert ex.stats["resumed"] == len(done) > 0 and ex.stats["spans"] == 8
    with Store(tmp_path / "local.duckdb") as st:
        expected = api.ingest(st, [src], kind="conversation")
        assert got == st.execute("SELECT sample_id, text FROM samples").fetchall()
        assert origins == st.execute("SELECT sample_id, locator FROM sample_origins ORDER BY ALL").fetchall()
    assert r.ingested == expected.ingested > 90
