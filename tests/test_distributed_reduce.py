"""The dedup reduce in tasks (curation/distributed_reduce.py) against the in-process one.

Connected components by rounds of large-star and small-star must equal union-find on any
graph: random sparse graphs, long chains (the rounds' worst case), stars and cliques, with
several bucket counts. Tasks run in a loop here; tests/test_ray.py runs them on Ray.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mixline.curation.dedup.unionfind import components
from mixline.curation.distributed_reduce import components_in_tasks


def graphs() -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    out = []
    for n, m in ((50, 30), (400, 380), (1000, 200), (300, 900)):
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        out.append((f"random-{n}-{m}", n, a, b))
    chain = rng.permutation(500)  # one path through 500 vertices in random order
    out.append(("chain", 500, chain[:-1], chain[1:]))
    out.append(("sorted-chain", 300, np.arange(299)[::-1], np.arange(1, 300)[::-1]))
    out.append(("star", 100, np.full(99, 57), np.delete(np.arange(100), 57)))
    iu, ju = np.triu_indices(30, 1)
    out.append(("clique", 40, iu + 10, ju + 10))
    out.append(("none", 20, np.empty(0, np.int64), np.empty(0, np.int64)))
    out.append(("self-loops", 10, np.array([1, 2, 3]), np.array([1, 2, 4])))
    return out


@pytest.mark.parametrize("buckets", [1, 3, 8])
@pytest.mark.parametrize("name,n,a,b", graphs(), ids=[g[0] for g in graphs()])
def test_components_in_tasks_equal_union_find(name: str, n: int, a: np.ndarray, b: np.ndarray, buckets: int,
                                               tmp_path: Path) -> None:
    want = components(n, a.astype(np.int64), b.astype(np.int64))
    got = components_in_tasks(n, a.astype(np.int64), b.astype(np.int64), tmp_path, buckets)
    assert np.array_equal(got, want), name
    if len(a):
        assert len(np.unique(got)) < n


def test_only_this_runs_shards_with_the_tables_columns_are_registered_in_place(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mixline.curation.distributed import _registrable

    def shard(name: str, run_id: str, score_type: pa.DataType | None = None) -> str:
        score_type = score_type or pa.float64()
        t = pa.table({"run_id": [run_id] * 2, "sample_id": ["a", "b"], "step": ["s", "s"], "verdict": ["kept"] * 2,
                      "reason": pa.array([None, "x"], pa.string()), "score": pa.array([None, 1], score_type)})
        pq.write_table(t, tmp_path / name)
        return str(tmp_path / name)

    assert _registrable(shard("ok.parquet", "run-1"), "decisions", "run-1")
    # A partition an earlier attempt wrote names that attempt's run: it is copied (with the run id replaced).
    assert not _registrable(shard("old.parquet", "run-0"), "decisions", "run-1")
    assert not _registrable(shard("types.parquet", "run-1", pa.int64()), "decisions", "run-1")
    assert not _registrable(shard("other.parquet", "run-1"), "clusters", "run-1")


def test_the_driver_memory_limit_holds_for_the_run_and_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    from mixline.curation.distributed import RayExecutor
    from mixline.store import Store

    monkeypatch.delenv("MIXLINE_MEMORY_LIMIT", raising=False)
    monkeypatch.setenv("MIXLINE_DRIVER_MEMORY_LIMIT", "300MB")
    with Store(":memory:") as st:
        before = st.scalar("SELECT current_setting('memory_limit')")
        with RayExecutor().driver_memory(st):
            during = st.scalar("SELECT current_setting('memory_limit')")
        assert during != before and during.startswith(("286", "300"))  # DuckDB shows MiB
        assert st.scalar("SELECT current_setting('memory_limit')") == before
    # A limit the store was opened with governs the run.
    with Store(":memory:", memory_limit="200MB") as st, RayExecutor().driver_memory(st):
        assert st.scalar("SELECT current_setting('memory_limit')").startswith(("190", "200"))
