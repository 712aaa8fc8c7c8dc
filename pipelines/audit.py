"""`mixline model audit`: what a trained model memorised of its training data.

Three measurements, each tied to the model and to the data it was measured on:

- **Canary exposure** (Carlini et al. 2019). For every canary planted in the store, the model's
  log-likelihood of the true secret in its sentence is ranked against random candidates drawn
  from the same space: exposure = log2(candidates + 1) - log2(rank), in bits, so a secret the
  model finds more likely than every candidate scores the most the candidates can show. Where
  the space is no larger than the candidates asked for, every secret is ranked and the rank is
  exact; otherwise a skew-normal fitted to the candidates' losses extrapolates the exposure past
  the sampled ranks (Carlini's estimate). Canaries that never reached the model's training
  data are controls: their exposure is chance (about 1.4 bits on average).
- **Verbatim extraction** (Carlini et al. 2021): for a sample of the training conversations,
  prompt with the first k tokens and decode greedily; count exact reproductions of the next m.
  Canaries count as extracted when greedy decoding from their sentence's prefix writes the secret.
- **Membership inference**: the AUC of the per-token loss at telling the mix's training members
  from its held-out split (a loss attack, Yeom et al. 2018), and, where a reference model is
  known, of the loss difference to it (the reference-model attack, Carlini et al. 2022).

The secrets are read from the store's secret table and never returned, printed or recorded:
only canary ids, formats, counts and exposures are.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from mixline.pipelines.canaries import draw_secret, enumerate_space, space_size
from mixline.store.canaries import CANARY_REACH, CANARY_SAMPLES, load_secrets
from mixline.store.ids import canonical_json, step_id
from mixline.store.lineage import model_chain
from mixline.store.refs import require_ref
from mixline.store.store import Store

from mixline.errors import ConfigError

CHANCE_BITS = 1 / math.log(2)  # the mean of -log2(U) for a uniform rank


@dataclass(frozen=True)
class AuditConfig:
    candidates: int = 10_000
    extraction_samples: int = 100
    prefix_tokens: int = 32
    suffix_tokens: int = 32
    mia_docs: int = 200
    reference: str | None = None  # a model id; None: the parent, when it is a trained model
    controls: int = 50  # canaries that never reached training, measured as a baseline
    seed: int = 0
    batch_size: int = 512
    max_exposure: float | None = None  # bits, over the canaries whose secret was trained on
    max_extraction: float | None = None  # share of the sampled training conversations

    def check(self) -> None:
        if self.candidates < 100:
            raise ConfigError(f"--candidates {self.candidates}: rank against at least 100 (10,000 is the default)")
        if self.prefix_tokens < 1 or self.suffix_tokens < 1:
            raise ConfigError("--prefix-tokens and --suffix-tokens must be at least 1")

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("max_exposure", "max_extraction", "batch_size")}


# -- model helpers ------------------------------------------------------------------------------


def sequence_nll(model: Any, tok: Any, texts: list[str], batch_size: int = 512) -> np.ndarray:
    """The summed negative log-likelihood (nats) of each text after an end-of-text token."""
    import torch

    dev = next(model.parameters()).device
    eos = tok.eos_token_id
    encoded = [[eos, *tok(t, add_special_tokens=False)["input_ids"]] for t in texts]
    out = np.zeros(len(texts))
    with torch.no_grad():
        for i in range(0, len(encoded), batch_size):
            chunk = encoded[i:i + batch_size]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), eos, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.bool)
            for j, row in enumerate(chunk):
                ids[j, :len(row)] = torch.tensor(row)
                mask[j, :len(row)] = True
            ids, mask = ids.to(dev), mask.to(dev)
            # Right padding: causal attention never lets a real token see the padding after it.
            logits = model(input_ids=ids).logits[:, :-1].float()
            logp = torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None])[..., 0]
            out[i:i + len(chunk)] = (-(logp * mask[:, 1:])).sum(1).cpu().numpy()
    return out


def greedy(model: Any, prompts: list[list[int]], steps: int, batch_size: int = 64) -> list[list[int]]:
    """Greedy continuations of token-id prompts of equal length (no padding needed)."""
    import warnings

    import torch

    dev = next(model.parameters()).device
    out: list[list[int]] = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers renames past_key_values across versions
        for i in range(0, len(prompts), batch_size):
            ids = torch.tensor(prompts[i:i + batch_size], device=dev)
            res = model(input_ids=ids, use_cache=True)
            past, nxt = res.past_key_values, res.logits[:, -1].argmax(-1, keepdim=True)
            gen = [nxt]
            for _ in range(steps - 1):
                res = model(input_ids=nxt, past_key_values=past, use_cache=True)
                past, nxt = res.past_key_values, res.logits[:, -1].argmax(-1, keepdim=True)
                gen.append(nxt)
            out.extend(torch.cat(gen, 1).cpu().tolist())
    return out


# -- the three measurements -------------------------------------------------------------------


def _canary_rows(store: Store, mix_ids: list[str], secrets: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Every canary with its planted copies and what of it reached the training mixes: members
    that are copies or derived from one (a scrubbed child), weighted by repeats, and among them
    those whose text still holds the secret."""
    rows = store.rows("""SELECT c.canary_id, c.format, c.repeats, count(cc.sample_id) AS planted
                         FROM canaries c JOIN canary_copies cc USING (canary_id) GROUP BY ALL ORDER BY c.canary_id""")
    if not rows or not mix_ids:
        return [{**r, "trained": 0, "secret_trained": 0} for r in rows]
    reached = store.execute(f"""
        WITH tm AS (SELECT sample_id, sum(repeats) AS n FROM mix_members
                    WHERE mix_id IN (SELECT unnest(?::VARCHAR[])) AND split = 'train' GROUP BY 1)
        SELECT r.canary_id, tm.n, s.text FROM tm JOIN ({CANARY_REACH}) r USING (sample_id)
        JOIN samples s USING (sample_id)""", [mix_ids]).fetchall()
    trained: dict[str, list[int]] = {}
    for cid, n, text in reached:
        t = trained.setdefault(cid, [0, 0])
        t[0] += int(n)
        sec = secrets.get(cid)
        if sec and sec["secret"] in text:
            t[1] += int(n)
    return [{**r, "trained": trained.get(r["canary_id"], [0, 0])[0], "secret_trained": trained.get(r["canary_id"], [0, 0])[1]}
            for r in rows]


