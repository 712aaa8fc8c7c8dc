"""Learned classifiers: training as lineage, the classifier step and its cache, scores in
predicates and mixes, and what `trace`, `impact`, `mix show` and the cards say about them."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from mixline.curation.classifier import HashedNgrams, Model, load, weight_hash
from mixline.curation.pipeline import curate, why
from mixline.curation.recipe import Recipe
from mixline.pipelines.classifiers import TrainSpec, train
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build, show
from mixline.store.lineage import impact, trace
from mixline.store.select import scope, validate_where

from mixline.errors import ConfigError, MixlineError, PredicateError

VOCAB = {
    "medical": ["patient", "dose", "symptoms", "clinical", "diagnosis", "therapy", "infection", "chronic", "treatment", "blood", "pressure", "insulin", "diabetes", "cardiac", "lesion", "biopsy", "tumor", "antibiotic", "fever", "nausea", "prescription"],
    "legal": ["court", "plaintiff", "defendant", "statute", "contract", "clause", "liability", "appeal", "judgment", "counsel", "breach", "jurisdiction", "tenant", "lease", "damages", "verdict", "testimony", "precedent"],
    "sports": ["team", "goal", "season", "match", "coach", "player", "league", "score", "win", "stadium", "fans", "striker", "tournament", "championship", "referee", "penalty", "pitch", "inning"],
}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "as", "it", "that", "this", "by", "at", "from"]
LIGHT = Recipe.parse({"name": "light", "steps": [{"type": "length", "min_chars": 20}]}, "test")


def _docs(topic: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(VOCAB[topic]) if rng.random() < 0.45 else rng.choice(FILLER) for _ in range(rng.randint(40, 90))]
        out.append(" ".join(words).capitalize() + ".")
    return out


@pytest.fixture
def corpus(store, tmp_path):
    """Web pages about sports (and 20 medical ones, from another site), medical and legal domain text; curated."""
    files = {"web": tmp_path / "web.jsonl", "health": tmp_path / "health.jsonl", "med": tmp_path / "med.jsonl",
             "law": tmp_path / "law.jsonl"}
    files["web"].write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs("sports", 150, 1)))
    files["health"].write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs("medical", 20, 2)))
    files["med"].write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs("medical", 150, 3)))
    files["law"].write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs("legal", 100, 4)))
    ingest(store, files["web"], IngestOptions(kind="web", source="crawl"))
    ingest(store, files["health"], IngestOptions(kind="web", source="health-site"))  # never in a training class
    ingest(store, files["med"], IngestOptions(kind="domain", source="clinic", domain="medical"))
    ingest(store, files["law"], IngestOptions(kind="domain", source="courts", domain="legal"))
    curate(store, LIGHT)
    return store


def _med(store, **kw):
    return train(store, TrainSpec("med", positive="domain = 'medical'", negative="source = 'crawl'", max_per_class=500, **kw))


def test_features_are_stable_and_weights_round_trip():
    texts = ["Patient dose of insulin", "The team won the match", ""]
    a, b = HashedNgrams(n_features=2**12).transform(texts), HashedNgrams(n_features=2**12).transform(texts)
    assert (a != b).nnz == 0 and a.shape == (3, 2**12)
    assert np.allclose(np.asarray(a.multiply(a).sum(axis=1)).ravel(), [1, 1, 0], atol=1e-6)
    # Unigrams only: one column per distinct word.
    assert HashedNgrams(n_features=2**16, ngrams=1).transform(["b a b"]).nnz == 2
    rng = np.random.default_rng(0)
    coef = np.zeros((1, 2**12), np.float32)
    coef[0, rng.choice(2**12, 50, replace=False)] = rng.normal(size=50)
    m = Model("ngram", ["negative", "positive"], coef, np.array([0.3]), {"n_features": 2**12, "ngrams": 2, "max_chars": 100})
    blob = m.to_bytes()
    back = Model.from_bytes(blob)
    assert np.array_equal(back.coef, m.coef) and back.labels == m.labels
    assert np.allclose(back.proba(a), m.proba(a)) and weight_hash(blob) == weight_hash(back.to_bytes())
    with pytest.raises(ConfigError, match="power of two"):
        HashedNgrams(n_features=1000)


def test_train_records_the_classifier_with_its_training_mix_and_metrics(corpus):
    out = _med(corpus)
    assert out["created"] and out["version"] == 1 and out["labels"] == ["negative", "positive"]
    m = out["metrics"]
    assert m["auc"] > 0.95 and m["precision"] > 0.9 and m["recall"] > 0.9
    assert sum(m["n_train"].values()) + sum(m["n_heldout"].values()) <= 150 + 150
    assert m["n_heldout"]["positive"] > 0 and m["n_heldout"]["negative"] > 0
    c = load(corpus, "med")
    assert c.classifier_id == out["classifier_id"] and c.mix_id == out["mix_id"] and c.weight_hash.startswith("sha256:")
    splits = dict(corpus.execute("SELECT split, count(*) FROM mix_members WHERE mix_id = ? GROUP BY 1", [c.mix_id]).fetchall())
    assert splits["train"] == sum(m["n_train"].values()) and splits["heldout"] == sum(m["n_heldout"].values())
    # A sample matching both predicates is a positive, never a negative: the classes do not overlap.
    both = train(corpus, TrainSpec("overlap", positive="domain = 'medical'", negative="TRUE", max_per_class=500))
    neg = corpus.scalar(f"""SELECT count(*) FROM mix_members m JOIN samples s USING (sample_id)
                            WHERE m.mix_id = ? AND {scope(corpus, "domain = 'medical'", 's')}""", [both["mix_id"]])
    assert neg == both["metrics"]["n_train"]["positive"] + both["metrics"]["n_heldout"]["positive"]
    # The same data and parameters give the same classifier; a new seed gives version 2.
    assert _med(corpus)["classifier_id"] == out["classifier_id"]
    again = _med(corpus, seed=1)
    assert again["version"] == 2 and again["classifier_id"] != out["classifier_id"]
    assert load(corpus, "med").version == 2 and load(corpus, "med@v1").classifier_id == out["classifier_id"]


def test_train_refuses_bad_requests_with_clear_errors(corpus):
    with pytest.raises(ConfigError, match="--positive PRED and --negative PRED"):
        train(corpus, TrainSpec("med", positive="domain = 'medical'"))
    with pytest.raises(ConfigError, match="lowercase letters"):
        train(corpus, TrainSpec("Med!", positive="TRUE", negative="TRUE"))
    with pytest.raises(ConfigError, match="class 'positive' has 0 training samples"):
        train(corpus, TrainSpec("none", positive="source = 'nowhere'", negative="kind = 'web'"))
    with pytest.raises(MixlineError, match="nope"):
        train(corpus, TrainSpec("bad", positive="nope = 1", negative="kind = 'web'"))


def test_step_drops_below_threshold_names_the_classifier_and_caches_scores(corpus):
    c = load(corpus, _med(corpus)["classifier_id"])
    rec = Recipe.parse({"name": "medweb", "steps": [
        {"type": "classifier", "name": "med", "threshold": 0.5, "kinds": ["web"]}]}, "test")
    res = curate(corpus, rec)
    step = next(s for s in res.steps if s["step"] == "classifier_med_v1")
    assert step["dropped"] >= 140 and step["kept"] >= 15  # sports pages go, medical pages stay
    kept_web = corpus.rows("""SELECT d.score, d.reason FROM decisions d WHERE d.run_id = ? AND d.verdict = 'kept'""", [res.run_id])
    assert all(r["score"] >= 0.5 and r["reason"].startswith("score:med@v1 ") for r in kept_web)
    dropped = corpus.rows("SELECT sample_id, score, reason FROM decisions WHERE run_id = ? AND verdict = 'dropped'", [res.run_id])
    assert all(r["score"] < 0.5 and r["reason"].startswith("low_score:med@v1 ") and "< 0.5000" in r["reason"] for r in dropped)
    w = why(corpus, dropped[0]["sample_id"])
    assert w["status"] == "dropped" and w["steps"][-1] == {"step": "classifier_med_v1", "applied": "applied", "kinds": ["web"]}
    # One cache row per sample scored; the run is recorded as a use of this version.
    assert corpus.scalar("SELECT count(*) FROM classifier_scores WHERE classifier_id = ?", [c.classifier_id]) == 170
    assert corpus.scalar("SELECT count(*) FROM classifier_uses WHERE classifier_id = ? AND run_id = ?",
                         [c.classifier_id, res.run_id]) == 1
    # Cached scores are read, not recomputed: a changed cache row changes the next decision.
    sid = dropped[0]["sample_id"]
    corpus.execute("UPDATE classifier_scores SET score = 0.99 WHERE sample_id = ?", [sid])
    again = curate(corpus, rec)
    assert corpus.scalar("SELECT count(*) FROM classifier_scores WHERE classifier_id = ?", [c.classifier_id]) == 170
    assert corpus.one("SELECT verdict, score FROM decisions WHERE run_id = ? AND sample_id = ?", [again.run_id, sid]) == ("kept", 0.99)
    # Scores are in the sample_scores view too, under the step's name.
    assert corpus.scalar("SELECT count(*) FROM sample_scores WHERE step = 'classifier_med'") == 170


def test_keep_top_keeps_the_highest_share_in_scope(corpus):
    _med(corpus)
    rec = Recipe.parse({"name": "top", "steps": [{"type": "length", "min_chars": 20},
                                                {"type": "classifier", "name": "med", "keep_top": 0.1, "kinds": ["web"]}]}, "t")
    res = curate(corpus, rec)
    rows = corpus.rows("SELECT verdict, score, reason FROM decisions WHERE run_id = ? AND step = 'classifier_med_v1'", [res.run_id])
    kept = [r["score"] for r in rows if r["verdict"] == "kept"]
    gone = [r["score"] for r in rows if r["verdict"] == "dropped"]
    assert len(rows) == 170 and len(kept) == 17 and min(kept) >= max(gone)
    assert all("not in top 0.1" in r["reason"] for r in rows if r["verdict"] == "dropped")
    with pytest.raises(ConfigError, match="threshold or keep_top, not both"):
        Recipe.parse({"name": "x", "steps": [{"type": "classifier", "name": "med", "keep_top": 0.1, "threshold": 0.5}]}, "t").build()
    with pytest.raises(ConfigError, match="filter after a dedup step"):
        Recipe.parse({"name": "x", "steps": [{"type": "classifier", "name": "med", "keep_top": 0.1},
                                             {"type": "length"}]}, "t").build()


def test_domain_labels_from_the_store_and_predicates_over_them(corpus):
    out = train(corpus, TrainSpec("domains", labels="domain", where="kind = 'domain'", other="source = 'crawl'", max_per_class=300))
    assert out["labels"] == ["legal", "medical", "other"] and out["metrics"]["macro_f1"] > 0.9
    assert set(out["metrics"]["per_class"]) == {"legal", "medical", "other"}
    res = curate(corpus, Recipe.parse({"name": "label", "steps": [{"type": "classifier", "name": "domains", "kinds": ["web"]}]}, "t"))
    reasons = [r[0] for r in corpus.execute("SELECT reason FROM decisions WHERE run_id = ?", [res.run_id]).fetchall()]
    assert len(reasons) == 170 and all(r.startswith("label:") for r in reasons)
    # Web pages labelled medical by the classifier: the 20 medical pages of the site it never saw.
    pred = scope(corpus, "kind = 'web' AND label('domains') = 'medical'")
    medical_web = corpus.rows(f"SELECT text FROM samples s WHERE {pred}")
    assert 15 <= len(medical_web) <= 25
    hits = sum(sum(w in VOCAB["medical"] for w in r["text"].lower().split()) > 5 for r in medical_web)
    assert hits >= 0.9 * len(medical_web)
    pred = validate_where(corpus, "kind = 'web' AND score('domains', 'medical') > 0.5")
    n = corpus.scalar(f"SELECT count(*) FROM samples WHERE {pred}")
    assert n == len(medical_web)
    with pytest.raises(PredicateError, match="has no label 'sports'"):
        validate_where(corpus, "score('domains', 'sports') > 0.5")
    with pytest.raises(PredicateError, match="no classifier 'nope'"):
        validate_where(corpus, "score('nope') > 0.5")
    with pytest.raises(PredicateError, match="classifier's name in quotes"):
        validate_where(corpus, "score(text) > 0.5")
    with pytest.raises(ConfigError, match="set `label`"):
        curate(corpus, Recipe.parse({"name": "x", "steps": [{"type": "classifier", "name": "domains", "threshold": 0.5}]}, "t"))


def test_mix_ranked_by_a_classifier_and_the_lineage_it_leaves(corpus):
    clf = _med(corpus)
    spec = {"name": "medweb", "seed": 3, "groups": [
        {"name": "web", "where": "kind = 'web'", "rank_by": "med", "top_share": 0.1},
        {"name": "legal", "where": "domain = 'legal' AND score('med') IS NOT NULL", "max_docs": 30}]}
    mix = build(corpus, MixRecipe.parse(spec))
    members = corpus.rows("""SELECT s.kind, s.domain, cs.score FROM mix_members m JOIN samples s USING (sample_id)
                             LEFT JOIN classifier_scores cs ON cs.sample_id = s.sample_id AND cs.classifier_id = ?
                             WHERE m.mix_id = ?""", [clf["classifier_id"], mix.mix_id])
    web = sorted(r["score"] for r in members if r["kind"] == "web")
    all_web = sorted((r[0] for r in corpus.execute(
        "SELECT score FROM classifier_scores WHERE classifier_id = ? AND sample_id IN (SELECT sample_id FROM samples WHERE kind = 'web')",
        [clf["classifier_id"]]).fetchall()), reverse=True)
    assert len(web) == 17 and web[0] >= all_web[16]  # the top 10% of 170 web pages by score
    assert sum(1 for r in members if r["domain"] == "legal") == 30  # scored before the groups were drawn
    # The mix says which classifier shaped it; its recipe pins the version, so its id does too.
    info = show(corpus, mix.mix_id)
    assert [c["classifier_id"] for c in info["classifiers"]] == [clf["classifier_id"]]
    assert info["recipe"]["classifiers"]["med"] == clf["classifier_id"]
    assert "max_docs" not in MixRecipe.parse({"name": "x", "groups": [{"name": "a"}]}).resolved()["groups"][0]
    _med(corpus, seed=5)  # version 2
    assert build(corpus, MixRecipe.parse(spec)).mix_id != mix.mix_id
    # A training sample's impact reaches the classifier, the mixes its scores shaped, and the runs it decided in.
    run = curate(corpus, Recipe.parse({"name": "t", "steps": [{"type": "classifier", "name": "med", "version": 1,
                                                                "threshold": 0.5, "mode": "tag"}]}, "t"))
    root = corpus.scalar("SELECT sample_id FROM mix_members WHERE mix_id = ? AND split = 'train' ORDER BY sample_id LIMIT 1",
                         [clf["mix_id"]])
    imp = impact(corpus, [root]).as_dict()
    assert clf["classifier_id"] in {c["classifier_id"] for c in imp["classifiers"]}
    assert any(m["mix_id"] == mix.mix_id and m.get("via_classifier") == clf["classifier_id"] for m in imp["mixes"])
    assert any(r["run_id"] == run.run_id and r["decisions"] > 0 for r in imp["runs"])
    t = trace(corpus, root).as_dict()
    assert any(c["classifier_id"] == clf["classifier_id"] and c["split"] == "train" for c in t["trained_classifiers"])
    assert any(s["name"] == "med" and s["label"] == "positive" for s in t["scores"])


def test_mix_rank_by_checks_its_classifier(corpus):
    _med(corpus)
    with pytest.raises(ConfigError, match="top_share but no rank_by"):
        MixRecipe.parse({"name": "x", "groups": [{"name": "a", "top_share": 0.5}]})
    with pytest.raises(ConfigError, match="has no label 'x'"):
        build(corpus, MixRecipe.parse({"name": "x", "groups": [{"name": "a", "rank_by": "med:x"}]}))
    with pytest.raises(MixlineError, match="no classifier 'other'"):
        build(corpus, MixRecipe.parse({"name": "x", "groups": [{"name": "a", "rank_by": "other"}]}))


def test_cli_train_list_show_score(mixline, tmp_path):
    web, med = tmp_path / "web.jsonl", tmp_path / "med.jsonl"
    web.write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs("sports", 80, 7)))
    med.write_text("".join(json.dumps({"text": t}) + "\n" for t in _docs("medical", 80, 8)))
    mixline("ingest", str(web), "--kind", "web", "--source", "crawl")
    mixline("ingest", str(med), "--kind", "domain", "--source", "clinic", "--domain", "medical")
    # Nothing is curated yet: only --uncurated can learn from these samples.
    r = mixline("classifier", "train", "med", "--positive", "domain = 'medical'", "--negative", "kind = 'web'", ok=False)
    assert r.exit_code != 0 and "--uncurated" in r.output
    out = mixline.json("classifier", "train", "med", "--positive", "domain = 'medical'", "--negative", "kind = 'web'",
                       "--uncurated", "--max-per-class", "60")
    assert out["version"] == 1 and out["metrics"]["auc"] > 0.95
    text = mixline("classifier", "show", "med").stdout
    assert "med@v1" in text and "precision" in text and "training mix" in text
    scored = mixline.json("classifier", "score", "med")
    assert scored["scored"] == 160 and scored["score_quantiles"]["n"] == 160
    assert mixline.json("classifier", "score", "med")["scored"] == 0  # cached
    listed = mixline.json("classifier", "list")
    assert listed[0]["name"] == "med" and listed[0]["scored"] == 160 and listed[0]["uses"] == 2
    rows = mixline.json("sql", "SELECT count(*) AS n FROM samples WHERE sample_id IN "
                               "(SELECT sample_id FROM classifier_scores WHERE score > 0.5)")
    assert rows[0]["n"] == 80
    assert mixline("classifier", "show", "nope", ok=False).exit_code != 0


def test_embedding_head_uses_the_cached_embeddings(corpus):
    out = train(corpus, TrainSpec("med-emb", positive="domain = 'medical'", negative="source = 'crawl'", method="embedding",
                                  max_per_class=60))
    assert out["metrics"]["auc"] > 0.9
    n_emb = corpus.scalar("SELECT count(*) FROM embeddings")
    assert n_emb == corpus.scalar("SELECT count(*) FROM mix_members WHERE mix_id = ?", [out["mix_id"]])
    # Scoring its own training samples embeds nothing new.
    curate(corpus, Recipe.parse({"name": "e", "steps": [{"type": "classifier", "name": "med-emb", "mode": "tag",
                                                          "where": f"sample_id IN (SELECT sample_id FROM mix_members "
                                                                   f"WHERE mix_id = '{out['mix_id']}')"}]}, "t"))
    assert corpus.scalar("SELECT count(*) FROM embeddings") == n_emb
