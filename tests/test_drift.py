"""Drift metrics, calibration against the reference, and real model output vs human replies."""

import json

import numpy as np
import pytest
from mixline.curation.drift import (
    DriftChecker,
    DriftConfig,
    TextIndex,
    js_distance,
    mmd_permutation_p,
)

from tests.test_curation_pipeline import add


def test_text_metrics_match_their_definitions():
    """The vectorised metrics of any subset equal the textbook definitions on token lists."""
    import math
    from collections import Counter

    from mixline.curation.normalize import words

    texts = ["the cat sat on the mat", "the cat ran", "a dog sat on a log and the dog ran", "mats and logs", "the end"]
    index = TextIndex(texts)
    idx = np.array([0, 2, 3])
    got = index.stats(idx, np.random.default_rng(0))
    toks = [[w.decode() for w in words(texts[i])] for i in idx]

    def distinct(n):
        grams = [tuple(t[i:i + n]) for t in toks for i in range(len(t) - n + 1)]
        return len(set(grams)) / len(grams)

    uni = Counter(w for t in toks for w in t)
    total = sum(uni.values())
    for n in (1, 2, 3):
        assert got[f"distinct_{n}"] == pytest.approx(distinct(n))
    assert got["unigram_entropy"] == pytest.approx(-sum(c / total * math.log2(c / total) for c in uni.values()))
    assert got["mean_words"] == pytest.approx(np.mean([len(t) for t in toks]))
    assert js_distance(np.array([2, 1, 0]), np.array([2, 1, 0])) == 0.0
    assert js_distance(np.array([2, 0]), np.array([0, 2])) == pytest.approx(1.0)


def test_frechet_and_vendi_match_their_definitions():
    from mixline.curation.drift import frechet, vendi
    from scipy import linalg

    rng = np.random.default_rng(1)
    for n, m in ((40, 50), (120, 90)):  # fewer and more samples than dimensions
        x, y = rng.normal(0, 1, (n, 64)), rng.normal(0.3, 1.2, (m, 64))
        cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        root = np.real(linalg.sqrtm(cx @ cy))
        direct = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cx + cy - 2 * root)
        assert frechet(x, y) == pytest.approx(direct, rel=1e-6)
    assert vendi(np.tile([[1.0, 0.0, 0.0]], (5, 1))) == pytest.approx(1.0)
    assert vendi(np.eye(4)) == pytest.approx(4.0)


def test_mmd_permutation_separates_shifted_sets():
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(0, 1, (80, 8)), rng.normal(0, 1, (80, 8)), rng.normal(0.6, 1, (80, 8))
    _, p_same = mmd_permutation_p(x, y, 1 / 16, 200, rng)
    _, p_diff = mmd_permutation_p(x, z, 1 / 16, 200, rng)
    assert p_same > 0.05 and p_diff <= 0.01


def human_replies(realdata):
    out = []

    def walk(n):
        if n.get("role") == "assistant" and not n.get("synthetic") and not n.get("deleted"):
            out.append(n["text"])
        for r in n.get("replies") or []:
            walk(r)

    for line in (realdata / "conversations/oasst_en_100_message.jsonl").read_text().splitlines():
        walk(json.loads(line))
    return out


def pythia(realdata, config):
    d = json.loads((realdata / "synthetic/oasst_sampling_pythia-1b-deduped-sft.json").read_text())
    return [o for p in d["prompts"] for r in p["results"] if r["sampling_config"] == config for o in r["outputs"]]


def test_pythia_output_alerts_against_human_replies(realdata):
    rep = DriftChecker(DriftConfig(embeddings=False)).check(pythia(realdata, "k50"), human_replies(realdata))
    assert rep.alert
    moved = set(rep.as_dict()["moved"])
    assert {"js_distance", "ref_vocab_coverage"} <= moved


def test_greedy_and_sampled_outputs_are_told_apart(realdata):
    greedy = [o for size in ("1b", "3b", "12b") for o in pythia_for(realdata, size, "greedy")]
    k50 = [o for size in ("1b", "3b", "12b") for o in pythia_for(realdata, size, "k50")]
    rep = DriftChecker(DriftConfig(embeddings=False)).check(greedy, k50)
    assert rep.alert
    d = {m.metric: m for m in rep.metrics}
    assert d["distinct_2"].value < d["distinct_2"].reference_value  # greedy output repeats itself more


