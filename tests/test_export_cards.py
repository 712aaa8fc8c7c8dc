"""Exports the ecosystem reads: a Hugging Face dataset card, and Croissant 1.1 with RAI fields."""

from __future__ import annotations

import json

import pytest
from mixline.curation.pipeline import curate
from mixline.pipelines.export import export
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build

from tests.test_curation_filters import GOOD


@pytest.fixture
def exported(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    web = tmp_path / "web.jsonl"
    web.write_text("".join(json.dumps({"text": f"{GOOD} Page {i}."}) + "\n" for i in range(6)))
    ingest(store, web, IngestOptions(kind="web", source="crawl", license="ODC-By"))
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"My email is ana.souza{i}@mailhost.io, can you help me plan a vegetable garden?"},
        {"role": "assistant", "content": f"Of course. Start with tomatoes and beans in a sunny spot, number {i}."}]}) + "\n"
        for i in range(4)))
    ingest(store, chats, IngestOptions(kind="conversation", source="chats", license="CC-BY-4.0"))
    synth = tmp_path / "synth.jsonl"
    synth.write_text(json.dumps({"text": "A model wrote this paragraph about rivers: they carry silt from the hills to the "
                                         "sea, shape their valleys over thousands of years, and feed the farms and towns "
                                         "that grow along their banks, which is why so many old cities stand beside one."}) + "\n")
    ingest(store, synth, IngestOptions(kind="synthetic", source="gen", license="CC-BY-4.0"))
    sid = store.scalar("SELECT sample_id FROM samples WHERE source = 'gen'")
    store.append_rows("generations", [{"sample_id": sid, "model_id": "model-abc123", "run_id": "run-x", "prompt_sample_id": None,
                                       "template_hash": None, "decoding": "{}", "seed": 0}])
    curate(store)
    mix = build(store, MixRecipe.parse({"name": "cards", "groups": [{"name": "all", "where": "TRUE"}],
                                        "holdout": {"fraction": 0.2}})).mix_id
    out = {}
    for fmt in ("parquet", "jsonl"):
        export(store, mix, tmp_path / f"exp-{fmt}", fmt)
        out[fmt] = tmp_path / f"exp-{fmt}"
    return mix, out


def test_dataset_card_is_a_huggingface_card_with_pii_synthetic_and_recipe(exported) -> None:
    from huggingface_hub import DatasetCard

    mix, folders = exported
    card = DatasetCard.load(folders["parquet"] / "README.md")
    assert sorted(card.data.license) == ["cc-by-4.0", "odc-by"] and "synthetic" in card.data.tags
    assert {c["split"] for c in card.data.configs[0]["data_files"]} == {"train", "heldout"}
    text = card.text
    for section in ("## Provenance by source", "## Licences", "## Personal data", "## Synthetic data", "## Toxicity",
                    "## Curation steps applied to these sources", "## Mix recipe"):
        assert section in text, section
    assert "| EMAIL | placeholder |" in text and "model-abc123" in text and "ana.souza" not in text
    assert mix in text


def test_croissant_loads_with_mlcroissant_and_carries_rai_fields(exported) -> None:
    import mlcroissant as mlc

    for fmt, folder in exported[1].items():
        meta = json.loads((folder / "croissant.json").read_text())
        assert meta["conformsTo"] == "http://mlcommons.org/croissant/1.1"
        for field in ("rai:dataCollection", "rai:dataPreprocessingProtocol", "rai:personalSensitiveInformation",
                      "rai:dataBiases", "mixline:syntheticShare", "mixline:generatorModels", "mixline:syntheticDepth"):
            assert meta[field] not in (None, "", []), field
        assert "EMAIL" in meta["rai:personalSensitiveInformation"]
        assert meta["mixline:generatorModels"] == [{"model_id": "model-abc123", "samples": 1}]
        ds = mlc.Dataset(jsonld=str(folder / "croissant.json"))
        manifest = json.loads((folder / "manifest.json").read_text())
        for split in manifest["files"]:
            records = list(ds.records(split))
            want = sum(m["repeats"] for m in manifest["members"] if m["split"] == split)
            assert len(records) == want, (fmt, split)
            text = records[0][f"{split}/text"]
            assert "ana.souza" not in (text.decode() if isinstance(text, bytes) else text)


def test_exports_load_with_datasets(exported) -> None:
    import datasets

    for folder in exported[1].values():
        ds = datasets.load_dataset(str(folder))
        manifest = json.loads((folder / "manifest.json").read_text())
        assert set(ds) == set(manifest["files"])
        assert len(ds["train"]) == sum(m["repeats"] for m in manifest["members"] if m["split"] == "train")
