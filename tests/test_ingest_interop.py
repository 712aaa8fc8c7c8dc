"""Lineage from outside: a datatrove output folder and a distilabel generation file, written here in those formats."""

from __future__ import annotations

import gzip
import json

from mixline.curation.pipeline import why
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build
from mixline.store.lineage import trace

from tests.test_curation_filters import GOOD


def _jsonl_gz(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def test_datatrove_output_keeps_metadata_and_drop_reasons(store, tmp_path) -> None:
    # datatrove's JsonlWriter: {"text", "id", "metadata"}; an exclusion writer adds metadata.filter_reason.
    out = tmp_path / "datatrove"
    _jsonl_gz(out / "output" / "00000.jsonl.gz", [
        {"text": f"{GOOD} Kept page {i}.", "id": f"<urn:uuid:kept-{i}>",
         "metadata": {"url": f"https://example.org/{i}", "dump": "CC-MAIN-2024-10", "language_score": 0.93}} for i in range(3)])
    _jsonl_gz(out / "removed" / "2_gopher_rep" / "00000.jsonl.gz", [
        {"text": "buy now " * 40, "id": "<urn:uuid:spam>",
         "metadata": {"url": "https://spam.example/", "filter_reason": "dup_line_frac"}},
        {"text": "too short", "id": "<urn:uuid:short>", "metadata": {"url": "https://x.example/", "filter_reason": "gopher_short_doc"}}])
    r = ingest(store, out, IngestOptions(kind="web", source="cc-datatrove", origin="datatrove"))
    assert (r.ingested, r.imported) == (5, 2)
    spam = store.scalar("SELECT sample_id FROM sample_origins WHERE original_id = '<urn:uuid:spam>'")
    meta = json.loads(store.scalar("SELECT meta FROM sample_origins WHERE sample_id = ?", [spam]))
    assert meta["metadata"]["url"] == "https://spam.example/"
    decisions = why(store, spam)["decisions"]
    assert [(d["step"], d["verdict"], d["reason"]) for d in decisions] == [("datatrove_import_v1", "dropped", "datatrove:dup_line_frac")]
    assert store.scalar("SELECT status FROM sample_status WHERE sample_id = ?", [spam]) == "dropped"
    # A mix of what datatrove kept (kept or not yet curated by mixline) leaves its drops out.
    mix = build(store, MixRecipe.parse({"name": "dt", "status": ["kept", "uncurated"], "groups": [{"name": "all", "where": "TRUE"}]}))
    members = {x for (x,) in store.execute("SELECT sample_id FROM mix_members WHERE mix_id = ?", [mix.mix_id]).fetchall()}
    assert len(members) == 3 and spam not in members


def test_distilabel_generations_become_models_and_generations(store, tmp_path, mixline) -> None:
    path = tmp_path / "distilabel.jsonl"
    rows = [{"instruction": f"Write a short note about rivers, number {i}.",
             "generation": f"Rivers carry water and silt from the hills to the sea; this is note {i} about them.",
             "model_name": "meta-llama/Meta-Llama-3-8B-Instruct" if i % 2 else "mistralai/Mistral-7B-Instruct-v0.2",
             "distilabel_metadata": {"raw_output_text_generation_0": "..."}} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = ingest(store, path, IngestOptions(kind="synthetic", source="distilabel", text_fields=("generation",), origin="distilabel"))
    assert (r.ingested, r.imported) == (6, 6)
    models = store.rows("SELECT model_id, name, method FROM models ORDER BY name")
    assert [m["name"] for m in models] == ["meta-llama/Meta-Llama-3-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.2"]
    assert {m["method"] for m in models} == {"external"}
    sid = store.scalar("SELECT sample_id FROM samples WHERE text LIKE '%note 3 %'")
    t = trace(store, sid)
    assert t.generated_by and t.generated_by[0]["model_id"] == models[0]["model_id"]
    assert store.scalar("SELECT synth_depth FROM samples WHERE sample_id = ?", [sid]) == 1
    # The CLI names the origin, and a distilabel file's text field defaults to `generation`.
    again = tmp_path / "more.jsonl"
    again.write_text(json.dumps({**rows[0], "generation": "A different output about lakes and ponds."}) + "\n")
    out = mixline.json("ingest", str(again), "--kind", "synthetic", "--source", "distilabel-2", "--from", "distilabel")
    assert out["imported"] == 1
