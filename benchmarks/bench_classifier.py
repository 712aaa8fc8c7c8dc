"""Learned classifiers: scoring speed against scikit-learn's hashing pipeline, and proof by
training (DCLM's method, at this machine's scale).

1. Speed: one core scores the same real documents with mixline's hashed n-gram model, with
   scikit-learn's HashingVectorizer (word 1-2 grams) + LogisticRegression, and with fastText
   (the model DCLM filtered with; in the peers' venv), best of 3, each trained on the same 80%
   and measured by AUC on the other 20%.
2. Proof by training: on the Common Crawl pages of ../shared/data, curated by the default
   recipe, two mixes at the same token budget: (a) kept web text at random; (b) kept web text
   ranked by a classifier trained with MedQuAD answers as positives and web pages as
   negatives (`rank_by`). A tiny GPT-2 is trained on each from the same initial weights, for
   each seed; `model compare` measures held-out bits/char on MedQuAD answers the classifier
   never saw (target) and on web pages in neither mix (general).
3. Agreement with the heuristics: what the classifier ranks at the top that the default
   recipe dropped, by drop reason, with scrubbed excerpts.

    .venv/bin/python benchmarks/bench_classifier.py [--seeds 3] [--steps 150]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import WORK, machine, realdata, table  # noqa: E402

CC = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _texts(data: Path) -> tuple[list[str], np.ndarray]:
    """Web pages (label 0) then MedQuAD questions and answers (label 1)."""
    web = [json.loads(line)["text"] for line in gzip.open(data / CC, "rt")]
    med = [f"{r.get('question', '')}\n{r.get('answer', '')}"
           for r in map(json.loads, gzip.open(data / "domain_medical/medquad_qa.jsonl.gz", "rt"))]
    return web + med, np.array([0] * len(web) + [1] * len(med))


def speed(data: Path) -> list[dict[str, object]]:
    """Each tool learns from 80% of the documents (every fifth held out), then scores all of
    them, best of 3; held-out AUC says the speed is not bought with accuracy."""
    from mixline.curation.classifier import HashedNgrams, Model
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    texts, y = _texts(data)
    held = np.arange(len(texts)) % 5 == 0
    tr = [t for t, h in zip(texts, held, strict=True) if not h]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    feat = HashedNgrams()
    clf = LogisticRegression(C=4.0, max_iter=1000, solver="liblinear").fit(feat.transform(tr), y[~held])
    model = Model("ngram", ["negative", "positive"], clf.coef_.astype(np.float32), clf.intercept_, feat.config())
    hv = HashingVectorizer(n_features=2**20, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    skl = LogisticRegression(C=4.0, max_iter=1000, solver="liblinear").fit(hv.transform(tr), y[~held])
    rows = []
    for name, fn in (("mixline ngram (score)", lambda: model.proba(HashedNgrams().transform(texts))[:, 1]),
                     ("scikit-learn HashingVectorizer 1-2 + LogisticRegression",
                      lambda: skl.predict_proba(hv.transform(texts))[:, 1])):
        best, pos = min((_timed(fn) for _ in range(3)), key=lambda r: r[0])
        rows.append({"tool": name, "docs": len(texts), "seconds": round(best, 3), "docs_per_s": round(len(texts) / best),
                     "mb_per_s": round(mb / best, 1), "heldout_auc": round(float(roc_auc_score(y[held], pos[held])), 4)})
    rows.append(_fasttext(texts, y, held, mb))
    return rows


def _fasttext(texts: list[str], y: np.ndarray, held: np.ndarray, mb: float) -> dict[str, object]:
    """fastText in the peers' venv (`make benchmarks/_work/peers/.installed`), on the same split."""
    from _common import PEERS, best_peer
    from sklearn.metrics import roc_auc_score

    name = "fastText supervised (wordNgrams 2, 2^20 buckets, dim 64)"
    if not PEERS.exists():
        return {"tool": name, "docs": len(texts), "seconds": "not run: no peers venv"}
    d = WORK / "classifier-peer"
    d.mkdir(parents=True, exist_ok=True)
    lab = ["negative", "positive"]
    with (d / "train.txt").open("w") as fh:
        for t, yy, h in zip(texts, y, held, strict=True):
            if not h:
                fh.write(f"__label__{lab[yy]} {' '.join(t.split())}\n")
    (d / "texts.json").write_text(json.dumps(texts))
    res = best_peer("fasttext_score.py", str(d / "train.txt"), str(d / "texts.json"),
                    env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(WORK)})
    pos = np.array(res["positive"])
    return {"tool": name, "docs": len(texts), "seconds": round(res["seconds"], 3),
            "docs_per_s": round(len(texts) / res["seconds"]), "mb_per_s": round(mb / res["seconds"], 1),
            "heldout_auc": round(float(roc_auc_score(y[held], pos[held])), 4)}


