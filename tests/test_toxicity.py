"""The toxicity step: scores per sample, drop or tag per kind, scores reachable by predicates."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from mixline.curation.filters.toxicity import Toxicity, segments, wordlist_score
from mixline.curation.pipeline import curate
from mixline.curation.recipe import Recipe
from mixline.pipelines.mix import MixRecipe, build
from mixline.store import Store

from mixline.errors import ConfigError
from tests.test_curation_pipeline import GOOD, add

ABUSE = "You are a worthless piece of shit and a stupid bitch, fuck you."
BENIGN = "The committee will meet on Tuesday to review the budget for the new library."


def batch(texts: list[str], kinds: list[str] | None = None, messages: list[str | None] | None = None) -> pa.Table:
    n = len(texts)
    return pa.table({"sample_id": [str(i) for i in range(n)], "text": texts,
                     "kind": kinds or ["web"] * n, "messages": messages or [None] * n})


@pytest.mark.parametrize("classifier", ["profanity_check", "wordlist"])
def test_abuse_scores_over_benign_and_drop_mode_drops(classifier: str) -> None:
    step = Toxicity(classifier=classifier)
    v = step.decide(batch([ABUSE, BENIGN]))
    assert v.scores is not None and v.scores[0] >= 0.9 > v.scores[1]
    assert v.keep.tolist() == [False, True] and v.reasons == ["toxic", None]
    assert step.config()["classifier"] == classifier


def test_tag_mode_and_thresholds_per_kind() -> None:
    step = Toxicity(mode="drop", modes={"conversation": "tag"}, thresholds={"domain": 1.0})
    v = step.decide(batch([ABUSE, ABUSE, ABUSE], kinds=["web", "conversation", "domain"]))
    assert v.keep.tolist() == [False, True, True]
    assert v.reasons == ["toxic", "toxic", None], "tagged, but still named"


def test_conversations_score_the_chosen_turns() -> None:
    red_team = json.dumps([{"role": "user", "content": ABUSE}, {"role": "assistant", "content": BENIGN}])
    abusive_reply = json.dumps([{"role": "user", "content": BENIGN}, {"role": "assistant", "content": ABUSE}])
    texts = [f"user: {ABUSE}\nassistant: {BENIGN}", f"user: {BENIGN}\nassistant: {ABUSE}"]
    kinds = ["conversation"] * 2
    assert Toxicity().decide(batch(texts, kinds, [red_team, abusive_reply])).keep.tolist() == [True, False]
    assert Toxicity(turns="all").decide(batch(texts, kinds, [red_team, abusive_reply])).keep.tolist() == [False, False]


def test_a_long_page_is_scored_by_its_worst_paragraph() -> None:
    page = "\n\n".join([BENIGN] * 30 + [ABUSE])
    assert Toxicity().score([page])[0] >= 0.9
    assert all(len(s) <= 200 for s in segments("word " * 500, 200))
    assert wordlist_score("shitake mushrooms") == 0.0 and wordlist_score("bullshit") == pytest.approx(0.9)


@pytest.mark.parametrize("params,match", [
    ({"mode": "flag"}, "mode for"), ({"modes": {"web": "delete"}}, "mode for web"),
    ({"threshold": 2}, "threshold for"), ({"classifier": "perspective"}, "classifier"), ({"turns": "bot"}, "turns"),
])
def test_bad_parameters_are_config_errors(params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Toxicity(**params)


def test_scores_reach_predicates_and_mixes(store: Store) -> None:
    ids = add(store, [(f"{GOOD} {ABUSE}", "web", 0, "crawl"), (GOOD, "web", 0, "crawl"),
                      (f"{GOOD} {ABUSE} Again.", "conversation", 0, "chat")])
    res = curate(store, Recipe.parse({"name": "t", "steps": [
        {"type": "toxicity", "mode": "tag", "classifier": "wordlist"}]}, "test"))
    assert res.dropped == 0
    scores = {r["sample_id"]: r for r in store.rows("SELECT sample_id, step, score, reason FROM sample_scores")}
    assert set(scores) == set(ids) and all(r["step"] == "toxicity" for r in scores.values())
    assert scores[ids[0]]["reason"] == "toxic" and scores[ids[1]]["score"] == 0.0
    clean = "sample_id IN (SELECT sample_id FROM sample_scores WHERE step = 'toxicity' AND score < 0.5)"
    mix = build(store, MixRecipe.parse({"name": "clean", "groups": [{"name": "all", "where": clean}]}))
    members = {r[0] for r in store.execute("SELECT sample_id FROM mix_members WHERE mix_id = ?", [mix.mix_id]).fetchall()}
    assert members == {ids[1]}


def test_default_recipe_scores_the_scrubbed_child(store: Store) -> None:
    [raw] = add(store, [(f"{GOOD} Mail jane.doe@corp.example.de now.", "web", 0, "crawl")])
    curate(store)
    child = store.scalar("SELECT child_id FROM edges WHERE parent_id = ?", [raw])
    assert store.scalar("SELECT count(*) FROM sample_scores WHERE sample_id = ? AND step = 'toxicity'", [child]) == 1


def test_hh_rlhf_transcripts_ingest_as_conversations(mixline, realdata) -> None:
    mixline("ingest", str(realdata / "conversations" / "hh-rlhf_harmless-base_test.jsonl.gz"), "--kind", "conversation",
            "--source", "hh-rlhf", "--text-field", "chosen")
    st = Store(str(mixline.store_path), read_only=True)
    try:
        n, with_msgs = st.one("SELECT count(*), count(messages) FROM samples")
        first = json.loads(st.scalar("SELECT messages FROM samples WHERE messages IS NOT NULL LIMIT 1"))
    finally:
        st.close()
    assert n == with_msgs and n > 2000
    assert {m["role"] for m in first} == {"user", "assistant"} and all(m["content"] for m in first[:-1])


@pytest.mark.realdata
def test_flag_rates_and_hand_checked_precision(realdata) -> None:
    from benchmarks.bench_toxicity import eval_sets, hand_precision

    sets = eval_sets(realdata, medquad=3000)
    step = Toxicity(classifier="profanity_check")
    rates, scores = {}, {}
    for name, items in sets.items():
        s = step.score([t for _, t in items])
        rates[name] = float(np.mean(s >= 0.9))
        if name.startswith("hh-rlhf"):
            scores.update(zip([k for k, _ in items], s.tolist(), strict=True))
    assert rates["hh-rlhf rejected"] > 2 * rates["hh-rlhf chosen"] > 0
    assert rates["MedQuAD answers"] <= 0.005 and rates["OASST assistant replies"] <= 0.01
    tp, n = hand_precision(scores, 0.9)
    assert n >= 30 and tp / n >= 0.8, (tp, n)

