"""The `classifier` step: a learned classifier's score for every sample in scope.

    [[steps]]
    type = "classifier"
    name = "med"            # a classifier trained with `mixline classifier train med ...`
    threshold = 0.8         # keep samples scoring at least this (or keep_top = 0.1: the top 10%)
    mode = "drop"           # or "tag": keep everything, with the reason `low_score` below it
    kinds = ["web"]

`version` pins a classifier version (default: the newest when the run starts; the run's stats
and `classifier_uses` record which). For a multi-class classifier (`--labels domain`), `label`
names the class whose probability is the score; without it the step tags each sample with its
predicted class and that class's probability, and drops nothing.

Scores are cached in `classifier_scores` per (classifier, sample): a sample scored before is not
scored again. Each decision row carries the score, and its reason names the classifier, its
version, the score and the threshold, so `mixline why` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from mixline.curation.base import Clusters, Filter, GlobalStep, StepParams, Verdicts
from mixline.curation.classifier import Classifier, load, score_batch

from mixline.errors import ConfigError

MODES = ("drop", "tag")


@dataclass(frozen=True)
class ClassifierParams(StepParams):
    name: str = ""
    version: int | None = None
    threshold: float | None = None
    keep_top: float | None = None
    label: str | None = None
    mode: str = "drop"


def _check(p: ClassifierParams) -> None:
    if not p.name:
        raise ConfigError("step classifier: set `name`, a classifier trained with `mixline classifier train NAME ...`")
    if p.mode not in MODES:
        raise ConfigError(f"step classifier: mode = {p.mode!r}; use one of {', '.join(MODES)}")
    if p.threshold is not None and p.keep_top is not None:
        raise ConfigError("step classifier: set threshold or keep_top, not both")
    if p.threshold is not None and (not isinstance(p.threshold, int | float) or not 0 <= p.threshold <= 1):
        raise ConfigError(f"step classifier: threshold = {p.threshold!r}; use a probability from 0 to 1")
    if p.keep_top is not None and (not isinstance(p.keep_top, int | float) or not 0 < p.keep_top <= 1):
        raise ConfigError(f"step classifier: keep_top = {p.keep_top!r}; use a share in (0, 1], e.g. 0.1 for the top 10%")
    if p.version is not None and (not isinstance(p.version, int) or p.version < 1):
        raise ConfigError(f"step classifier: version = {p.version!r}; use a whole number from 1")


class _Scoring:
    """What both variants share: the classifier, loaded in `prepare`, and its cached scoring."""

    params: StepParams
    kinds: tuple[str, ...] | None
    columns: ClassVar[tuple[str, ...]] = ("content_hash",)

    def _setup(self) -> None:
        self.clf: Classifier | None = None
        self._store: Any = None
        self._run_id = ""
        self._side: list[pa.Table] = []

    @property
    def step_name(self) -> str:
        p: ClassifierParams = self.params  # type: ignore[assignment]
        return f"classifier_{p.name.replace('-', '_')}_v1"

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = super().config()  # type: ignore[misc]
        cfg["step_name"] = self.step_name
        return cfg

    def prepare(self, ctx: Any) -> None:
        p: ClassifierParams = self.params  # type: ignore[assignment]
        self.clf = load(ctx.store, p.name, p.version)
        c = self.clf
        if p.label is not None and p.label not in c.labels:
            raise ConfigError(f"step classifier: classifier {c.ref} has no label {p.label!r}; its labels are "
                              f"{', '.join(c.labels)}")
        if not c.model.binary and p.label is None and (p.threshold is not None or p.keep_top is not None):
            raise ConfigError(f"step classifier: {c.ref} has {len(c.labels)} classes; set `label` to the class whose "
                              "probability the threshold or keep_top applies to")
        self._store = ctx.store
        self._run_id = ctx.run_id
        ctx.store.append_rows("classifier_uses", [{"classifier_id": c.classifier_id, "run_id": ctx.run_id,
                                                   "mix_id": None, "step": self.step_name}])

    def __getstate__(self) -> dict[str, Any]:
        # A Ray worker gets no store connection: it scores without the cache.
        return {**self.__dict__, "_store": None}

    def drain_side_rows(self) -> list[tuple[str, pa.Table]]:
        """New cache rows since the last call, for the run's sink (the store, or a Ray shard)."""
        out, self._side = self._side, []
        return [("classifier_scores", t) for t in out]

    def _proba(self, batch: pa.Table) -> np.ndarray:
        assert self.clf is not None, "prepare() loads the classifier"
        hashes = batch.column("content_hash").to_pylist() if "content_hash" in batch.column_names \
            else [""] * batch.num_rows
        proba, rows = score_batch(self._store, self.clf, batch.column("sample_id").to_pylist(),
                                  batch.column("text").to_pylist(), hashes, self._run_id)
        if rows is not None:
            self._side.append(rows)
        return proba

    def _scores(self, proba: np.ndarray) -> tuple[np.ndarray, list[str] | None]:
        """The score each decision carries, and for an untargeted multi-class step, the label."""
        assert self.clf is not None
        p: ClassifierParams = self.params  # type: ignore[assignment]
        if self.clf.model.binary and p.label in (None, "positive"):
            return proba[:, 1], None
        if p.label is not None:
            return proba[:, self.clf.labels.index(p.label)], None
        best = proba.argmax(axis=1)
        return proba[np.arange(len(best)), best], [self.clf.labels[i] for i in best.tolist()]

    def _verdicts(self, scores: np.ndarray, labels: list[str] | None, threshold: float | None) -> Verdicts:
        assert self.clf is not None
        p: ClassifierParams = self.params  # type: ignore[assignment]
        ref = self.clf.ref
        if labels is not None or threshold is None:
            reasons: list[str | None] = [f"label:{lab} {ref} {s:.4f}" for lab, s in zip(labels, scores.tolist(), strict=True)] \
                if labels is not None else [f"score:{ref} {s:.4f}" for s in scores.tolist()]
            return Verdicts(np.ones(len(scores), dtype=bool), reasons, scores.astype(np.float64))
        low = scores < threshold
        reasons = [f"low_score:{ref} {s:.4f} < {threshold:.4f}" if lo else f"score:{ref} {s:.4f} >= {threshold:.4f}"
                   for s, lo in zip(scores.tolist(), low.tolist(), strict=True)]
        keep = ~low if p.mode == "drop" else np.ones(len(scores), dtype=bool)
        return Verdicts(keep, reasons, scores.astype(np.float64))


