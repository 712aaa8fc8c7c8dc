"""Echo-chamber drift: how far a batch of text is from a frozen human reference set.

Every metric is anchored to the reference. A metric's distance is how far the batch's
value is from a same-sized sample of the reference (or, for two-sample metrics such as
Jensen-Shannon, MMD and the Fréchet distance, the distance between the two sets). The
thresholds come from random pairs of disjoint reference samples of the same size: a tail
fitted to those distances (see `calibrate`), Bonferroni-corrected so that, across all
metrics at once, two samples of human text raise an alert in only about `alpha` of the
pairs. An alert therefore means "further apart than two samples of human text are", and
it names the metrics that moved, in which direction.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mixline.curation.normalize import words
from mixline.store.lineage import model_ancestry

from mixline.errors import ConfigError

TEXT_METRICS = ("distinct_1", "distinct_2", "distinct_3", "unigram_entropy", "compression_ratio",
                "mean_words", "js_distance", "ref_vocab_coverage", "invented_word_share", "self_bleu",
                "rare_word_coverage")
EMBED_METRICS = ("mmd2", "frechet", "vendi", "spread")
# Metrics compared as a signed difference (the batch can be too high or too low); the rest
# are distances between the two sets, where only "too far" counts.
SIGNED = ("distinct_1", "distinct_2", "distinct_3", "unigram_entropy", "compression_ratio", "mean_words",
          "self_bleu", "vendi", "spread", "rare_word_coverage")
# What a move means, in words: (when the value is below the reference's, when above).
DIRECTIONS: dict[str, tuple[str, str]] = {
    "distinct_1": ("less diverse than human text (fewer distinct words)", "more varied words than human text"),
    "distinct_2": ("less diverse than human text (fewer distinct word pairs)", "more varied word pairs than human text"),
    "distinct_3": ("less diverse than human text (fewer distinct word triples)", "more varied word triples than human text"),
    "unigram_entropy": ("narrower word distribution than human text", "flatter word distribution than human text"),
    "compression_ratio": ("more repetitive than human text (compresses better)", "less compressible than human text (noisier)"),
    "mean_words": ("shorter than human text", "longer than human text"),
    "self_bleu": ("texts less alike each other than human texts are", "texts more alike each other than human texts are"),
    "rare_word_coverage": ("loses the tail: uses fewer of the human text's rare words", "uses more rare words than human text"),
    "vendi": ("fewer distinct meanings than human text (embeddings)", "more spread-out meanings than human text"),
    "spread": ("embeddings packed tighter than human text's", "embeddings spread wider than human text's"),
    "js_distance": ("", "word distribution further from human text's"),
    "ref_vocab_coverage": ("", "leaves more of the human vocabulary unused"),
    "invented_word_share": ("", "more words that human text never uses"),
    "mmd2": ("", "embedding distribution further from human text's"),
    "frechet": ("", "embedding distribution further from human text's (Fréchet)"),
}


# The way each metric moves when a model's output collapses (Shumailov et al., Nature 2024:
# the tails go first, then the output narrows and repeats itself): -1 when the value falls
# below human text's, +1 when it rises above. ref_vocab_coverage is a distance (1 - coverage):
# +1. Metrics not listed (length, JS distance, invented words, MMD, Fréchet) say that the text
# differs, not that it collapsed; they are reported but never trip the gate.
COLLAPSE: dict[str, int] = {"distinct_1": -1, "distinct_2": -1, "distinct_3": -1, "unigram_entropy": -1,
                            "compression_ratio": -1, "self_bleu": +1, "rare_word_coverage": -1, "vendi": -1,
                            "spread": -1, "ref_vocab_coverage": +1}
TAIL = ("rare_word_coverage", "ref_vocab_coverage")


def collapse_effect(metric: str, value: float, reference_value: float | None, null_mean: float) -> float:
    """How far a metric moved toward collapse, relative to human text's level (0 when it moved
    the other way, or is not a collapse metric). 0.5 = lost half of the human level."""
    sign = COLLAPSE.get(metric)
    if sign is None:
        return 0.0
    if metric == "ref_vocab_coverage":
        human = 1.0 - null_mean  # the share of one human sample's vocabulary another one uses
        return max(0.0, (human - value) / human) if human > 0 else 0.0
    if reference_value is None or reference_value == 0:
        return 0.0
    return max(0.0, sign * (value - reference_value) / abs(reference_value))


def human_level(metric: str, reference_value: float | None, null_mean: float | None) -> float | None:
    """What human text scores on a metric, for reports. Vocabulary coverage is measured against
    the reference itself (which covers all of its own words), so its human level is what one
    human sample covers of another: 1 - the null mean of its distance."""
    if metric == "ref_vocab_coverage" and null_mean is not None:
        return 1.0 - null_mean
    return reference_value


def trips_gate(m: MetricResult, config: DriftConfig) -> bool:
    """A metric trips the gate when it moved beyond human-vs-human noise (`m.alert`), toward
    collapse, and by a practical margin: min_tail_loss for the tail metrics, min_effect else.
    A mix that keeps its human data and adds a small model's noisier text moves metrics (it is
    less compressible, further in JS distance) without moving toward collapse."""
    effect = collapse_effect(m.metric, m.value, m.reference_value, m.null_mean)
    return bool(m.alert and effect >= (config.min_tail_loss if m.metric in TAIL else config.min_effect))


def direction(metric: str, value: float, reference_value: float | None, distance: float) -> str:
    """The move of a metric in words: "less diverse than human text", "more repetitive"."""
    low, high = DIRECTIONS.get(metric, ("", ""))
    if metric in SIGNED and reference_value is not None:
        return low if value < reference_value else high
    return high if distance > 0 else ""


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9),
        np.uint64(0xD6E8FEB86659FD93))


def _gram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit value per word n-gram of a text (exact for n <= 2, hashed above)."""
    m = len(ids) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64)
    u = ids.astype(np.uint64)
    if n == 1:
        return u
    if n == 2:
        return (u[:-1] << np.uint64(32)) | u[1:]
    with np.errstate(over="ignore"):
        h = u[:m] * _MIX[0]
        for j in range(1, n):
            h = (h ^ (u[j:j + m] * _MIX[j])) * _MIX[(j + 1) % 4]
            h ^= h >> np.uint64(31)
    return h


