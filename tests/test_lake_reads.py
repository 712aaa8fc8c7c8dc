"""Point reads on a lake (store/lake_reads.py) give exactly what DuckLake's own reads give.

A trace on a DuckLake store reads its tables' Parquet files directly, planned by one catalog
query. Each test traces samples that reach every part of a trace (origins, decisions,
clusters, mixes, generations, redactions, scores, a classifier's training mix, canaries) with
point reads and with them switched off (MIXLINE_LAKE_POINT_READS=0), before and after
`optimize` sorts the files, at an older snapshot, and where the reader must fall back to
DuckLake (delete files, rows inlined in the catalog).
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from pathlib import Path

import pytest
from mixline.curation.classifier import score
from mixline.curation.pipeline import curate, why
from mixline.curation.recipe import Recipe
from mixline.pipelines.canaries import PlantSpec, plant
from mixline.pipelines.classifiers import TrainSpec, train
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.loop import Loop, LoopConfig
from mixline.pipelines.mix import MixRecipe
from mixline.pipelines.mix import build as build_mix
from mixline.store import Store, lake_reads
from mixline.store.lineage import _BUNDLE, _BUNDLE_TABLES, optimize, trace

pytest.importorskip("duckdb_extension_ducklake", reason="DuckLake tests need `pip install mixline[lake]`")
from tests.test_lake import run  # noqa: E402

WEB = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _build(url: str, realdata: Path, work: Path) -> None:
    """A small lake with rows in every table a trace reads."""
    work.mkdir()
    with gzip.open(realdata / WEB, "rt") as f:
        web = [json.loads(line) for _, line in zip(range(150), f, strict=False)]
    (work / "web.jsonl").write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in web))
    prose = [p.strip() for p in (realdata / "prose/tinyshakespeare.txt").read_text().split("\n\n") if len(p.strip()) > 200]
    (work / "prose.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in prose[:120]))
    chats = [{"messages": [{"role": "user", "content": f"I am Ana Ruiz, mail ana.ruiz{i}@gmail.com or call +1 415 555 01{i:02d}."},
                           {"role": "assistant", "content": f"Thanks Ana, ticket {i} is open."}]} for i in range(20)]
    (work / "chats.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    with Store(url) as st:
        ingest(st, work / "web.jsonl", IngestOptions(kind="web", source="cc", license="ODC-BY"))
        ingest(st, work / "prose.jsonl", IngestOptions(kind="domain", source="prose", domain="literature"))
        ingest(st, work / "chats.jsonl", IngestOptions(kind="conversation", source="support"))
        plant(st, PlantSpec("support", n=2, repeats=(1, 4), formats=("plain",), seed=1))
        curate(st, Recipe.default())
        cfg = LoopConfig(name="t", real_where="source = 'prose'", generations=1, samples_per_generation=24, train_steps=2,
                         batch_size=4, seq_len=32, eval_docs=4, max_new_tokens=8, tiny={"n_layer": 1, "n_embd": 16})
        Loop(st, cfg, work / "loop").run()
        train(st, TrainSpec("lit", positive="source = 'prose'", negative="source = 'cc'", max_per_class=40))
        score(st, "lit")
        build_mix(st, MixRecipe.parse({"name": "m", "seed": 1, "groups": [
            {"name": "all", "where": "TRUE", "docs": 120}]}, "test"))


def _ids(url: str) -> list[str]:
    """A few samples per part of a trace, and a few of each source."""
    with Store(url, read_only=True) as st:
        picks = set()
        for table in lake_reads.SAMPLE_KEYED:
            picks |= {r[0] for r in st.execute(f"SELECT DISTINCT sample_id FROM {table} ORDER BY 1 LIMIT 3").fetchall()}
        picks |= {r[0] for r in st.execute("SELECT min(sample_id) FROM mix_members GROUP BY mix_id").fetchall()}
        picks |= {r[0] for r in st.execute("SELECT sample_id FROM samples WHERE sample_id IN "
                                           "(SELECT child_id FROM edges) ORDER BY 1 LIMIT 5").fetchall()}
        return sorted(picks)


def _traces(url: str, ids: list[str], *, point_reads: bool, at: int | None = None) -> list[dict]:
    os.environ["MIXLINE_LAKE_POINT_READS"] = "1" if point_reads else "0"
    try:
        with Store(url, read_only=True, at_snapshot=at) as st:
            if point_reads:
                assert lake_reads.point_reads(st) is not None
            return [trace(st, i).to_dict() for i in ids]
    finally:
        os.environ.pop("MIXLINE_LAKE_POINT_READS", None)


def _plan(url: str) -> dict[str, str]:
    with Store(url, read_only=True) as st:
        reads = lake_reads.point_reads(st)
        assert reads is not None
        return lake_reads.describe(reads.plan(_BUNDLE_TABLES))


def _snapshot(url: str) -> int:
    with Store(url, read_only=True) as st:
        return int(st.scalar("SELECT max(snapshot_id) FROM lake.snapshots()"))


def _sorted_by_sample(url: str, table: str) -> bool:
    """Whether every file of the table holds its rows in sample_id order, in row groups that do not overlap."""
    with Store(url, read_only=True) as st:
        files = [r[0] for r in st.execute(f"SELECT data_file FROM ducklake_list_files('lake', '{table}')").fetchall()]
        for f in files:
            groups = st.execute(f"""SELECT stats_min, stats_max FROM parquet_metadata('{f}')
                                    WHERE path_in_schema = 'sample_id' ORDER BY row_group_id""").fetchall()
            if any(a[1] > b[0] for a, b in zip(groups, groups[1:], strict=False)):
                return False
        return bool(files)


def test_point_reads_give_ducklakes_traces_before_and_after_optimize_and_at_an_old_snapshot(
        tmp_path: Path, realdata: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    _build(url, realdata, tmp_path / "work")
    ids = _ids(url)
    assert _plan(url) == {t: "files" for t in _BUNDLE_TABLES}
    fast = _traces(url, ids, point_reads=True)
    assert fast == _traces(url, ids, point_reads=False)
    # The samples reach every part of a trace, so every part was compared with rows in it.
    parts = {name for name, _ in _BUNDLE} - {"sample", "annotations", "edges"}
    keys = {"origins": "sources", "decisions": "decisions", "generated_by": "generated_by", "clusters": "clusters",
            "mixes": "mixes", "redactions": "redactions", "scores": "scores", "trained": "trained_classifiers",
            "canary": "canary"}
    assert parts - {"audits"} == set(keys)
    empty = [p for p, k in keys.items() if not any(t[k] for t in fast)]
    assert not empty, f"no traced sample has {empty}"
    assert any(t["ancestors"] for t in fast) and any(t["sample"].get("withheld") for t in fast)

    with Store(url, read_only=True) as st:
        many = st.scalar("""SELECT sample_id FROM decisions GROUP BY 1 HAVING count(DISTINCT step) > 2
                            ORDER BY count(*) DESC, 1 LIMIT 1""")
        why_before = why(st, many)
    before = _snapshot(url)
    with Store(url) as st:
        done = optimize(st)
    assert done["edges"] > 0
    for table in ("sample_rows", "decisions", "sample_origins", "mix_members"):
        assert _sorted_by_sample(url, table), table
    assert _plan(url) == {t: "files" for t in _BUNDLE_TABLES}
    assert _traces(url, ids, point_reads=True) == _traces(url, ids, point_reads=False) == fast
    with Store(url, read_only=True) as st:
        # A sample's decisions keep their order (by rowid) through the sort.
        assert why(st, many) == why_before
    # Time travel: the files of the snapshot before the sort, read directly, as DuckLake reads them.
    assert _traces(url, ids, point_reads=True, at=before) == _traces(url, ids, point_reads=False, at=before) == fast
    # A second optimize finds the tables sorted and rewrites nothing.
    with Store(url) as st:
        optimize(st)
        stats = json.loads(st.scalar("SELECT stats FROM runs WHERE step = 'optimize_v1' ORDER BY started_at DESC LIMIT 1"))
    assert stats["sorted"] == {}


def test_point_reads_fall_back_to_ducklake_for_deletes_and_inlined_rows_and_inside_a_transaction(
        tmp_path: Path, realdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "sqlite:///" + str(tmp_path / "cat.sqlite")
    run(url, "init", "--catalog", url)
    _build(url, realdata, tmp_path / "work")
    ids = _ids(url)
    with Store(url) as st:
        # Part of a file's rows deleted: DuckLake writes a delete file.
        gone = st.scalar("SELECT sample_id FROM decisions WHERE verdict = 'kept' ORDER BY 1 LIMIT 1")
        st.execute("DELETE FROM decisions WHERE sample_id = ?", [gone])
        # A row inlined in the catalog, as a writer with DuckLake's default inlining leaves it.
        st.execute("SET ducklake_default_data_inlining_row_limit = 10")
        st.execute("""INSERT INTO sample_annotations (sample_id, run_id, kind, annotated_at, lang)
                      VALUES (?, 'run-x', 'language', TIMESTAMP '2100-01-01', 'zz')""", [ids[0]])
    plan = _plan(url)
    assert plan["decisions"] == "delete files"
    assert plan["sample_annotations"] == "rows inlined in the catalog"
    assert plan["sample_rows"] == "files"
    fast = _traces(url, [*ids, gone], point_reads=True)
    assert fast == _traces(url, [*ids, gone], point_reads=False)
    assert fast[0]["sample"]["lang"] == "zz" and fast[-1]["decisions"] == []
    with Store(url) as st, st.transaction():
        assert lake_reads.point_reads(st) is None  # a transaction's own writes are not in the catalog yet
    # optimize's sorted rewrite leaves no delete file; the inlined row stays where it is.
    with Store(url) as st:
        optimize(st)
    plan = _plan(url)
    assert plan["decisions"] == "files" and plan["sample_annotations"] == "rows inlined in the catalog"
    assert _traces(url, [*ids, gone], point_reads=True) == fast

    # A catalog query that fails (a catalog laid out otherwise) reads every table through DuckLake.
    def refuse(self: lake_reads.PointReads, sql: str) -> list:
        if "WITH tabs" in sql:
            raise sqlite3.OperationalError("no such table: ducklake_table")
        return real(self, sql)

    real = lake_reads.PointReads.catalog
    monkeypatch.setattr(lake_reads.PointReads, "catalog", refuse)
    assert set(_plan(url).values()) == {"the catalog query failed: no such table: ducklake_table"}
    assert _traces(url, [*ids, gone], point_reads=True) == fast


def test_point_reads_on_a_postgres_catalog_give_ducklakes_traces(pg_url: str, tmp_path: Path, realdata: Path) -> None:
    _build(pg_url, realdata, tmp_path / "work")
    ids = _ids(pg_url)
    assert _plan(pg_url) == {t: "files" for t in _BUNDLE_TABLES}
    fast = _traces(pg_url, ids, point_reads=True)
    assert fast == _traces(pg_url, ids, point_reads=False)
    with Store(pg_url) as st:
        optimize(st)
    assert _traces(pg_url, ids, point_reads=True) == _traces(pg_url, ids, point_reads=False) == fast