class ClassifierFilter(_Scoring, Filter):
    """Scores each sample; drops (or tags) those under `threshold`."""

    name = "classifier"
    Params = ClassifierParams

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        Filter.__init__(self, params, **kwargs)
        _check(self.params)  # type: ignore[arg-type]
        self._setup()

    @staticmethod
    def variant(params: dict[str, Any]) -> type[Filter] | type[GlobalStep]:
        """`keep_top` ranks every sample in scope at once, so it is a global step."""
        return ClassifierTop if params.get("keep_top") is not None else ClassifierFilter

    def decide(self, batch: pa.Table) -> Verdicts:
        p: ClassifierParams = self.params  # type: ignore[assignment]
        scores, labels = self._scores(self._proba(batch))
        return self._verdicts(scores, labels, p.threshold)


class ClassifierTop(_Scoring, GlobalStep):
    """Keeps the `keep_top` share of the samples in scope with the highest scores (ties by
    the recipe's keep order); runs with the dedup steps, over the samples the filters kept."""

    name = "classifier"
    Params = ClassifierParams

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        GlobalStep.__init__(self, params, **kwargs)
        _check(self.params)  # type: ignore[arg-type]
        self._setup()

    def features(self, batch: pa.Table) -> pa.Table:
        scores, _ = self._scores(self._proba(batch))
        return pa.table({"sample_id": batch.column("sample_id"), "score": pa.array(scores, pa.float64())})

    def shuffle_rows(self, features: pa.Table) -> pa.Table:
        return pa.table({"row": pa.array([], pa.int64()), "key": pa.array([], pa.uint64())})

    def pairs_among(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        return np.empty(0, np.int64), np.empty(0, np.int64)

    whole_population = True

    def resolve_columns(self) -> tuple[str, ...]:
        return ("score",)

    def resolve_pairs(self, features: pa.Table, a: np.ndarray, b: np.ndarray, order: np.ndarray,
                      anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                      depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        return self.resolve_labels(features, np.zeros(features.num_rows, np.int64), order, anchors, kinds, depths)

    def resolve_labels(self, features: pa.Table, labels: np.ndarray, order: np.ndarray,
                       anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                       depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        p: ClassifierParams = self.params  # type: ignore[assignment]
        scores = features.column("score").to_numpy().astype(np.float64)
        new = np.ones(len(scores), dtype=bool) if anchors is None else ~np.asarray(anchors, dtype=bool)
        idx = np.flatnonzero(new)
        k = int(np.ceil(len(idx) * float(p.keep_top or 1.0)))
        threshold = 1.0
        if len(idx):
            # Highest score first; ties broken by the recipe's keep order (lower rank first).
            ranked = idx[np.lexsort((order[idx], -scores[idx]))]
            threshold = float(scores[ranked[max(k, 1) - 1]])
            keep_new = np.zeros(len(scores), dtype=bool)
            keep_new[ranked[:k]] = True
        else:
            keep_new = np.zeros(len(scores), dtype=bool)
        v = self._verdicts(scores, None, threshold)
        if p.mode == "drop":
            v.keep = keep_new | ~new
        low = ~keep_new & new
        v.reasons = [(f"low_score:{self.clf.ref if self.clf else p.name} {s:.4f} not in top {p.keep_top:g} "
                      f"(cut {threshold:.4f})") if lo else (r if n else None)
                     for s, lo, r, n in zip(scores.tolist(), low.tolist(), v.reasons, new.tolist(), strict=True)]
        return v, Clusters()