class TextIndex:
    """Word ids and n-gram values of every text, computed once, so that the text metrics
    of any subset (the batch, and the bootstrap's many reference samples) are numpy
    reductions over arrays rather than Python loops over tokens."""

    def __init__(self, texts: list[str], max_n: int = 4) -> None:
        vocab: dict[bytes, int] = {}
        put = vocab.setdefault
        self.ids = [np.array([put(w, len(vocab)) for w in words(t)], dtype=np.int64) for t in texts]
        self.vocab_size = len(vocab)
        self.grams = {n: [_gram_hashes(x, n) for x in self.ids] for n in range(2, max_n + 1)}
        self.lengths = np.array([len(x) for x in self.ids], dtype=np.float64)
        self.compression = np.array([len(zlib.compress(b, 6)) / max(1, len(b)) for b in (t.encode("utf-8") for t in texts)])

    def rare_words(self, idx: np.ndarray, mass: float = 0.1) -> np.ndarray:
        """A mask of the words that make up the rarest `mass` of the tokens of texts `idx`.

        The compared samples must not be among `idx`: a word rare in the reference occurs in
        one or two of its texts, so a sample that holds those texts would look tail-rich."""
        counts = np.bincount(self._cat(self.ids, idx).astype(np.int64), minlength=self.vocab_size)
        seen = np.flatnonzero(counts)
        order = seen[np.argsort(counts[seen], kind="stable")]
        cum = np.cumsum(counts[order])
        rare = np.zeros(self.vocab_size, dtype=bool)
        if len(cum):
            rare[order[cum <= mass * cum[-1]]] = True
        return rare

    def _cat(self, arrays: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
        parts = [arrays[i] for i in idx]
        return np.concatenate(parts) if parts else np.empty(0, np.uint64)

    def stats(self, idx: np.ndarray, rng: np.random.Generator, k: int = 30, rare: np.ndarray | None = None) -> dict[str, Any]:
        uni = np.bincount(self._cat(self.ids, idx).astype(np.int64), minlength=self.vocab_size)
        total = int(uni.sum())
        out: dict[str, Any] = {"distinct_1": float((uni > 0).sum() / total) if total else 0.0}
        for n in (2, 3):
            g = self._cat(self.grams[n], idx)
            out[f"distinct_{n}"] = float(len(np.unique(g)) / len(g)) if len(g) else 0.0
        p = uni[uni > 0] / max(total, 1)
        out["unigram_entropy"] = float(-(p * np.log2(p)).sum())
        out["compression_ratio"] = float(self.compression[idx].mean())
        out["mean_words"] = float(self.lengths[idx].mean())
        if rare is not None and rare.any():
            # The tail: the share of the reference's rarest words (the bottom tenth of its token
            # mass) that these texts use at all. Collapse loses the tail first (Shumailov et al. 2024).
            out["rare_word_coverage"] = float((uni[: len(rare)][rare] > 0).sum() / rare.sum())
        out["self_bleu"] = self.self_bleu(idx, rng, k)
        out["_unigrams"] = uni
        return out

    def self_bleu(self, idx: np.ndarray, rng: np.random.Generator, k: int = 30, n: int = 4) -> float:
        """Mean BLEU-n of k sampled texts against the rest of the set (higher = more alike)."""
        if len(idx) < 3:
            return 0.0
        chosen = rng.choice(idx, size=min(k, len(idx)), replace=False)
        pools = []
        for g in range(1, n + 1):
            arrays = [a.astype(np.uint64) for a in self.ids] if g == 1 else self.grams[g]
            values, counts = np.unique(self._cat(arrays, idx), return_counts=True)
            pools.append((arrays, values, counts))
        scores = []
        for j in chosen:
            logp = 0.0
            for arrays, values, counts in pools:
                own, own_counts = np.unique(arrays[j], return_counts=True)
                if not len(own):
                    logp += math.log(1e-9)
                    continue
                # Matches against the other texts: the pool minus this text's own n-grams.
                pool = counts[np.searchsorted(values, own)]
                match = int(np.minimum(own_counts, pool - own_counts).sum())
                logp += math.log(max(match, 1e-9) / own_counts.sum())
            scores.append(math.exp(logp / n))
        return float(np.mean(scores))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors."""
    a, b = p / max(p.sum(), 1), q / max(q.sum(), 1)
    m = (a + b) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        js = 0.5 * np.where(a > 0, a * np.log2(a / m), 0).sum() + 0.5 * np.where(b > 0, b * np.log2(b / m), 0).sum()
    return math.sqrt(max(float(js), 0.0))


def _rbf(x: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return np.exp(-gamma * np.maximum(d, 0))


def mmd2(x: np.ndarray, y: np.ndarray, gamma: float) -> float:
    """Unbiased MMD² with an RBF kernel."""
    kxx, kyy, kxy = _rbf(x, x, gamma), _rbf(y, y, gamma), _rbf(x, y, gamma)
    n, m = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


def mmd_permutation_p(x: np.ndarray, y: np.ndarray, gamma: float, perms: int, rng: np.random.Generator) -> tuple[float, float]:
    """MMD² and its permutation-test p-value (kernel matrix computed once)."""
    z = np.concatenate([x, y])
    k = _rbf(z, z, gamma)
    n = len(x)
    np.fill_diagonal(k, 0.0)

    def stat(idx: np.ndarray) -> float:
        a, b = idx[:n], idx[n:]
        m = len(b)
        return float(k[np.ix_(a, a)].sum() / (n * (n - 1)) + k[np.ix_(b, b)].sum() / (m * (m - 1)) - 2 * k[np.ix_(a, b)].mean())

    base = np.arange(len(z))
    observed = stat(base)
    count = sum(stat(rng.permutation(base)) >= observed for _ in range(perms))
    return observed, (count + 1) / (perms + 1)


def frechet(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets.

    tr sqrt(Cx Cy) is the sum of the singular values of Ax Ay^T / sqrt((n-1)(m-1)) for
    the centred sets Ax, Ay, so no d x d matrix square root is taken; with more samples
    than dimensions, QR first shrinks each set to d rows.
    """
    mx, my = x.mean(0), y.mean(0)
    a, b = x - mx, y - my
    tr = float((a * a).sum() / (len(x) - 1) + (b * b).sum() / (len(y) - 1))
    if len(a) > a.shape[1]:
        a = np.linalg.qr(a, mode="r")
    if len(b) > b.shape[1]:
        b = np.linalg.qr(b, mode="r")
    cross = float(np.linalg.svd(a @ b.T, compute_uv=False).sum()) / math.sqrt((len(x) - 1) * (len(y) - 1))
    return float(((mx - my) ** 2).sum() + tr - 2 * cross)


def vendi(x: np.ndarray) -> float:
    """Vendi score: exp of the entropy of the eigenvalues of the cosine similarity matrix / n.

    The nonzero eigenvalues of X X^T / n are those of X^T X / n, the smaller matrix.
    """
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = (x.T @ x if len(x) > x.shape[1] else x @ x.T) / len(x)
    ev = np.clip(np.linalg.eigvalsh(k), 0, None)
    ev = ev[ev > 1e-12]
    return float(np.exp(-(ev * np.log(ev)).sum()))


def spread(x: np.ndarray) -> float:
    return float(np.linalg.norm(x - x.mean(0), axis=1).mean())


@dataclass
class MetricResult:
    metric: str
    value: float
    reference_value: float | None
    distance: float
    threshold: float
    alert: bool
    # The null: mean and spread of this metric's signed distance between two reference samples.
    null_mean: float = 0.0
    null_sd: float = 0.0
    signed_distance: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "reference_value": self.reference_value,
                "distance": self.distance, "threshold": self.threshold, "alert": self.alert,
                "direction": direction(self.metric, self.value, self.reference_value, self.signed_distance)
                if self.alert else "", "null_mean": self.null_mean, "null_sd": self.null_sd}


