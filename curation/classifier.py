"""Learned classifiers, trained on the store's own samples and recorded as lineage.

A classifier learns "samples like these" against "samples like those" (or one class per value
of a column, such as `domain`) from samples the store already holds. Two methods:

- `ngram`: a linear model over hashed word unigrams and bigrams, as fastText and DCLM's
  quality filter use. Features are sublinear term counts, L2-normalised, hashed into
  `n_features` buckets with xxh64 (stable across processes and machines); the model is
  scikit-learn's logistic regression. Scoring needs no model download and runs in the
  thousands of documents a second per core.
- `embedding`: logistic regression over the MiniLM sentence embeddings that the store caches
  (see `curation.embed`), so a store that ran semantic dedup pays no new embeddings.

Training (`pipelines.classifiers.train`) builds the samples it learns from as a mix (positives, negatives, and a held-out
split, with train samples near-duplicating a held-out one excluded), so `impact` of any
training sample reaches the classifier, and through `classifier_uses` every run and mix that
its scores shaped. The weights live in the store, with their hash; the classifier id is the
hash of its name, method, parameters, training mix and weights.

Scores are cached in `classifier_scores`, one row per (classifier, sample, class): a sample is
never scored twice by the same classifier.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash
import zstandard
from mixline.store.classifiers import lookup
from mixline.store.ids import canonical_json
from mixline.store.store import Store

from mixline.errors import ConfigError

METHODS = ("ngram", "embedding")
BINARY_LABELS = ("negative", "positive")
_TOKEN = re.compile(r"\w+")
_MIX = np.uint64(0x9E3779B97F4A7C15)
_FORMAT = b"MXLC1"


# -- features -----------------------------------------------------------------------------------


class HashedNgrams:
    """Word unigram and bigram counts of lowercased text, hashed into `n_features` buckets.

    Rows are sublinear counts (1 + log n), L2-normalised. Words are `\\w+` runs, so every
    script with spaces between words gets words; text past `max_chars` is not read.
    """

    def __init__(self, n_features: int = 2**20, ngrams: int = 2, max_chars: int = 20_000) -> None:
        if n_features < 2 or n_features & (n_features - 1):
            raise ConfigError(f"n_features = {n_features}: use a power of two, e.g. 1048576")
        if ngrams not in (1, 2):
            raise ConfigError(f"ngrams = {ngrams}: use 1 (words) or 2 (words and word pairs)")
        self.n_features = n_features
        self.ngrams = ngrams
        self.max_chars = max_chars
        self._hashes: dict[str, int] = {}

    def config(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "ngrams": self.ngrams, "max_chars": self.max_chars}

    def _word_hashes(self, words: list[str]) -> list[int]:
        cache = self._hashes
        out: list[int | None] = [*map(cache.get, words)]
        if None in out:
            if len(cache) > 2_000_000:  # a bounded memo: words follow Zipf's law, so it refills fast
                cache.clear()
            h = xxhash.xxh64_intdigest
            for i, w in enumerate(words):
                if out[i] is None:
                    out[i] = cache[w] = h(w.encode("utf-8", "surrogatepass"))
        return out  # type: ignore[return-value]

    def transform(self, texts: list[str]) -> Any:
        """A scipy CSR matrix, one row per text."""
        from scipy import sparse

        lengths = np.zeros(len(texts), dtype=np.int64)
        flat: list[int] = []
        for i, t in enumerate(texts):
            words = _TOKEN.findall(t[: self.max_chars].lower())
            lengths[i] = len(words)
            flat.extend(self._word_hashes(words))
        h = np.array(flat, dtype=np.uint64)
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        mask = np.uint64(self.n_features - 1)
        cols = [(h & mask).astype(np.int64)]
        rows = [doc]
        if self.ngrams == 2 and len(h) > 1:
            same = doc[1:] == doc[:-1]
            with np.errstate(over="ignore"):
                pair = h[:-1] * _MIX + (h[1:] ^ (h[1:] >> np.uint64(29)))
            cols.append((pair[same] & mask).astype(np.int64))
            rows.append(doc[:-1][same])
        r, c = np.concatenate(rows), np.concatenate(cols)
        x = sparse.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(len(texts), self.n_features))
        x.sum_duplicates()
        x.data = 1.0 + np.log(x.data)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.diags((1.0 / norms).astype(np.float32)) @ x


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Model:
    """A linear model: `coef` (classes or 1 x features) and `intercept`, with what it reads."""

    method: str
    labels: list[str]
    coef: np.ndarray
    intercept: np.ndarray
    features: dict[str, Any]
    _featurizer: Any = field(default=None, repr=False)

    @property
    def binary(self) -> bool:
        return len(self.labels) == 2 and self.coef.shape[0] == 1

    def featurizer(self) -> HashedNgrams:
        if self._featurizer is None:
            self._featurizer = HashedNgrams(**self.features)
        return self._featurizer

    def decision(self, x: Any) -> np.ndarray:
        z = x @ self.coef.T
        return np.asarray(z, dtype=np.float64).reshape(x.shape[0], -1) + self.intercept

    def proba(self, x: Any) -> np.ndarray:
        """Class probabilities, one column per label."""
        z = self.decision(x)
        if self.binary:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p, p], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return out

    def to_bytes(self) -> bytes:
        """A deterministic, compressed serialisation: only the feature columns with weight."""
        cols = np.flatnonzero(np.any(self.coef != 0, axis=0)).astype(np.int64)
        header = canonical_json({"method": self.method, "labels": self.labels, "features": self.features,
                                 "shape": list(self.coef.shape)}).encode()
        parts = [_FORMAT, struct.pack("<Q", len(header)), header, struct.pack("<Q", len(cols)),
                 cols.tobytes(), self.coef[:, cols].astype(np.float32).tobytes(),
                 self.intercept.astype(np.float64).tobytes()]
        return zstandard.ZstdCompressor(level=9).compress(b"".join(parts))

    @classmethod
    def from_bytes(cls, blob: bytes) -> Model:
        raw = zstandard.ZstdDecompressor().decompress(blob)
        if not raw.startswith(_FORMAT):
            raise ConfigError("classifier weights are not in mixline's format (MXLC1)")
        pos = len(_FORMAT)
        (hl,) = struct.unpack_from("<Q", raw, pos)
        pos += 8
        header = json.loads(raw[pos:pos + hl])
        pos += hl
        (nc,) = struct.unpack_from("<Q", raw, pos)
        pos += 8
        cols = np.frombuffer(raw, dtype=np.int64, count=nc, offset=pos)
        pos += 8 * nc
        k, d = header["shape"]
        vals = np.frombuffer(raw, dtype=np.float32, count=k * nc, offset=pos).reshape(k, nc)
        pos += 4 * k * nc
        intercept = np.frombuffer(raw, dtype=np.float64, count=k, offset=pos).copy()
        coef = np.zeros((k, d), dtype=np.float32)
        coef[:, cols] = vals
        return cls(header["method"], list(header["labels"]), coef, intercept, header["features"])


def weight_hash(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(zstandard.ZstdDecompressor().decompress(blob)).hexdigest()


# -- features of stored samples -------------------------------------------------------------------


def featurize(store: Store | None, model_or_method: Model | str, texts: list[str], hashes: list[str],
              features: dict[str, Any] | None = None) -> Any:
    """The model's input for these texts: hashed n-grams, or (cached) MiniLM embeddings."""
    method = model_or_method.method if isinstance(model_or_method, Model) else model_or_method
    if method == "ngram":
        if isinstance(model_or_method, Model):
            return model_or_method.featurizer().transform(texts)
        return HashedNgrams(**(features or {})).transform(texts)
    from mixline.curation.embed import DEFAULT_MODEL, Embedder, cached_embeddings

    name = (model_or_method.features if isinstance(model_or_method, Model) else (features or {})).get("model", DEFAULT_MODEL)
    vecs = cached_embeddings(store, Embedder(name), hashes, texts)
    # Unit vectors have components near 1/sqrt(d); scaled to about unit variance, the same
    # regularisation strength suits both methods.
    return vecs * np.float32(np.sqrt(vecs.shape[1]))


