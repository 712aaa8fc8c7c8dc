"""`curate --dry-run`: every decision computed, nothing written, keep rates and scrubbed examples."""

from __future__ import annotations

import json

from mixline.curation.pipeline import curate
from mixline.store import Store

from tests.test_curation_pipeline import GOOD, add

TABLES = ("runs", "decisions", "samples", "sample_annotations", "edges", "redactions", "clusters", "pii_fingerprints", "store_secrets")


def counts(store: Store) -> dict[str, int]:
    return {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}


def corpus(store: Store) -> None:
    add(store, [
        (GOOD, "web", 0, "crawl"),
        (GOOD + " ", "web", 0, "crawl"),                                   # exact duplicate
        ("buy buy buy buy buy buy " * 20, "web", 0, "crawl"),                # repetition
        ("Mean age 54.2 years (95% CI 51.3-57.1; p < 0.001) in 2000-2012 among 1,204 patients.", "domain", 0, "pubmed"),
        ("Write to jane.doe@corp.example.de or call +49 30 901820 about the trial results today.", "domain", 0, "pubmed"),
        ("ok", "domain", 0, "pubmed"),                                       # too short
    ])


def test_dry_run_writes_nothing_and_matches_the_real_run(store: Store) -> None:
    corpus(store)
    before = counts(store)
    dry = curate(store, dry_run=True, examples=2)
    assert counts(store) == before, "a dry run left rows behind"
    assert store.scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_sel'") == 0
    real = curate(store)
    assert (dry.selected, dry.kept, dry.dropped, dry.rewritten) == (real.selected, real.kept, real.dropped, real.rewritten)
    assert [(s["step"], s["kept"], s["dropped"]) for s in dry.steps] == [(s["step"], s["kept"], s["dropped"]) for s in real.steps]
    assert dry.dry_run and not real.dry_run and "by_kind" not in real.as_dict()
    by_kind = {g["kind"]: g for g in dry.by_kind}
    assert by_kind["web"]["selected"] == 3 and by_kind["web"]["kept"] == 1
    assert by_kind["domain"]["selected"] == 3 and by_kind["domain"]["kept"] == 2
    assert by_kind["domain"]["rewritten"] == 1 and by_kind["domain"]["kept_share"] == round(2 / 3, 4)
    assert {g["source"] for g in dry.by_source} == {"crawl", "pubmed"}
    reasons = {(e["step"].rsplit("_v", 1)[0], e["reason"]) for e in dry.examples}
    assert ("length", "too_few_chars") in reasons and ("exact_dedup", "exact_duplicate_of") in reasons
    assert any(step.startswith("gopher_") for step, _ in reasons)


def test_dry_run_examples_are_scrubbed_and_capped(store: Store) -> None:
    leak = "Contact jane.doe@corp.example.de or +49 30 901820."
    add(store, [(f"{leak} {i}", "web", 0, "crawl") for i in range(6)])   # all too few words for Gopher
    dry = curate(store, dry_run=True, examples=3)
    shown = [e for e in dry.examples if e["reason"] == "gopher_short_doc"] or dry.examples
    assert 0 < len(shown) <= 3
    for e in dry.examples:
        assert "jane.doe" not in e["text"] and "901820" not in e["text"], e["text"]
        assert "<EMAIL>" in e["text"]


def test_cli_dry_run_prints_and_json(mixline, tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in (GOOD, GOOD, "tiny")))
    mixline("ingest", str(src), "--kind", "web", "--source", "crawl")
    out = mixline("curate", "--dry-run").stdout
    assert out.startswith("dry run (nothing was written)") and "by kind:" in out and "for example:" in out
    data = mixline.json("curate", "--dry-run", "--examples", "1")
    assert data["dry_run"] is True and data["by_source"][0]["source"] == "crawl"
    assert len({(e["step"], e["reason"]) for e in data["examples"]}) == len(data["examples"])
    runs = mixline.json("runs")
    assert all(r["kind"] != "curate" for r in (runs if isinstance(runs, list) else runs["runs"]))