@dataclass
class DriftReport:
    alert: bool
    n_batch: int
    n_reference: int
    metrics: list[MetricResult]
    mmd_p_value: float | None = None
    bootstrap: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        moved = [m.metric for m in self.metrics if m.alert]
        return {"alert": self.alert, "moved": moved, "n_batch": self.n_batch, "n_reference": self.n_reference,
                "mmd_p_value": self.mmd_p_value, "bootstrap": self.bootstrap, "notes": self.notes,
                "metrics": [m.as_dict() for m in self.metrics]}


@dataclass(frozen=True)
class DriftConfig:
    bootstrap: int = 30
    # Family-wise false-alert rate on human-vs-human pairs, across all metrics at once.
    alpha: float = 0.02
    # The gate's practical margins (see `trips_gate`): a move toward collapse must also be this
    # large relative to human text: diversity metrics by 10%, tail metrics by half.
    min_effect: float = 0.1
    min_tail_loss: float = 0.5
    max_samples: int = 700
    permutations: int = 200
    seed: int = 0
    embeddings: bool = True


def calibrate(null: dict[str, np.ndarray], alpha: float) -> dict[str, tuple[float, float]]:
    """(low, high) bounds per metric from reference-vs-reference distances.

    A few dozen pairs cannot resolve a 0.1% quantile, so a tail is fitted: a normal to the
    signed differences (two-sided), and a log-normal to the distances of the set metrics
    (one-sided; they are positive and right-skewed, where a normal fit would be too tight).
    Bonferroni over the metrics keeps the family-wise false-alert rate near `alpha`. The
    bounds never sit inside the observed null range.
    """
    from statistics import NormalDist

    k = len(null)
    z_two, z_one = NormalDist().inv_cdf(1 - alpha / (2 * k)), NormalDist().inv_cdf(1 - alpha / k)
    out: dict[str, tuple[float, float]] = {}
    for m, d in null.items():
        if m in SIGNED:
            mu, sd = float(d.mean()), float(d.std(ddof=1))
            out[m] = (min(float(d.min()), mu - z_two * sd), max(float(d.max()), mu + z_two * sd))
        elif (d > 0).all():
            logs = np.log(d)
            out[m] = (-math.inf, max(float(d.max()), float(np.exp(logs.mean() + z_one * logs.std(ddof=1)))))
        else:  # unbiased MMD² can be negative under the null
            out[m] = (-math.inf, max(float(d.max()), float(d.mean() + z_one * d.std(ddof=1))))
    return out