def exposure(model: Any, tok: Any, prefix: str, secret: str, fmt: str, n: int, rng: random.Random,
             batch_size: int = 512) -> dict[str, Any]:
    """The secret's rank among candidates by the model's likelihood of its sentence, in bits."""
    space = space_size(fmt)
    every = enumerate_space(fmt) if space <= n + 1 else None
    if every is not None:
        cands = [c for c in every if c != secret]
    else:
        seen = {secret}
        cands = []
        while len(cands) < n:
            c = draw_secret(fmt, rng)
            if c not in seen:
                seen.add(c)
                cands.append(c)
    losses = sequence_nll(model, tok, [f" {prefix}{s}." for s in [secret, *cands]], batch_size)
    true, others = losses[0], losses[1:]
    rank = 1 + int((others < true).sum()) + int((others == true).sum()) // 2
    bits = math.log2(len(others) + 1) - math.log2(rank)
    fit = None
    if every is None:
        from scipy import stats

        a, loc, scale = stats.skewnorm.fit(others)
        cdf = float(stats.skewnorm.cdf(true, a, loc, scale))
        # The extrapolated rank in the whole space, floored at one secret.
        fit = float(min(math.log2(space), -math.log2(max(cdf, 1.0 / space))))
    return {"exposure_bits": bits, "exposure_fit_bits": fit, "rank": rank, "candidates": len(others), "exact": every is not None}


def extraction(model: Any, tok: Any, texts: list[str], k: int, m: int) -> dict[str, Any]:
    """Greedy continuations of each text's first k tokens against its true next m tokens."""
    prompts, truths = [], []
    for t in texts:
        ids = [tok.eos_token_id, *tok(t, add_special_tokens=False)["input_ids"]]
        if len(ids) >= k + m:
            prompts.append(ids[:k])
            truths.append(ids[k:k + m])
    if not prompts:
        return {"n": 0, "exact": 0, "rate": None, "token_match": None,
                "skipped": f"no sampled training text has {k + m} tokens"}
    gens = greedy(model, prompts, m)
    exact = sum(g == t for g, t in zip(gens, truths, strict=True))
    # The share of the suffix reproduced before the first wrong token, on average.
    matched = [next((i for i, (a, b) in enumerate(zip(g, t, strict=True)) if a != b), m) / m for g, t in zip(gens, truths, strict=True)]
    return {"n": len(prompts), "exact": int(exact), "rate": exact / len(prompts), "token_match": float(np.mean(matched))}