def test_human_vs_human_rarely_alerts(realdata):
    human = human_replies(realdata)
    rng = np.random.default_rng(3)
    checker = DriftChecker(DriftConfig(embeddings=False, bootstrap=20))
    alerts = 0
    for _ in range(5):
        p = rng.permutation(len(human))
        third = len(human) // 3
        alerts += checker.check([human[i] for i in p[:third]], [human[i] for i in p[third:]]).alert
    # Measured over 20 splits with all metrics: 1 false alert (benchmarks/RESULTS.md); the target is at most 1.
    assert alerts <= 1


def test_cli_drift_check_stores_results(mixline, store_path):
    from mixline.store import Store

    with Store(store_path) as st:
        add(st, [(f"Human sentence number {i} about gardens, rivers and the town library." * 2, "web", 0, "h") for i in range(90)], run="a")
        add(st, [(f"gen gen gen output {i % 3}", "synthetic", 1, "loop-gen1") for i in range(30)], run="b")
    out = mixline.json("drift", "check", "--batch", "source = 'loop-gen1'", "--reference", "source = 'h'", "--no-embeddings", "--bootstrap", "10")
    assert out["alert"] and {"metric", "value", "threshold", "alert"} <= set(out["metrics"][0])
    rows = mixline.json("drift", "report")
    assert len(rows) == 1 and rows[0]["alert"]
    assert mixline.json("sql", "SELECT count(*) AS n FROM drift")[0]["n"] == len(out["metrics"])


def test_mmd_on_minilm_separates_model_output_from_human_replies(realdata):
    """Subtle drift: fine-tuned models' replies vs the human replies they imitate, ~600 a side."""
    from mixline.curation.embed import Embedder

    gen = []
    for size in ("1b", "3b", "12b"):
        gen += pythia_for(realdata, size, "k50")
    human = human_replies(realdata)
    emb = Embedder()
    g, h = emb.encode(gen), emb.encode(human)
    rng = np.random.default_rng(0)
    sub = h[rng.choice(len(h), 300, replace=False)]
    d = ((sub[:, None] - sub[None]) ** 2).sum(-1)
    gamma = 1 / float(np.median(d[d > 0]))
    n = min(len(g), len(h))
    _, p_model = mmd_permutation_p(g[:n], h[:n], gamma, 200, rng)
    perm = rng.permutation(len(h))
    _, p_human = mmd_permutation_p(h[perm[: len(h) // 2]], h[perm[len(h) // 2:]], gamma, 200, rng)
    print(f"MMD permutation p: model vs human {p_model:.3f} ({n} a side), human vs human {p_human:.3f}")
    assert p_model <= 0.01 and p_human > 0.2


def pythia_for(realdata, size, config):
    d = json.loads((realdata / f"synthetic/oasst_sampling_pythia-{size}-deduped-sft.json").read_text())
    return [o for p in d["prompts"] for r in p["results"] if r["sampling_config"] == config for o in r["outputs"]]


def test_self_instruct_outputs_are_placed_apart(realdata):
    base = realdata / "synthetic/self_instruct"

    def load(name, key):
        rows = [json.loads(line) for line in (base / name).read_text().splitlines()]
        return [r[key].strip() for r in rows if r[key].strip()]

    human = load("text-davinci-003_predictions.jsonl", "target")
    davinci, d003 = load("davinci_predictions.jsonl", "response"), load("text-davinci-003_predictions.jsonl", "response")
    checker = DriftChecker(DriftConfig(embeddings=False))
    vs_human = {name: checker.check(out, human) for name, out in (("davinci", davinci), ("text-davinci-003", d003))}
    assert all(r.alert for r in vs_human.values())
    assert checker.check(davinci, d003).alert
    # The instruction-tuned model sits closer to the human answers than base davinci does.
    assert len(vs_human["text-davinci-003"].as_dict()["moved"]) < len(vs_human["davinci"].as_dict()["moved"])
