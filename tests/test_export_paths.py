"""Export paths are arguments, never SQL text: quotes in a folder name change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from mixline.pipelines.export import export, verify
from mixline.pipelines.mix import build
from mixline.store import Store

from tests.test_mix import corpus, recipe


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_quotes_in_out_cannot_inject(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    corpus(store)
    store.execute("INSERT INTO store_secrets VALUES ('pii_key', 'TOPSECRETKEY')")
    mix_id = build(store, recipe()).mix_id
    out = tmp_path / "it's') TO 'leak.parquet' (FORMAT parquet); COPY store_secrets TO ('x"
    export(store, mix_id, out, fmt)
    assert verify(out)["ok"]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(out in p.parents for p in written), written
    assert not any(b"TOPSECRETKEY" in p.read_bytes() for p in written)
