"""A mix over real web, conversation, medical and legal text: quotas, ids, diff, export round trip."""

import datasets
from mixline.curation.pipeline import curate
from mixline.curation.recipe import Recipe
from mixline.pipelines.export import export, verify
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build, diff

LIGHT = Recipe.parse({"name": "light", "steps": [{"type": "length", "min_chars": 50}, {"type": "exact_dedup"}]}, "test")


def test_real_sources_under_quotas(store, realdata, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    ingest(store, realdata / "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", IngestOptions(kind="web", source="cc", license="ODC-By"))
    ingest(store, realdata / "conversations/oasst_en_100_message.jsonl", IngestOptions(kind="conversation", source="oasst", license="Apache-2.0"))
    ingest(store, realdata / "domain_medical/medquad_qa.jsonl.gz",
           IngestOptions(kind="domain", source="medquad", domain="medical", license="CC-BY-4.0", text_fields=("question", "answer")))
    curate(store, LIGHT)
    spec = {"name": "general", "seed": 7, "total_tokens": 400_000, "groups": [
        {"name": "web", "where": "kind = 'web'", "weight": 0.25},
        {"name": "chat", "where": "kind = 'conversation'", "weight": 0.25},
        {"name": "medical", "where": "domain = 'medical'", "weight": 0.5}]}
    a = build(store, MixRecipe.parse(spec))
    by = {r["key"]: r["tokens"] for r in a.summary["by_source"]}
    assert set(by) == {"cc", "oasst", "medquad"}
    for src, share in (("cc", 0.25), ("oasst", 0.25), ("medquad", 0.5)):
        assert abs(by[src] - share * 400_000) < 2_000  # quotas met to within one document
    assert build(store, MixRecipe.parse(spec)).mix_id == a.mix_id
    ingest(store, realdata / "domain_legal/legalbench_train_permissive.jsonl", IngestOptions(kind="domain", source="legalbench", domain="legal"))
    curate(store, LIGHT, new_only=True)
    spec["groups"].append({"name": "legal", "where": "domain = 'legal'", "tokens": 50_000})
    b = build(store, MixRecipe.parse(spec))
    d = diff(store, a.mix_id, b.mix_id)
    assert b.mix_id != a.mix_id and {r["source"] for r in d["by_source"] if r["added"]} >= {"legalbench"}
    export(store, b.mix_id, tmp_path / "exp")
    assert verify(tmp_path / "exp")["ok"]
    ds = datasets.load_dataset(str(tmp_path / "exp"), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == sum(r["docs_with_repeats"] for r in b.summary["by_source"])
    assert set(ds["source"]) == {"cc", "oasst", "medquad", "legalbench"}