# -- fitting and held-out metrics -------------------------------------------------------------


def fit(method: str, x: Any, y: np.ndarray, labels: list[str], features: dict[str, Any], *, c: float = 4.0,
        seed: int = 0) -> Model:
    """Logistic regression (class-balanced) over the features; columns follow `labels`."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed,
                             solver="liblinear" if len(labels) == 2 else "lbfgs")
    clf.fit(x, y)
    coef = np.asarray(clf.coef_, dtype=np.float32)
    intercept = np.asarray(clf.intercept_, dtype=np.float64)
    # The model's columns follow `labels`; scikit-learn's follow the classes it saw.
    if len(labels) > 2 and list(clf.classes_) != list(range(len(labels))):
        full_c = np.zeros((len(labels), coef.shape[1]), np.float32)
        full_i = np.full(len(labels), -30.0)
        for j, c in enumerate(clf.classes_):
            full_c[int(c)], full_i[int(c)] = coef[j], intercept[j]
        coef, intercept = full_c, full_i
    return Model(method, labels, coef, intercept, features)


def evaluate(model: Model, proba: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Held-out precision, recall, F1 and AUC (binary: of `positive` at 0.5; multi-class: per
    class, macro averages and accuracy)."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    pred = proba.argmax(axis=1)
    out: dict[str, Any] = {"accuracy": float((pred == y).mean())}
    if model.binary:
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=[1], average="binary", zero_division=0)
        out.update(precision=float(p), recall=float(r), f1=float(f))
        out["auc"] = float(roc_auc_score(y, proba[:, 1])) if len(set(y.tolist())) == 2 else None
        return out
    k = len(model.labels)
    p, r, f, n = precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    out["per_class"] = {model.labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                          "n": int(n[i])} for i in range(k)}
    present = sorted(set(y.tolist()))
    out.update(macro_precision=float(np.mean(p[present])), macro_recall=float(np.mean(r[present])),
               macro_f1=float(np.mean(f[present])))
    try:
        out["auc"] = float(roc_auc_score(y, proba[:, present] / proba[:, present].sum(axis=1, keepdims=True),
                                         multi_class="ovr", labels=present)) if len(present) > 2 else None
    except ValueError:
        out["auc"] = None
    return out


def rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return obj


# -- recorded classifiers -------------------------------------------------------------------------


@dataclass
class Classifier:
    """A classifier as the store recorded it."""

    classifier_id: str
    name: str
    version: int
    method: str
    labels: list[str]
    params: dict[str, Any]
    mix_id: str
    weight_hash: str
    metrics: dict[str, Any]
    run_id: str
    created_at: Any = None
    _model: Model | None = field(default=None, repr=False)
    _blob: bytes | None = field(default=None, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def binary(self) -> bool:
        """Two classes, negative and positive: read from the record, without loading the weights."""
        return self.labels == list(BINARY_LABELS)

    @property
    def model(self) -> Model:
        if self._model is None:
            assert self._blob is not None
            self._model = Model.from_bytes(self._blob)
        return self._model

    def summary(self) -> dict[str, Any]:
        return {"classifier_id": self.classifier_id, "name": self.name, "version": self.version, "method": self.method,
                "labels": self.labels, "params": self.params, "mix_id": self.mix_id, "weight_hash": self.weight_hash,
                "metrics": self.metrics, "run_id": self.run_id, "created_at": self.created_at}


def load(store: Store, ref: str, version: int | None = None) -> Classifier:
    """A recorded classifier by id, NAME (newest version) or NAME@vN."""
    r = lookup(store, ref, version, weights=True)
    return Classifier(r["classifier_id"], r["name"], int(r["version"]), r["method"], json.loads(r["labels"]),
                      json.loads(r["params"]), r["mix_id"], r["weight_hash"], json.loads(r["metrics"] or "{}"),
                      r["run_id"], r["created_at"], _blob=bytes(r["weights"]))


def list_all(store: Store) -> list[dict[str, Any]]:
    rows = store.rows("""SELECT c.classifier_id, c.name, c.version, c.method, c.labels, c.mix_id, c.metrics, c.created_at,
                                (SELECT count(DISTINCT sample_id) FROM classifier_scores s WHERE s.classifier_id = c.classifier_id) AS scored,
                                (SELECT count(*) FROM classifier_uses u WHERE u.classifier_id = c.classifier_id) AS uses
                         FROM classifiers c ORDER BY c.name, c.version""")
    for r in rows:
        r["labels"] = json.loads(r["labels"])
        r["metrics"] = json.loads(r["metrics"] or "{}")
    return rows


def show(store: Store, ref: str) -> dict[str, Any]:
    """A classifier, its training mix, held-out metrics, the scores it gave, and what used them."""
    c = load(store, ref)
    out = c.summary()
    out["training"] = store.rows("""SELECT m.split, count(*) AS docs FROM mix_members m WHERE m.mix_id = ?
                                    GROUP BY 1 ORDER BY 1""", [c.mix_id])
    out["scored"] = int(store.scalar("SELECT count(DISTINCT sample_id) FROM classifier_scores WHERE classifier_id = ?",
                                     [c.classifier_id]))
    out["score_quantiles"] = _quantiles(store, c)
    out["uses"] = store.rows("""SELECT u.run_id, r.kind, u.step, u.mix_id, r.started_at FROM classifier_uses u
                                LEFT JOIN runs r USING (run_id) WHERE u.classifier_id = ? ORDER BY r.started_at""",
                             [c.classifier_id])
    return out


def _quantiles(store: Store, c: Classifier) -> dict[str, Any]:
    row = store.one(f"""SELECT count(*), quantile_cont(score, [0.1, 0.5, 0.9]) FROM (
                          SELECT sample_id, max(score) AS score FROM classifier_scores
                          WHERE classifier_id = ? {"AND label = 'positive'" if c.binary else ""} GROUP BY 1)""",
                    [c.classifier_id])
    if not row[0]:
        return {}
    q = row[1]
    return {"n": int(row[0]), "p10": round(q[0], 4), "p50": round(q[1], 4), "p90": round(q[2], 4)}


# -- scoring --------------------------------------------------------------------------------------


SCORES_SCHEMA = pa.schema([("classifier_id", pa.string()), ("sample_id", pa.string()), ("label", pa.string()),
                           ("score", pa.float64()), ("run_id", pa.string())])


def score_rows(c: Classifier, ids: list[str], proba: np.ndarray, run_id: str) -> pa.Table:
    """Cache rows: the positive class's probability (binary), or every class's (multi-class)."""
    if c.model.binary:
        return pa.table({"classifier_id": [c.classifier_id] * len(ids), "sample_id": ids,
                         "label": ["positive"] * len(ids), "score": proba[:, 1].astype(np.float64),
                         "run_id": [run_id] * len(ids)}, schema=SCORES_SCHEMA)
    k = len(c.labels)
    return pa.table({"classifier_id": [c.classifier_id] * (len(ids) * k), "sample_id": [i for i in ids for _ in range(k)],
                     "label": c.labels * len(ids), "score": proba.reshape(-1).astype(np.float64),
                     "run_id": [run_id] * (len(ids) * k)}, schema=SCORES_SCHEMA)


def cached(store: Store | None, c: Classifier, ids: list[str]) -> dict[str, np.ndarray]:
    """Cached class probabilities of these samples, by sample id (missing ones are absent)."""
    if store is None or not ids:
        return {}
    store.con.register("_want_scores", pa.table({"sample_id": ids}))
    try:
        got = store.execute("""SELECT s.sample_id, s.label, any_value(s.score) FROM classifier_scores s
                               SEMI JOIN _want_scores w ON s.sample_id = w.sample_id
                               WHERE s.classifier_id = ? GROUP BY 1, 2""", [c.classifier_id]).fetchall()
    finally:
        store.con.unregister("_want_scores")
    out: dict[str, np.ndarray] = {}
    col = {lab: i for i, lab in enumerate(c.labels)}
    for sid, label, score in got:
        v = out.setdefault(sid, np.full(len(c.labels), np.nan))
        if c.model.binary:
            v[1], v[0] = score, 1.0 - score
        else:
            v[col[label]] = score
    return {k: v for k, v in out.items() if not np.isnan(v).any()}


def score_batch(store: Store | None, c: Classifier, ids: list[str], texts: list[str], hashes: list[str],
                run_id: str) -> tuple[np.ndarray, pa.Table | None]:
    """Class probabilities for a batch, from the cache where present; new cache rows for the rest."""
    have = cached(store, c, ids)
    proba = np.zeros((len(ids), len(c.labels)))
    todo = [i for i, sid in enumerate(ids) if sid not in have]
    for i, sid in enumerate(ids):
        if sid in have:
            proba[i] = have[sid]
    if not todo:
        return proba, None
    x = featurize(store, c.model, [texts[i] for i in todo], [hashes[i] for i in todo])
    p = c.model.proba(x)
    proba[todo] = p
    return proba, score_rows(c, [ids[i] for i in todo], p, run_id)


def ensure_scores(store: Store, c: Classifier, candidates_sql: str, run_id: str, batch: int = 10_000) -> int:
    """Score every sample in `candidates_sql` (a query of sample ids) that has no cached score; returns how many."""
    store.execute(f"""CREATE OR REPLACE TEMP TABLE _to_score AS
        SELECT s.sample_id, s.text, s.content_hash, row_number() OVER (ORDER BY s.sample_id) AS _n FROM samples s
        WHERE s.sample_id IN ({candidates_sql})
          AND NOT EXISTS (SELECT 1 FROM classifier_scores cs WHERE cs.classifier_id = ? AND cs.sample_id = s.sample_id)""",
                  [c.classifier_id])
    try:
        n = int(store.scalar("SELECT count(*) FROM _to_score"))
        for lo in range(0, n, batch):
            # Pages by row number: LIMIT/OFFSET over an unordered scan could skip or repeat rows.
            rows = store.execute("SELECT sample_id, text, content_hash FROM _to_score WHERE _n > ? AND _n <= ? ORDER BY _n",
                                 [lo, lo + batch]).fetchall()
            x = featurize(store, c.model, [r[1] for r in rows], [r[2] for r in rows])
            store.append("classifier_scores", score_rows(c, [r[0] for r in rows], c.model.proba(x), run_id))
    finally:
        store.execute("DROP TABLE IF EXISTS _to_score")
    return n


def score(store: Store, ref: str, where: str | None = None) -> dict[str, Any]:
    """`mixline classifier score`: cache scores for the samples of `where` (eval samples excluded)."""
    from mixline.store.select import scope

    c = load(store, ref)
    pred = scope(store, where, "s")
    with store.run("classifier", "classifier_score_v1", {"classifier_id": c.classifier_id, "where": where}) as run:
        n = ensure_scores(store, c, f"SELECT s.sample_id FROM samples s WHERE s.kind <> 'eval' AND {pred}", run.run_id)
        store.append_rows("classifier_uses", [{"classifier_id": c.classifier_id, "run_id": run.run_id, "mix_id": None,
                                               "step": "classifier_score_v1"}])
        run.stats.update({"classifier_id": c.classifier_id, "scored": n})
        out = {"classifier_id": c.classifier_id, "ref": c.ref, "scored": n, "run_id": run.run_id}
    out["score_quantiles"] = _quantiles(store, c)
    return out


def mix_classifiers(store: Store, mix_id: str) -> list[dict[str, Any]]:
    """The classifiers whose scores shaped a mix (rank_by, score() or label() in its recipe),
    with their training mix and held-out metrics, for `mix show` and the cards."""
    rows = store.rows("""SELECT DISTINCT c.classifier_id, c.name, c.version, c.method, c.labels, c.mix_id AS trained_on,
                                c.weight_hash, c.metrics
                         FROM classifier_uses u JOIN classifiers c USING (classifier_id)
                         WHERE u.mix_id = ? ORDER BY c.name, c.version""", [mix_id])
    for r in rows:
        r["labels"] = json.loads(r["labels"])
        r["metrics"] = json.loads(r["metrics"] or "{}")
    return rows


def describe_metrics(m: dict[str, Any]) -> str:
    """Held-out metrics in one line."""
    auc = f", AUC {m['auc']:.3f}" if m.get("auc") is not None else ""
    if "precision" in m:
        return f"held out: precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}{auc}"
    if "macro_f1" in m:
        return f"held out: accuracy {m['accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}{auc}"
    return "held out: (no held-out samples)"