class DriftChecker:
    """Compares a batch with a reference; thresholds from reference-vs-reference splits."""

    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()

    def _distances(self, a: dict[str, Any], b: dict[str, Any], ea: np.ndarray | None, eb: np.ndarray | None,
                   gamma: float) -> dict[str, tuple[float, float, float]]:
        """(value of a, value of b, distance) per metric. For the SIGNED metrics the distance
        is the signed difference a - b; the others are distances already (0 = identical)."""
        out: dict[str, tuple[float, float, float]] = {}
        for m in SIGNED:
            if m in a:
                out[m] = (a[m], b[m], a[m] - b[m])
        ua, ub = a["_unigrams"], b["_unigrams"]
        js = js_distance(ua, ub)
        out["js_distance"] = (js, 0.0, js)
        vocab_b = ub > 0
        cov_a = float(((ua > 0) & vocab_b).sum() / max(1, vocab_b.sum()))
        inv_a = float(ua[~vocab_b].sum() / max(1, ua.sum()))
        out["ref_vocab_coverage"] = (cov_a, 1.0, 1.0 - cov_a)
        out["invented_word_share"] = (inv_a, 0.0, inv_a)
        if ea is not None and eb is not None:
            out["mmd2"] = (mmd2(ea, eb, gamma), 0.0, mmd2(ea, eb, gamma))
            out["frechet"] = (frechet(ea, eb), 0.0, frechet(ea, eb))
            out["vendi"] = (vendi(ea), vendi(eb), vendi(ea) - vendi(eb))
            out["spread"] = (spread(ea), spread(eb), spread(ea) - spread(eb))
        return out

    def check(self, batch: list[str], reference: list[str], batch_emb: np.ndarray | None = None,
              ref_emb: np.ndarray | None = None) -> DriftReport:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        notes = []
        if len(batch) > cfg.max_samples:
            pick = rng.choice(len(batch), cfg.max_samples, replace=False)
            batch = [batch[i] for i in pick]
            batch_emb = batch_emb[pick] if batch_emb is not None else None
        n = len(batch)
        if len(reference) < 3 * n:
            # Calibration draws pairs of disjoint reference samples as large as the batch; with
            # a third of the reference each, the pairs vary as much as batch-vs-reference does
            # (halves would always be complements of each other, and vary less).
            n = len(reference) // 3
            pick = rng.choice(len(batch), n, replace=False)
            batch = [batch[i] for i in pick]
            batch_emb = batch_emb[pick] if batch_emb is not None else None
            notes.append(f"batch subsampled to {n}, a third of the {len(reference)} reference samples")
        if n < 20:
            raise ConfigError(f"drift check needs at least 20 samples per side; got batch {len(batch)}, reference "
                              f"{len(reference)}. Widen the --batch/--reference predicates or generate more samples")
        if n < 500:
            notes.append(f"only {n} samples per side; at least 500 give stable thresholds")
        use_emb = cfg.embeddings and batch_emb is not None and ref_emb is not None
        gamma = 1.0
        if use_emb:
            assert ref_emb is not None
            sub = ref_emb[rng.choice(len(ref_emb), min(300, len(ref_emb)), replace=False)]
            d = ((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1)
            gamma = 1.0 / max(float(np.median(d[d > 0])), 1e-6)
        ref_idx = np.arange(len(reference))
        # One index over both sides, so that word ids (and so vocabularies) are shared.
        index = TextIndex(reference + batch)
        batch_idx = np.arange(len(reference), len(reference) + n)
        boot: list[dict[str, float]] = []
        for _ in range(cfg.bootstrap):
            perm = rng.permutation(ref_idx)
            a, b = perm[:n], perm[n:2 * n]
            rare = index.rare_words(perm[2 * n:])  # the tail, from reference text outside both samples
            ta, tb = index.stats(a, rng, rare=rare), index.stats(b, rng, rare=rare)
            ea = ref_emb[a] if use_emb and ref_emb is not None else None
            eb = ref_emb[b] if use_emb and ref_emb is not None else None
            boot.append({m: v[2] for m, v in self._distances(ta, tb, ea, eb, gamma).items()})
        metrics = list(boot[0])
        thresholds = calibrate({m: np.array([b[m] for b in boot]) for m in metrics}, cfg.alpha)
        r = rng.choice(ref_idx, n, replace=False)
        rest = np.setdiff1d(ref_idx, r)
        rare = index.rare_words(rest[rng.permutation(len(rest))[: len(ref_idx) - 2 * n]])  # as large as in the null
        tb_, tr_ = index.stats(batch_idx, rng, rare=rare), index.stats(r, rng, rare=rare)
        er = ref_emb[r] if use_emb and ref_emb is not None else None
        observed = self._distances(tb_, tr_, batch_emb if use_emb else None, er, gamma)
        results = []
        for m in metrics:
            value, ref_value, distance = observed[m]
            lo, hi = thresholds[m]
            alert = bool(distance > hi * 1.0000001 or distance < lo * 1.0000001) and distance != 0
            null = np.array([b[m] for b in boot])
            results.append(MetricResult(m, value, ref_value, abs(distance) if m in SIGNED else distance,
                                        hi if m not in SIGNED or distance >= 0 else -lo, alert,
                                        float(null.mean()), float(null.std(ddof=1)), distance))
        p_value = None
        if use_emb and batch_emb is not None and er is not None:
            _, p_value = mmd_permutation_p(batch_emb, er, gamma, cfg.permutations, rng)
        return DriftReport(any(x.alert for x in results), n, len(reference), results, p_value, cfg.bootstrap, notes)


def check_store(store: Any, batch_where: str, reference_where: str, config: DriftConfig | None = None,
                subject: str | None = None, reference_label: str | None = None) -> dict[str, Any]:
    """`mixline drift check`: select both sides with --where predicates, compare, record the results."""
    from mixline.curation.embed import Embedder, cached_embeddings
    from mixline.store.select import validate_where

    cfg = config or DriftConfig()
    bw, rw = validate_where(store, batch_where), validate_where(store, reference_where)
    batch = store.execute(f"SELECT content_hash, text FROM samples WHERE {bw} ORDER BY sample_id").fetchall()
    ref = store.execute(f"SELECT content_hash, text FROM samples WHERE {rw} ORDER BY sample_id").fetchall()
    be = re_ = None
    if cfg.embeddings:
        emb = Embedder()
        be = cached_embeddings(store, emb, [h for h, _ in batch], [t for _, t in batch])
        re_ = cached_embeddings(store, emb, [h for h, _ in ref], [t for _, t in ref])
    with store.run("drift", "drift_check_v1", {"batch": batch_where, "reference": reference_where, **cfg.__dict__}) as run:
        report = DriftChecker(cfg).check([t for _, t in batch], [t for _, t in ref], be, re_)
        store.append_rows("drift", [{"run_id": run.run_id, "subject": subject or batch_where, "reference": reference_label or reference_where,
                                     "metric": m.metric, "value": m.value, "reference_value": m.reference_value,
                                     "distance": m.distance, "threshold": m.threshold, "alert": m.alert,
                                     "null_mean": m.null_mean, "null_sd": m.null_sd}
                                    for m in report.metrics])
        run.stats.update({"alert": report.alert, "n_batch": report.n_batch})
        out = report.as_dict()
        out["run_id"] = run.run_id
    return out


def report_table(store: Any) -> list[dict[str, Any]]:
    """One row per drift check, oldest first, with each moved metric's value, human value,
    threshold and direction in words."""
    checks = store.rows("""
        SELECT d.run_id, min(d.created_at) AS checked_at, any_value(d.subject) AS batch, any_value(d.reference) AS reference,
               bool_or(d.alert) AS alert
        FROM drift d GROUP BY d.run_id ORDER BY checked_at""")
    moved: dict[str, list[dict[str, Any]]] = {}
    for r in store.rows("SELECT run_id, metric, value, reference_value, distance, threshold, null_mean FROM drift WHERE alert ORDER BY metric"):
        signed = r["value"] - r["reference_value"] if r["metric"] in SIGNED and r["reference_value"] is not None else r["distance"]
        human = human_level(r["metric"], r["reference_value"], r["null_mean"])
        # Coverage's threshold is on its distance (1 - coverage); say it as the coverage floor.
        threshold = 1.0 - r["threshold"] if r["metric"] == "ref_vocab_coverage" else r["threshold"]
        moved.setdefault(r["run_id"], []).append({**{k: r[k] for k in ("metric", "value")}, "threshold": threshold, "reference_value": human,
                                                  "direction": direction(r["metric"], r["value"], r["reference_value"], signed)})
    for c in checks:
        c["moved"] = moved.get(c["run_id"], [])
    return checks


def self_consumption(store: Any, mix_id: str, base_model: str | None, record: bool = True) -> dict[str, Any]:
    """Which training samples of a mix were written by the model about to be trained, or
    by one of its ancestors (self-consumption), or by another model of the same family
    (one that shares an ancestor with it, as every generation of a loop that retrains
    from the same initial weights does).

    A sample counts when its own `generations` row names such a model, or when it was
    rewritten (scrubbed, normalised) from one that does. With `record`, each flagged
    sample gets a `flagged` decision naming the generator, in a run of its own.
    """
    ancestors = model_ancestry(store, base_model)
    family: set[str] = set()
    if ancestors:
        # Every model that descends from one of the base model's ancestors.
        family = {r[0] for r in store.execute("""
            WITH RECURSIVE fam(model_id) AS (
                SELECT model_id FROM models WHERE list_contains(?, model_id)
                UNION SELECT m.model_id FROM models m JOIN fam f ON m.parent_model_id = f.model_id)
            SELECT model_id FROM fam""", [sorted(ancestors)]).fetchall()}
    rows = store.execute("""
        WITH train AS (SELECT sample_id, repeats FROM mix_members WHERE mix_id = ? AND split = 'train'),
             origin AS (  -- the sample itself, or the generated sample it was rewritten from
                SELECT t.sample_id, t.sample_id AS source_id FROM train t
                UNION ALL
                SELECT t.sample_id, e.parent_id FROM train t JOIN edges e ON e.child_id = t.sample_id
                WHERE e.relation IN ('scrubbed_from', 'normalized_from', 'rewritten_from'))
        SELECT o.sample_id, any_value(g.model_id) AS generator
        FROM origin o JOIN generations g ON g.sample_id = o.source_id
        GROUP BY o.sample_id ORDER BY o.sample_id""", [mix_id]).fetchall()
    total = store.scalar("SELECT count(*) FROM mix_members WHERE mix_id = ? AND split = 'train'", [mix_id]) or 0
    own = [(s, g) for s, g in rows if g in ancestors]
    kin = [(s, g) for s, g in rows if g in family and g not in ancestors]
    by_generator: dict[str, dict[str, Any]] = {}
    for _sample, g in rows:
        entry = by_generator.setdefault(g, {"model_id": g, "samples": 0,
                                            "relation": "ancestor" if g in ancestors else "family" if g in family else "other"})
        entry["samples"] += 1
    out = {"mix_id": mix_id, "model_id": base_model, "ancestors": ancestors, "train_samples": int(total),
           "synthetic_samples": len(rows), "self_consumed": len(own), "family": len(kin),
           "self_consumed_share": len(own) / total if total else 0.0,
           "family_share": (len(own) + len(kin)) / total if total else 0.0,
           "by_generator": sorted(by_generator.values(), key=lambda e: -e["samples"]),
           "flag": bool(own or kin)}
    flags = [(s, f"{'generated_by_ancestor' if g in ancestors else 'generated_by_family'}:{g}") for s, g in own + kin]
    if record and flags:
        # A flag already recorded (by a run that was interrupted after it, say) is not recorded twice.
        seen = set(store.execute("SELECT sample_id, reason FROM decisions WHERE step = 'self_consumption_v1'").fetchall())
        flags = [f for f in flags if f not in seen]
    if record and flags:
        with store.run("drift", "self_consumption_v1", {"mix_id": mix_id, "model_id": base_model}) as run:
            store.append_rows("decisions", [
                {"run_id": run.run_id, "sample_id": s, "step": "self_consumption_v1", "verdict": "flagged",
                 "reason": reason, "score": None} for s, reason in flags])
            run.stats.update({k: out[k] for k in ("self_consumed", "family", "train_samples")})
            out["run_id"] = run.run_id
    return out
