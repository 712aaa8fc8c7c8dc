"""`mixline mix search`: choose a mix's group weights by training small proxy models on candidate
mixes (RegMix, Liu et al. 2024), and record how the weights were chosen.

1. N weight vectors are drawn from a Dirichlet around the recipe's own weights (half the
   recipe's weights, half uniform), each rejected if a group would need more tokens than it
   has (times its `max_repeats`), and each built as a mix of `proxy_tokens` train tokens.
2. A tiny GPT-2 is trained on each from one shared initial model (tokenizer trained on the
   natural-proportions mix) and evaluated in bits/char on held-out target and general samples.
3. A ridge regression from weights to each loss is fitted; leave-one-out predictions give its
   R² and Spearman correlation on proxies it did not see.
4. If Spearman is at least 0.5, the weights that minimise the predicted target loss, with the
   predicted general loss within `margin` of the recipe's own, are chosen among 20,000 Dirichlet
   candidates; the chosen mix is built at the recipe's size (its recipe names the search), and
   one more proxy on a fresh seed confirms it against the recipe's weights and natural
   proportions. Below 0.5 it says the fit does not predict, and claims no optimum.

Every proxy is recorded as it finishes (`search_proxies`), so a search that is killed resumes
from the proxies it has. `executor="ray"` trains the proxies as Ray tasks.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from mixline.pipelines.mix import TOKENS_SQL, MixRecipe, build
from mixline.store.ids import canonical_json, step_id
from mixline.store.select import not_raw_parent, scope
from mixline.store.store import Store

from mixline.errors import ConfigError, NotFoundError

MIN_SPEARMAN = 0.5
CANDIDATES = 20_000


@dataclass(frozen=True)
class SearchConfig:
    target: str
    general: str
    proxies: int = 16
    proxy_tokens: int = 100_000
    seed: int = 0
    margin: float = 0.02  # the chosen mix's predicted general loss may be this much (relative) worse
    eval_docs: int = 100
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    tiny: dict[str, Any] = field(default_factory=lambda: {"n_layer": 2, "n_embd": 64})
    executor: str = "local"

    def check(self) -> None:
        if self.proxies < 6:
            raise ConfigError(f"--proxies {self.proxies}: a fit needs at least 6 proxies (16 or more to trust it)")
        if self.proxy_tokens < 1000:
            raise ConfigError(f"--proxy-tokens {self.proxy_tokens}: give each proxy at least 1,000 train tokens")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"--executor {self.executor!r}: use local or ray")

    @property
    def steps(self) -> int:
        return max(1, self.proxy_tokens // (self.batch_size * self.seq_len))

    def keyed(self) -> dict[str, Any]:
        """What the search id depends on (not how it is executed)."""
        return {k: v for k, v in asdict(self).items() if k != "executor"}


def _group_tokens(store: Store, recipe: MixRecipe, base: str) -> np.ndarray:
    """Train tokens each group could give (eligible samples, before holdout)."""
    status = []
    if "kept" in recipe.status:
        status.append("st.status = 'kept'")
    if "uncurated" in recipe.status:
        status.append("st.status IS NULL")
    out = []
    for g in recipe.groups:
        out.append(float(store.scalar(f"""SELECT coalesce(sum({TOKENS_SQL}), 0) FROM samples s
                                           LEFT JOIN sample_status st USING (sample_id)
                                           WHERE s.kind <> 'eval' AND ({' OR '.join(status)}) AND {not_raw_parent('s')}
                                             AND {base} AND {scope(store, g.where, 's')}""")) * g.max_repeats)
    return np.array(out)


def _with_weights(recipe: MixRecipe, weights: np.ndarray, total: int, name: str, search_id: str | None = None,
                  where: str | None = None) -> MixRecipe:
    groups = tuple(replace(g, weight=round(float(w), 6), tokens=None, docs=None) for g, w in zip(recipe.groups, weights, strict=True))
    return replace(recipe, name=name, groups=groups, total_tokens=int(total), search=search_id,
                   where=where if where is not None else recipe.where)


def _draws(rng: np.random.Generator, prior: np.ndarray, cap: np.ndarray, n: int) -> np.ndarray:
    """n Dirichlet draws around `prior`, each within the groups' caps (shares of the budget)."""
    alpha = len(prior) * (0.5 * prior + 0.5 / len(prior))
    out: list[np.ndarray] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200:
            raise ConfigError("mix search: the groups' available tokens cannot fill the proxy budget with most weight "
                              "vectors; lower --proxy-tokens, or raise the groups' max_repeats")
        w = rng.dirichlet(alpha, size=max(n * 4, 256))
        out.extend(w[(w <= cap).all(axis=1)][: n - len(out)])
    return np.array(out[:n])


