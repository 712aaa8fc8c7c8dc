"""Decontamination by n-grams and by URL, and semantic dedup with the embedding cache."""

import pyarrow as pa
import pytest
from mixline.curation.decontam.ngram import Decontaminate
from mixline.curation.decontam.urls import BannedUrls
from mixline.curation.pipeline import curate
from mixline.curation.recipe import Recipe

from mixline.errors import ConfigError
from tests.test_curation_pipeline import add

ITEM = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
        "in May. How many clips did Natalia sell altogether in April and May?")


def test_ngram_match_survives_case_whitespace_and_embedding():
    d = Decontaminate()
    d.load_items([("gsm8k:7", ITEM)])
    docs = [ITEM, ITEM.upper().replace(" ", "\n  "), "Intro words here. " + ITEM + " Outro words there.",
            "Natalia sold clips to friends.", ITEM.replace(",", " ,").replace("?", " ?")]
    assert d.decide(pa.table({"text": docs})).reasons == ["contaminated:gsm8k:7"] * 3 + [None, "contaminated:gsm8k:7"]


def test_short_eval_items_match_whole_and_tiny_ones_are_ignored():
    d = Decontaminate(min_item_words=8)
    d.load_items([("mmlu:1", "Which planet has the most moons in the solar system"), ("x:2", "yes or no")])
    v = d.decide(pa.table({"text": ["Quiz: which planet has the most moons in the solar system? Saturn.", "yes or no"]}))
    assert v.reasons == ["contaminated:mmlu:1", None]


def test_decontaminate_step_reads_eval_samples_from_store(store):
    (ev,) = add(store, [(ITEM, "eval", 0, "gsm8k")], run="r0")
    (doc,) = add(store, [("Homework help. " + ITEM, "web", 0, "crawl")], run="r1")
    res = curate(store, Recipe.parse({"steps": [{"type": "decontaminate"}]}, "t"))
    assert res.selected == 1 and res.dropped == 1  # eval samples are never curated themselves
    assert store.scalar("SELECT reason FROM decisions WHERE sample_id = ?", [doc]) == f"contaminated:gsm8k:{ev}"


def test_banned_urls(tmp_path):
    f = tmp_path / "banned.txt"
    f.write_text("https://www.example.com/quiz\nbad.org\n")
    b = BannedUrls(file=str(f))
    urls = ["http://example.com/quiz/page1?x=1", "https://bad.org/anything", "https://example.com/other", None]
    assert b.decide(pa.table({"url": urls})).reasons == ["banned_url:example.com/quiz", "banned_url:bad.org", None, None]
    with pytest.raises(ConfigError, match="not found"):
        BannedUrls(file=str(tmp_path / "missing.txt"))


@pytest.mark.slow
def test_semantic_dedup_caches_embeddings(store):
    texts = ["The cat sat on the mat and looked out of the window.",
             "The cat sat on the mat, looking out of the window.",
             "Quarterly revenue rose by twelve percent on strong cloud sales."]
    a, b, c = add(store, [(t, "web", 0, "s") for t in texts])
    r = Recipe.parse({"steps": [{"type": "semantic_dedup", "threshold": 0.9}]}, "t")
    res = curate(store, r)
    assert res.dropped == 1
    assert store.scalar("SELECT verdict FROM decisions WHERE sample_id = ?", [c]) == "kept"
    assert store.scalar("SELECT count(*) FROM embeddings") == 3
    step = r.build()[0]
    before = step.embedder.embedded
    curate(store, r)
    assert step.embedder.embedded == before  # second run: everything from the cache
    assert store.scalar("SELECT count(*) FROM embeddings") == 3