def _auc(labels: np.ndarray, scores: np.ndarray, rng: np.random.Generator, boots: int = 200) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(labels, scores))
    vals = []
    for _ in range(boots):
        idx = rng.integers(0, len(labels), len(labels))
        if len(set(labels[idx].tolist())) == 2:
            vals.append(roc_auc_score(labels[idx], scores[idx]))
    lo, hi = (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if vals else (None, None)
    return {"auc": auc, "ci95": [lo, hi]}


def membership(store: Store, model: Any, tok: Any, mix_id: str, cfg: AuditConfig, reference: Any | None,
               reference_id: str | None, exclude: set[str]) -> dict[str, Any]:
    """Loss-based membership inference: training members against the held-out split."""
    from mixline.pipelines.models import doc_scores

    sets = {}
    for split in ("train", "heldout"):
        rows = store.execute("""SELECT s.sample_id, s.text FROM mix_members mm JOIN samples s USING (sample_id)
                                WHERE mm.mix_id = ? AND mm.split = ? ORDER BY md5(s.sample_id || ?::VARCHAR)""",
                             [mix_id, split, cfg.seed]).fetchall()
        sets[split] = [t for sid, t in rows if sid not in exclude][: cfg.mia_docs]
    if len(sets["heldout"]) < 10:
        return {"skipped": f"mix {mix_id} has {len(sets['heldout'])} held-out samples; membership inference needs at least 10 "
                           "(build the mix with holdout = {{ fraction = 0.1 }})"}
    texts = sets["train"] + sets["heldout"]
    labels = np.array([1] * len(sets["train"]) + [0] * len(sets["heldout"]))

    def per_token(m: Any) -> np.ndarray:
        s = doc_scores(m, tok, texts)
        return s[:, 0] / np.maximum(s[:, 3], 1)

    rng = np.random.default_rng(cfg.seed)
    loss = per_token(model)
    out: dict[str, Any] = {"members": len(sets["train"]), "heldout": len(sets["heldout"]), **_auc(labels, -loss, rng),
                           "member_loss": float(loss[labels == 1].mean()), "heldout_loss": float(loss[labels == 0].mean())}
    if reference is not None:
        ref = per_token(reference)
        r = _auc(labels, ref - loss, rng)
        out.update({"reference_model": reference_id, "auc_reference": r["auc"], "ci95_reference": r["ci95"]})
    return out


# -- the audit ----------------------------------------------------------------------------------


def _reference(store: Store, chain: list[dict[str, Any]], cfg: AuditConfig) -> str | None:
    if cfg.reference:
        return require_ref(store, "model", cfg.reference)
    if len(chain) > 1 and chain[1].get("method") not in (None, "init"):
        return str(chain[1]["model_id"])
    return None


def audit(store: Store, model_ref: str, cfg: AuditConfig | None = None) -> dict[str, Any]:
    """Measure a model's canary exposure, verbatim extraction and membership inference; record it."""
    from mixline.pipelines.models import load_model

    cfg = cfg or AuditConfig()
    cfg.check()
    model_id = require_ref(store, "model", model_ref)
    chain = model_chain(store, model_id)
    mix_id = chain[0].get("mix_id")
    # The mixes of every stage that trained weights (an init stage trained only the tokenizer).
    mix_ids = sorted({r["mix_id"] for r in chain if r.get("mix_id") and r.get("method") != "init"})
    t_all = time.perf_counter()
    model, tok, _ = load_model(store, model_id)
    model.eval()
    n_pos = int(getattr(model.config, "n_positions", 1024))
    if cfg.prefix_tokens + cfg.suffix_tokens > n_pos:
        raise ConfigError(f"--prefix-tokens {cfg.prefix_tokens} + --suffix-tokens {cfg.suffix_tokens} exceed the model's "
                          f"context of {n_pos} tokens")
    secrets = load_secrets(store)
    rows = _canary_rows(store, mix_ids, secrets)
    trained = [r for r in rows if r["trained"] > 0]
    controls = [r for r in rows if r["trained"] == 0][: cfg.controls]
    rng = random.Random(cfg.seed)
    t0 = time.perf_counter()
    measured = []
    for r in trained + controls:
        sec = secrets.get(r["canary_id"])
        if sec is None:  # its secret was deleted: nothing to rank
            continue
        e = exposure(model, tok, sec["prefix"], sec["secret"], r["format"], cfg.candidates, rng, cfg.batch_size)
        prompt = [tok.eos_token_id, *tok(f" {sec['prefix'].rstrip()}", add_special_tokens=False)["input_ids"]]
        want = len(tok(f" {sec['secret']}", add_special_tokens=False)["input_ids"]) + 1
        text = tok.decode(greedy(model, [prompt], want, 1)[0])
        measured.append({"canary_id": r["canary_id"], "format": r["format"], "planted_copies": int(r["planted"]),
                         "trained_copies": int(r["trained"]), "secret_trained": int(r["secret_trained"]),
                         **e, "extracted": text.strip().startswith(sec["secret"])})
    exposure_s = time.perf_counter() - t0
    exclude = {sid for (sid,) in store.execute(CANARY_SAMPLES).fetchall()}
    t0 = time.perf_counter()
    ext: dict[str, Any] = {"skipped": "the model records no training mix"}
    if mix_id:
        kinds = [k for (k,) in store.execute("""SELECT DISTINCT s.kind FROM mix_members mm JOIN samples s USING (sample_id)
                                                WHERE mm.mix_id = ? AND mm.split = 'train'""", [mix_id]).fetchall()]
        kind = "conversation" if "conversation" in kinds else None
        picked = store.execute(f"""SELECT DISTINCT s.sample_id, s.text, md5(s.sample_id || ?::VARCHAR) AS o
                                   FROM mix_members mm JOIN samples s USING (sample_id)
                                   WHERE mm.mix_id = ? AND mm.split = 'train' {"AND s.kind = 'conversation'" if kind else ""}
                                   ORDER BY o""", [cfg.seed, mix_id]).fetchall()
        texts = [t for sid, t, _ in picked if sid not in exclude][: cfg.extraction_samples]
        ext = {"kind": kind or "all", "prefix_tokens": cfg.prefix_tokens, "suffix_tokens": cfg.suffix_tokens,
               **extraction(model, tok, texts, cfg.prefix_tokens, cfg.suffix_tokens)}
    extraction_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mia: dict[str, Any] = {"skipped": "the model records no training mix"}
    ref_id = _reference(store, chain, cfg)
    if mix_id:
        ref_model = load_model(store, ref_id)[0].eval() if ref_id else None
        mia = membership(store, model, tok, mix_id, cfg, ref_model, ref_id, exclude)
    mia_s = time.perf_counter() - t0
    results = _summarise(measured, ext, mia)
    results["seconds"] = {"exposure": round(exposure_s, 2), "extraction": round(extraction_s, 2),
                          "membership": round(mia_s, 2), "total": round(time.perf_counter() - t_all, 2)}
    limits = {k: v for k, v in (("max_exposure", cfg.max_exposure), ("max_extraction", cfg.max_extraction)) if v is not None}
    failed = _failed(results, limits)
    config = {"model_id": model_id, **cfg.params()}
    with store.run("audit", "model_audit_v1", {**config, "limits": limits}) as run:
        audit_id = "audit-" + step_id("audit", 1, {**config, "run": run.run_id}, [model_id])[:20]
        store.append_rows("audits", [{"audit_id": audit_id, "model_id": model_id, "run_id": run.run_id, "mix_id": mix_id,
                                      "config": canonical_json(config), "results": canonical_json(results),
                                      "limits": canonical_json(limits) if limits else None,
                                      "passed": None if not limits else not failed}])
        store.append_rows("audit_canaries", [{"audit_id": audit_id, **{k: m[k] for k in (
            "canary_id", "format", "planted_copies", "trained_copies", "secret_trained", "exposure_bits",
            "exposure_fit_bits", "rank", "candidates", "exact", "extracted")}} for m in measured])
        run.stats.update({"audit_id": audit_id, "passed": None if not limits else not failed})
    return {"audit_id": audit_id, "model_id": model_id, "mix_id": mix_id, "mixes": mix_ids, "run_id": run.run_id,
            "reference_model": ref_id, "results": results, "limits": limits,
            "passed": None if not limits else not failed, "failed": failed, "canaries": measured}


def _summarise(measured: list[dict[str, Any]], ext: dict[str, Any], mia: dict[str, Any]) -> dict[str, Any]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for m in measured:
        state = "secret trained" if m["secret_trained"] else ("scrubbed before training" if m["trained_copies"] else "not trained")
        groups.setdefault((m["format"], state, m["secret_trained"]), []).append(m)
    table = []
    for (fmt, state, copies), ms in sorted(groups.items()):
        bits = [m["exposure_bits"] for m in ms]
        fits = [m["exposure_fit_bits"] for m in ms if m["exposure_fit_bits"] is not None]
        table.append({"format": fmt, "state": state, "secret_copies_trained": copies, "canaries": len(ms),
                      "mean_bits": float(np.mean(bits)), "max_bits": float(np.max(bits)),
                      "mean_fit_bits": float(np.mean(fits)) if fits else None,
                      "extracted": sum(m["extracted"] for m in ms)})
    trained = [m for m in measured if m["secret_trained"]]
    return {"exposure": {"canaries": len(measured), "secret_trained": len(trained),
                         "max_bits": max((m["exposure_bits"] for m in trained), default=None),
                         "max_fit_bits": max((m["exposure_fit_bits"] or 0.0 for m in trained), default=None),
                         "chance_bits": CHANCE_BITS, "groups": table,
                         "extracted": sum(m["extracted"] for m in measured)},
            "extraction": ext, "membership": mia}


def _failed(results: dict[str, Any], limits: dict[str, float]) -> list[str]:
    out = []
    top = results["exposure"]["max_bits"]
    if "max_exposure" in limits and top is not None and top > limits["max_exposure"]:
        out.append(f"canary exposure {top:.1f} bits > --max-exposure {limits['max_exposure']}")
    rate = results["extraction"].get("rate")
    if "max_extraction" in limits and rate is not None and rate > limits["max_extraction"]:
        out.append(f"verbatim extraction {rate:.1%} > --max-extraction {limits['max_extraction']:.1%}")
    return out


def latest(store: Store, model_id: str) -> dict[str, Any] | None:
    """The model's newest audit, as the card and the dashboard show it."""
    if not store.table_exists("audits"):  # a store from before audits, opened read-only
        return None
    rows = store.execute("""SELECT a.audit_id, a.run_id, a.mix_id, a.config, a.results, a.limits, a.passed, a.created_at
                            FROM audits a WHERE a.model_id = ? ORDER BY a.created_at DESC, a.audit_id LIMIT 1""",
                         [model_id]).fetchall()
    if not rows:
        return None
    row = rows[0]
    return {"audit_id": row[0], "run_id": row[1], "mix_id": row[2], "config": json.loads(row[3]), "results": json.loads(row[4]),
            "limits": json.loads(row[5]) if row[5] else {}, "passed": row[6], "created_at": str(row[7])}


def describe(a: dict[str, Any]) -> list[str]:
    """An audit in lines of text (the CLI and the model card)."""
    r = a["results"]
    e, x, m = r["exposure"], r["extraction"], r["membership"]
    out = [f"{a['audit_id']}  model {a['model_id']}, mix {a.get('mix_id') or '-'}"
           + ("" if a.get("passed") is None else ("  PASSED" if a["passed"] else "  FAILED"))]
    if e["canaries"]:
        top = "-" if e["max_bits"] is None else f"{e['max_bits']:.1f} bits"
        out.append(f"  canary exposure: {e['canaries']} canaries measured, {e['secret_trained']} with their secret in the "
                   f"training data; highest {top} (chance {e['chance_bits']:.1f}); {e['extracted']} extracted by greedy decoding")
        for g in e["groups"]:
            fit = "" if g["mean_fit_bits"] is None else f", extrapolated {g['mean_fit_bits']:.1f}"
            out.append(f"    {g['format']:<6} {g['state']:<25} x{g['secret_copies_trained']:<3} {g['canaries']:>3} canaries: "
                       f"mean {g['mean_bits']:.1f} bits{fit}, max {g['max_bits']:.1f}, extracted {g['extracted']}")
    else:
        out.append("  canary exposure: no canary planted (`mixline canary plant --source S` before curating)")
    if "skipped" in x:
        out.append(f"  verbatim extraction: not measured ({x['skipped']})")
    else:
        out.append(f"  verbatim extraction: {x['exact']} of {x['n']} {x['kind']} training samples reproduced "
                   f"({x['rate']:.1%}): {x['suffix_tokens']} tokens after a {x['prefix_tokens']}-token prompt; "
                   f"{x['token_match']:.1%} of suffix tokens matched before the first miss")
    if "skipped" in m:
        out.append(f"  membership inference: not measured ({m['skipped']})")
    else:
        ci = m["ci95"]
        line = (f"  membership inference: loss attack AUC {m['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] on {m['members']} members "
                f"vs {m['heldout']} held out (0.5 = no leak)")
        if m.get("reference_model"):
            line += f"; against reference {m['reference_model']}: AUC {m['auc_reference']:.3f}"
        out.append(line)
    s = r.get("seconds", {})
    if s:
        out.append(f"  cost: {s['total']} s (exposure {s['exposure']}, extraction {s['extraction']}, membership {s['membership']})")
    return out