def _timed(fn: object) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - t, out


def proof(data: Path, seeds: list[int], steps: int, budget: int) -> dict[str, object]:
    from mixline.curation.classifier import score
    from mixline.curation.pii.detectors import scrub_for_display
    from mixline.curation.recipe import Recipe
    from mixline.pipelines.classifiers import TrainSpec, train
    from mixline.pipelines.ingest import IngestOptions, ingest
    from mixline.store.store import Store

    from mixline import api

    work = WORK / "classifier"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    st = Store(work / "store.duckdb")
    t0 = time.perf_counter()
    ingest(st, data / CC, IngestOptions(kind="web", source="cc"))
    ingest(st, data / "domain_medical/medquad_qa.jsonl.gz",
           IngestOptions(kind="domain", source="medquad", domain="medical", text_fields=("answer",)))
    api.curate(st, None, where="kind = 'web'")
    api.curate(st, Recipe.parse({"name": "light", "steps": [{"type": "length", "min_chars": 50},
                                                           {"type": "exact_dedup"}]}, "bench"), where="kind = 'domain'")
    curate_s = time.perf_counter() - t0
    # Halves of MedQuAD: the classifier learns from one, the target set is the other.
    half = "substr(md5(sample_id), 1, 1) < '8'"
    eval_web = "kind = 'web' AND substr(md5(sample_id), 1, 1) IN ('0', '1', '2')"
    t0 = time.perf_counter()
    clf = train(st, TrainSpec("med", positive=f"domain = 'medical' AND {half}", negative=f"kind = 'web' AND NOT ({eval_web})",
                              max_per_class=2000, uncurated=False))
    train_clf_s = time.perf_counter() - t0
    pool = f"kind = 'web' AND NOT ({eval_web})"
    mixes = {}
    for arm, extra in (("random", {}), ("classifier", {"rank_by": "med"})):
        spec = {"name": f"web-{arm}", "seed": 0, "groups": [{"name": "web", "where": pool, "tokens": budget, **extra}]}
        mixes[arm] = api.build_mix(st, api.MixRecipe.parse(spec)).mix_id
    base_mix = api.build_mix(st, api.MixRecipe.parse({"name": "web-all", "seed": 0, "groups": [{"name": "web", "where": pool}]})).mix_id
    sets = {"target (held-out MedQuAD)": f"domain = 'medical' AND NOT ({half})", "general (held-out web)": eval_web}
    per_seed = []
    t0 = time.perf_counter()
    for seed in seeds:
        base = api.init_tiny(st, base_mix, work / f"base-{seed}", seed=seed).model_id
        models = {arm: api.train(st, base, mixes[arm], work / f"{arm}-{seed}", steps=steps, seed=seed).model_id
                  for arm in ("random", "classifier")}
        cmp = api.compare_models(st, models["random"], models["classifier"], sets, max_docs=200)
        per_seed.append({"seed": seed, **{name: {k: r[k] for k in ("bits_per_char_before", "bits_per_char_after",
                                                                   "relative_change", "ci95")}
                                         for name, r in cmp["sets"].items()}})
    models_s = time.perf_counter() - t0
    # Agreement with the heuristics: the classifier's top quarter of all web pages, by what the recipe did.
    score(st, "med", "kind = 'web'")
    cid = clf["classifier_id"]
    ranked = st.rows("""SELECT cs.sample_id, cs.score, coalesce(st.status, 'uncurated') AS status FROM classifier_scores cs
                        JOIN samples s USING (sample_id) LEFT JOIN sample_status st USING (sample_id)
                        WHERE cs.classifier_id = ? AND s.kind = 'web' ORDER BY cs.score DESC""", [cid])
    top = ranked[: len(ranked) // 4]
    dropped_top = [r for r in top if r["status"] == "dropped"]
    reasons: dict[str, int] = {}
    for r in dropped_top:
        reason = st.scalar("""SELECT split_part(reason, ':', 1) FROM decisions WHERE sample_id = ? AND verdict = 'dropped'
                              ORDER BY rowid LIMIT 1""", [r["sample_id"]])
        reasons[reason or "?"] = reasons.get(reason or "?", 0) + 1
    texts = [st.scalar("SELECT text FROM samples WHERE sample_id = ?", [r["sample_id"]]) for r in dropped_top[:3]]
    examples = [{"score": round(r["score"], 3), "text": " ".join(t.split())[:160]}
                for r, t in zip(dropped_top[:3], scrub_for_display(texts), strict=True)]
    kept_all = sum(r["status"] == "kept" for r in ranked)
    kept_bottom = sum(r["status"] == "kept" for r in ranked[-len(top):])
    st.close()
    return {"classifier": clf, "mixes": mixes, "per_seed": per_seed, "curate_s": round(curate_s, 1),
            "train_classifier_s": round(train_clf_s, 1), "models_s": round(models_s, 1),
            "agreement": {"web_pages": len(ranked), "kept_by_recipe": kept_all, "top_quarter": len(top),
                          "top_quarter_dropped_by_recipe": len(dropped_top), "bottom_quarter_kept_by_recipe": kept_bottom,
                          "dropped_reasons": reasons, "examples": examples}}


def _ci(xs: list[float]) -> tuple[float, float, float]:
    """Mean and a 95% t-interval over seeds."""
    from scipy import stats

    a = np.asarray(xs, dtype=float)
    if len(a) < 2:
        return float(a.mean()), float("nan"), float("nan")
    h = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return float(a.mean()), float(a.mean() - h), float(a.mean() + h)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--budget", type=int, default=60_000, help="train tokens of each mix (estimated)")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()
    data = realdata()
    print(f"# Learned classifiers ({machine()}; one thread)\n")
    rows = speed(data)
    print(table(rows))
    print(f"\nratio: mixline scores {rows[0]['docs_per_s'] / rows[1]['docs_per_s']:.2f}x scikit-learn's hashing pipeline"  # type: ignore[operator]
          + (f", {rows[0]['docs_per_s'] / rows[2]['docs_per_s']:.2f}x fastText" if "docs_per_s" in rows[2] else "")  # type: ignore[operator]
          + " (scoring, one core)\n")
    if args.speed_only:
        return
    out = proof(data, list(range(args.seeds)), args.steps, args.budget)
    c = out["classifier"]
    m = c["metrics"]  # type: ignore[index]
    print(f"classifier med@v{c['version']} ({c['classifier_id']}): held-out precision {m['precision']:.3f}, "  # type: ignore[index]
          f"recall {m['recall']:.3f}, AUC {m['auc']:.3f}; trained in {out['train_classifier_s']} s\n")
    print(f"Mixes at {args.budget:,} train tokens each: random {out['mixes']['random']}, "  # type: ignore[index]
          f"classifier-ranked {out['mixes']['classifier']}. Tiny GPT-2, {args.steps} steps, same initial weights per seed.\n")
    print("| seed | set | bits/char random | bits/char classifier | relative change | 95% CI (docs) |\n|---|---|---|---|---|---|")
    changes: dict[str, list[float]] = {}
    for r in out["per_seed"]:  # type: ignore[attr-defined]
        for name, v in r.items():
            if name == "seed":
                continue
            changes.setdefault(name, []).append(v["relative_change"])
            print(f"| {r['seed']} | {name} | {v['bits_per_char_before']:.4f} | {v['bits_per_char_after']:.4f} | "
                  f"{v['relative_change']:+.2%} | [{v['ci95'][0]:+.2%}, {v['ci95'][1]:+.2%}] |")
    print()
    for name, xs in changes.items():
        mean, lo, hi = _ci(xs)
        print(f"- {name}: classifier-ranked vs random, mean relative change {mean:+.2%} over {len(xs)} seeds, "
              f"95% t-interval [{lo:+.2%}, {hi:+.2%}]")
    a = out["agreement"]
    print(f"\nAgreement with the default recipe on {a['web_pages']} web pages ({a['kept_by_recipe']} kept by it): "  # type: ignore[index]
          f"of the classifier's top quarter ({a['top_quarter']}), {a['top_quarter_dropped_by_recipe']} were dropped "  # type: ignore[index]
          f"by the heuristics ({', '.join(f'{k} {v}' for k, v in a['dropped_reasons'].items()) or 'none'}); "  # type: ignore[index]
          f"of its bottom quarter, {a['bottom_quarter_kept_by_recipe']} were kept by them.")  # type: ignore[index]
    for e in a["examples"]:  # type: ignore[index]
        print(f"  - kept at the top by the classifier ({e['score']}), dropped by the recipe: \"{e['text']}\"")
    print(f"\nCost: curation {out['curate_s']} s, classifier {out['train_classifier_s']} s, "
          f"{len(out['per_seed'])} x (init + 2 models + compare) {out['models_s']} s.")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