def _fit(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1e-3).fit(x, y)


def _loo(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Leave-one-out predictions: R² and Spearman on proxies the fit did not see."""
    from scipy.stats import spearmanr

    pred = np.array([_fit(np.delete(x, i, 0), np.delete(y, i))
                     .predict(x[i:i + 1])[0] for i in range(len(y))])
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else float("nan")
    rho = float(spearmanr(pred, y).statistic) if len(set(y.tolist())) > 1 else float("nan")
    return {"r2": r2, "spearman": rho, "rmse": float(np.sqrt(((y - pred) ** 2).mean())), "predicted": pred.tolist()}


def search(store: Store, recipe: MixRecipe, cfg: SearchConfig, workdir: Path) -> dict[str, Any]:
    """Run (or resume) a mixture search over `recipe`'s group weights; record everything."""
    from mixline.pipelines import models as M
    from mixline.store.select import validate_where

    cfg.check()
    missing = [g.name for g in recipe.groups if g.weight is None]
    if missing or not recipe.total_tokens:
        raise ConfigError(f"mix search varies group weights: give every group a weight and the recipe total_tokens "
                          f"(groups without one: {', '.join(missing) or '-'})")
    if len(recipe.groups) < 2:
        raise ConfigError("mix search needs at least two groups to weigh against each other")
    validate_where(store, cfg.target)
    validate_where(store, cfg.general)
    # The eval samples never enter a proxy's mix (evaluate would refuse a leak).
    where = f"({recipe.where}) AND NOT ({cfg.target}) AND NOT ({cfg.general})"
    search_id = "search-" + step_id("mix_search", 1, {"recipe": recipe.resolved(), "config": cfg.keyed()}, [])[:20]
    sets = {"target": cfg.target, "general": cfg.general}
    workdir = Path(workdir) / search_id
    t_all = time.perf_counter()
    hand = np.array([float(g.weight or 0.0) for g in recipe.groups])
    hand = hand / hand.sum()
    avail = _group_tokens(store, replace(recipe, where=where), scope(store, where, "s"))
    if recipe.max_tokens_per_source is not None:  # exact for one-source groups; others are refused by _admit
        avail = np.minimum(avail, float(recipe.max_tokens_per_source))
    if (avail <= 0).any():
        empty = [g.name for g, a in zip(recipe.groups, avail, strict=True) if a <= 0]
        raise ConfigError(f"mix search: groups {', '.join(empty)} have no eligible samples outside the eval sets")
    natural = avail / avail.sum()
    cap = np.minimum(1.0, avail / cfg.proxy_tokens)
    existing = store.rows("SELECT status, config FROM mix_searches WHERE search_id = ?", [search_id])
    if not existing:
        with store.run("search", "mix_search_v1", {"search_id": search_id, **cfg.keyed()}) as run:
            store.append_rows("mix_searches", [{"search_id": search_id, "name": recipe.name, "recipe": canonical_json(recipe.resolved()),
                                                "config": canonical_json(cfg.keyed()), "status": "running", "result": None,
                                                "chosen_mix_id": None, "run_id": run.run_id}])
    done = {r["idx"]: r for r in store.rows("SELECT * FROM search_proxies WHERE search_id = ? ORDER BY idx", [search_id])}
    # One shared start: the tokenizer and initial weights come from the natural-proportions mix.
    nat_recipe = _with_weights(recipe, natural, cfg.proxy_tokens, f"{recipe.name}-natural", where=where)
    nat_mix = build(store, nat_recipe).mix_id
    init = M.init_tiny(store, nat_mix, workdir / "init", M.TinyConfig(**cfg.tiny), cfg.seed)["model_id"]
    rng = np.random.default_rng(cfg.seed)
    weights = _draws(rng, hand, cap, cfg.proxies)
    train_cfg = {"batch_size": cfg.batch_size, "seq_len": cfg.seq_len, "lr": cfg.lr, "seed": cfg.seed}
    jobs = [(i, w) for i, w in enumerate(weights) if i not in done]
    t0 = time.perf_counter()

    def record(i: int, w: np.ndarray, r: dict[str, Any]) -> None:
        done[i] = _record(store, search_id, i, "proxy", w, r, cfg.seed)

    _run_proxies(store, recipe, search_id, jobs, init, workdir, cfg, train_cfg, sets, where, record, hand, cap)
    proxy_s = time.perf_counter() - t0
    idx = sorted(i for i in done if i < cfg.proxies)
    x = np.array([json.loads(done[i]["weights"]) for i in idx])
    yt = np.array([done[i]["target_bpc"] for i in idx])
    yg = np.array([done[i]["general_bpc"] for i in idx])
    fit_t, fit_g = _fit(x, yt), _fit(x, yg)
    ss = float(((yt - yt.mean()) ** 2).sum())
    loo_t, loo_g = _loo(x, yt), _loo(x, yg)
    result: dict[str, Any] = {
        "search_id": search_id, "groups": [g.name for g in recipe.groups], "proxies": len(idx),
        "proxy_steps": cfg.steps, "fit": {"target": {"r2_in_sample": 1 - float(((yt - fit_t.predict(x)) ** 2).sum()) / ss if ss else None,
                                                     "r2_loo": loo_t["r2"], "spearman_loo": loo_t["spearman"], "rmse_loo": loo_t["rmse"]},
                                          "general": {"r2_loo": loo_g["r2"], "spearman_loo": loo_g["spearman"]}},
        "hand_weights": hand.tolist(), "natural_weights": natural.tolist()}
    reliable = bool(loo_t["spearman"] >= MIN_SPEARMAN)
    result["reliable"] = reliable
    chosen_mix = None
    if not reliable:
        result["verdict"] = (f"the fit does not predict held-out proxies (leave-one-out Spearman {loo_t['spearman']:.2f} < "
                             f"{MIN_SPEARMAN}); no optimum is claimed. Train more proxies (--proxies) or longer ones (--proxy-tokens)")
    else:
        cands = _draws(np.random.default_rng(cfg.seed + 1), hand, cap, CANDIDATES)
        pt, pg = fit_t.predict(cands), fit_g.predict(cands)
        hand_t, hand_g = float(fit_t.predict(hand[None])[0]), float(fit_g.predict(hand[None])[0])
        ok = pg <= hand_g * (1 + cfg.margin)
        if not ok.any():
            ok = np.ones(len(cands), dtype=bool)
        best = int(np.flatnonzero(ok)[np.argmin(pt[ok])])
        chosen = cands[best]
        gain = hand_t - float(pt[best])
        result.update({"chosen_weights": chosen.tolist(), "predicted": {
            "target_bpc": float(pt[best]), "general_bpc": float(pg[best]), "hand_target_bpc": hand_t, "hand_general_bpc": hand_g,
            "gain_bpc": gain, "gain_sd": loo_t["rmse"] * math.sqrt(2)}})
        chosen_mix = build(store, _with_weights(recipe, chosen, int(recipe.total_tokens), f"{recipe.name}-searched",
                                                search_id)).mix_id
        result["chosen_mix_id"] = chosen_mix
        # Confirmation on a fresh seed: the chosen weights, the recipe's and natural proportions.
        fresh = cfg.seed + 1000
        for j, (role, w) in enumerate((("confirm-chosen", chosen), ("confirm-hand", hand), ("confirm-natural", natural))):
            k = cfg.proxies + j
            if k not in done:
                r = _proxy_local(store, recipe, search_id, k, w, init, workdir, cfg, {**train_cfg, "seed": fresh}, sets, where)
                done[k] = _record(store, search_id, k, role, w, r, fresh)
        conf = {done[cfg.proxies + j]["role"]: {"target_bpc": done[cfg.proxies + j]["target_bpc"],
                                                "general_bpc": done[cfg.proxies + j]["general_bpc"],
                                                "mix_id": done[cfg.proxies + j]["mix_id"], "model_id": done[cfg.proxies + j]["model_id"]}
                for j in range(3)}
        result["confirmation"] = {"seed": fresh, **conf}
        c, h, n = (conf[r]["target_bpc"] for r in ("confirm-chosen", "confirm-hand", "confirm-natural"))
        result["verdict"] = (f"chosen weights {'beat' if c < min(h, n) else 'did not beat'} the recipe's and natural "
                             f"proportions on the target at a fresh seed: {c:.4f} vs {h:.4f} and {n:.4f} bits/char")
    result["seconds"] = {"proxies": round(proxy_s, 1), "total": round(time.perf_counter() - t_all, 1)}
    with store.run("search", "mix_search_fit_v1", {"search_id": search_id}):
        store.execute("UPDATE mix_searches SET status = ?, result = ?, chosen_mix_id = ? WHERE search_id = ?",
                      ["done" if reliable else "unreliable", canonical_json(result), chosen_mix, search_id])
    return result


def _record(store: Store, search_id: str, idx: int, role: str, w: np.ndarray, r: dict[str, Any], seed: int) -> dict[str, Any]:
    row = {"search_id": search_id, "idx": idx, "role": role, "weights": json.dumps([round(float(v), 6) for v in w]),
           "mix_id": r["mix_id"], "model_id": r["model_id"], "seed": seed, "target_bpc": r["target_bpc"],
           "general_bpc": r["general_bpc"], "run_id": store.scalar("SELECT train_run_id FROM models WHERE model_id = ?", [r["model_id"]])}
    store.append_rows("search_proxies", [row])
    return row


def _admit(store: Store, recipe: MixRecipe, search_id: str, i: int, w: np.ndarray, cfg: SearchConfig, hand: np.ndarray,
           cap: np.ndarray, where: str, tries: int = 20) -> tuple[np.ndarray, str]:
    """Build proxy i's mix; a draw the recipe's own limits refuse (its synthetic share, quotas,
    per-source or per-language caps) is replaced by another draw, seeded by (seed, i, attempt)."""
    for attempt in range(tries):
        try:
            return w, build(store, _with_weights(recipe, w, cfg.proxy_tokens, f"{search_id}-p{i}", where=where)).mix_id
        except ConfigError as exc:
            last = exc
            w = _draws(np.random.default_rng([cfg.seed, i, attempt + 1]), hand, cap, 1)[0]
    raise ConfigError(f"mix search: {tries} weight draws for proxy {i} broke the recipe's limits; the last: {last}")


def _proxy_local(store: Store, recipe: MixRecipe, search_id: str, i: int, w: np.ndarray, init: str, workdir: Path,
                 cfg: SearchConfig, train_cfg: dict[str, Any], sets: dict[str, str], where: str,
                 mix: str | None = None) -> dict[str, Any]:
    from mixline.pipelines import models as M

    if mix is None:
        mix = build(store, _with_weights(recipe, w, cfg.proxy_tokens, f"{search_id}-p{i}", where=where)).mix_id
    model = M.train(store, init, mix, workdir / f"p{i}", M.TrainConfig(steps=cfg.steps, **train_cfg), name=f"{search_id}-p{i}")
    ev = M.evaluate(store, model["model_id"], sets, cfg.eval_docs)["sets"]
    return {"mix_id": mix, "model_id": model["model_id"], "target_bpc": ev["target"]["bits_per_char"],
            "general_bpc": ev["general"]["bits_per_char"]}


def _run_proxies(store: Store, recipe: MixRecipe, search_id: str, jobs: list[tuple[int, np.ndarray]], init: str,
                 workdir: Path, cfg: SearchConfig, train_cfg: dict[str, Any], sets: dict[str, str],
                 where: str, record: Any, hand: np.ndarray, cap: np.ndarray) -> None:
    """Train the proxies not yet recorded; each is recorded as soon as it finishes."""
    if cfg.executor == "local" or not jobs:
        for i, w in jobs:
            w, mix = _admit(store, recipe, search_id, i, w, cfg, hand, cap, where)
            record(i, w, _proxy_local(store, recipe, search_id, i, w, init, workdir, cfg, train_cfg, sets, where, mix))
        return
    admitted = [(i, *_admit(store, recipe, search_id, i, w, cfg, hand, cap, where)) for i, w in jobs]
    for i, w, r in _run_ray(store, search_id, admitted, init, workdir, cfg, train_cfg, sets):
        record(i, w, r)


def _run_ray(store: Store, search_id: str, admitted: list[tuple[int, np.ndarray, str]], init: str,
             workdir: Path, cfg: SearchConfig, train_cfg: dict[str, Any],
             sets: dict[str, str]) -> list[tuple[int, np.ndarray, dict[str, Any]]]:
    """Each proxy trains as a Ray task on a copy of the store; the driver builds the mixes and
    records the results in the store itself (one writer)."""
    import shutil

    import ray
    from mixline.pipelines import models as M

    if not store.path or store.path == ":memory:":
        raise ConfigError("mix search --executor ray needs a store file")
    mixes = {i: mix for i, _, mix in admitted}
    jobs = [(i, w) for i, w, _ in admitted]
    store.execute("CHECKPOINT")
    snap = workdir / "ray-store.duckdb"
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(store.path, snap)

    @ray.remote(num_cpus=1)
    def task(i: int) -> dict[str, Any]:
        from mixline.store import Store as S

        copy = workdir / f"ray-store-{i}.duckdb"
        shutil.copy(snap, copy)
        with S(copy) as st:
            model = M.train(st, init, mixes[i], workdir / f"p{i}", M.TrainConfig(steps=cfg.steps, **train_cfg), name=f"{search_id}-p{i}")
            ev = M.evaluate(st, model["model_id"], sets, cfg.eval_docs)["sets"]
            rows = {t: st.rows(f"SELECT * FROM {t} WHERE model_id = ?", [model["model_id"]]) for t in ("models", "evals")}
            runs = st.rows("SELECT * FROM runs WHERE run_id IN (SELECT train_run_id FROM models WHERE model_id = ? "
                           "UNION SELECT run_id FROM evals WHERE model_id = ?)", [model["model_id"], model["model_id"]])
        copy.unlink(missing_ok=True)
        return {"model_id": model["model_id"], "target_bpc": ev["target"]["bits_per_char"],
                "general_bpc": ev["general"]["bits_per_char"], "rows": rows, "runs": runs}

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    results = ray.get([task.remote(i) for i, _ in jobs])
    out = []
    for (i, w), r in zip(jobs, results, strict=True):
        # The task's model, eval and run rows join the store (a proxy trained elsewhere, recorded here).
        for t, rows in (("runs", r["runs"]), ("models", r["rows"]["models"]), ("evals", r["rows"]["evals"])):
            keys = {"runs": ("run_id",), "models": ("model_id",), "evals": ("model_id", "run_id")}[t]
            fresh = [x for x in rows if not store.scalar(f"SELECT count(*) FROM {t} WHERE "
                                                         + " AND ".join(f"{k} = ?" for k in keys), [x[k] for k in keys])]
            if fresh:
                store.append_rows(t, fresh)
        out.append((i, w, {"mix_id": mixes[i], "model_id": r["model_id"], "target_bpc": r["target_bpc"],
                           "general_bpc": r["general_bpc"]}))
    snap.unlink(missing_ok=True)
    return out


def show(store: Store, ref: str) -> dict[str, Any]:
    """A search: its settings, every proxy, the fit and the choice."""
    rows = store.rows("""SELECT search_id, name, recipe, config, status, result, chosen_mix_id, run_id, created_at
                         FROM mix_searches WHERE search_id = ? OR starts_with(search_id, ?) OR name = ?
                         ORDER BY created_at DESC""", [ref, ref, ref])
    if not rows:
        raise NotFoundError(f"mix search {ref!r} is not in the store; `mixline sql \"SELECT * FROM mix_searches\"` lists them")
    s = rows[0]
    s["recipe"], s["config"] = json.loads(s["recipe"]), json.loads(s["config"])
    s["result"] = json.loads(s["result"]) if s["result"] else None
    s["proxies"] = store.rows("""SELECT idx, role, weights, mix_id, model_id, seed, target_bpc, general_bpc
                                 FROM search_proxies WHERE search_id = ? ORDER BY idx""", [s["search_id"]])
    for p in s["proxies"]:
        p["weights"] = json.loads(p["weights"])
    return s


def for_mix(store: Store, mix_id: str) -> dict[str, Any] | None:
    """The search whose chosen weights a mix has, with how well it predicted (None if none)."""
    if not store.table_exists("mix_searches"):  # a store from before searches, opened read-only
        return None
    row = store.execute("SELECT search_id, result FROM mix_searches WHERE chosen_mix_id = ?", [mix_id]).fetchone()
    if row is None:
        return None
    r = json.loads(row[1]) if row[1] else {}
    fit = r.get("fit", {}).get("target", {})
    return {"search_id": row[0], "proxies": r.get("proxies"), "spearman_loo": fit.get("spearman_loo"), "r2_loo": fit.get("r2_loo"),
            "predicted_gain_bpc": r.get("predicted", {}).get("gain_bpc"), "gain_sd": r.get("predicted", {}).get("gain_sd"),
            "verdict": r.get("verdict")}
