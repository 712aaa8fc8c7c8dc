"""`mixline classifier train`: a classifier learned from the store's own samples, recorded as lineage.

The samples it learns from are built as a mix (one group per class, each capped at
`max_per_class`, with a stratified held-out split and train samples that near-duplicate a
held-out one excluded), so `impact` of any of them reaches the classifier. The model and
its scoring are in `curation.classifier`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from mixline.curation.classifier import (
    BINARY_LABELS,
    METHODS,
    evaluate,
    featurize,
    fit,
    rounded,
    weight_hash,
)
from mixline.store.ids import canonical_json
from mixline.store.store import Store

from mixline.errors import ConfigError

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Columns a multi-class classifier may learn its labels from.
LABEL_COLUMNS = ("domain", "source", "kind", "lang", "script")


@dataclass
class TrainSpec:
    """What `mixline classifier train` was asked for."""

    name: str
    positive: str | None = None
    negative: str | None = None
    labels: str | None = None  # a column of samples: one class per value
    where: str | None = None  # with labels: which samples to learn from
    other: str | None = None  # with labels: an extra class "other" (for example random web pages)
    method: str = "ngram"
    max_per_class: int = 5000
    seed: int = 0
    heldout: float = 0.2
    uncurated: bool = False  # also learn from samples no run has curated yet
    c: float = 4.0  # inverse regularisation strength
    n_features: int = 2**20
    ngrams: int = 2

    def check(self) -> None:
        if not NAME_RE.match(self.name):
            raise ConfigError(f"classifier name {self.name!r}: use lowercase letters, digits, '-' and '_', "
                              "starting with a letter (it is used in step names and in score('NAME'))")
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.labels is None:
            if not self.positive or not self.negative:
                raise ConfigError("classifier train needs --positive PRED and --negative PRED "
                                  "(or --labels COLUMN for one class per value)")
            if self.where or self.other:
                raise ConfigError("--where and --other go with --labels; with --positive/--negative, "
                                  "narrow the predicates themselves")
        else:
            if self.positive or self.negative:
                raise ConfigError("give either --positive/--negative or --labels COLUMN, not both")
            if self.labels not in LABEL_COLUMNS:
                raise ConfigError(f"--labels {self.labels!r}: use one of {', '.join(LABEL_COLUMNS)}")
        if self.max_per_class < 10:
            raise ConfigError(f"--max-per-class {self.max_per_class}: use at least 10")
        if not 0.05 <= self.heldout <= 0.5:
            raise ConfigError(f"--heldout {self.heldout}: use a share from 0.05 to 0.5")
        if self.c <= 0:
            raise ConfigError(f"-C {self.c}: use a positive number")

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "max_per_class": self.max_per_class, "seed": self.seed,
                               "heldout": self.heldout, "uncurated": self.uncurated, "C": self.c}
        if self.labels is None:
            out.update(positive=self.positive, negative=self.negative)
        else:
            out.update(labels=self.labels, where=self.where, other=self.other)
        return out


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _groups(store: Store, spec: TrainSpec) -> list[dict[str, Any]]:
    """The training mix's groups, one per class, each capped at max_per_class documents."""
    cap = int(spec.max_per_class)
    if spec.labels is None:
        return [{"name": "positive", "where": spec.positive, "max_docs": cap},
                {"name": "negative", "where": f"({spec.negative}) AND NOT coalesce(({spec.positive}), FALSE)", "max_docs": cap}]
    from mixline.store.select import scope

    base = scope(store, spec.where, "s")
    values = [r[0] for r in store.execute(
        f"SELECT DISTINCT s.{spec.labels} FROM samples s WHERE s.kind <> 'eval' AND s.{spec.labels} IS NOT NULL "
        f"AND {base} ORDER BY 1").fetchall()]
    if len(values) < 2 and spec.other is None:
        raise ConfigError(f"--labels {spec.labels}: the samples selected hold {len(values)} value(s) of {spec.labels} "
                          f"({', '.join(map(str, values)) or 'none'}); a classifier needs two classes or more "
                          "(add --other PRED for an 'other' class)")
    if "other" in values and spec.other is not None:
        raise ConfigError(f"--labels {spec.labels}: a value is called 'other', which --other would also name")
    inside = f"({spec.where}) AND " if spec.where else ""
    groups = [{"name": str(v), "where": f"{inside}{spec.labels} = {_quote(str(v))}", "max_docs": cap} for v in values]
    if spec.other is not None:
        labelled = f"{spec.labels} IS NOT NULL AND ({spec.where})" if spec.where else f"{spec.labels} IS NOT NULL"
        groups.append({"name": "other", "where": f"({spec.other}) AND NOT coalesce(({labelled}), FALSE)", "max_docs": cap})
    return groups


def train(store: Store, spec: TrainSpec) -> dict[str, Any]:
    """Train, evaluate on the held-out split, and record the classifier (idempotent)."""
    from mixline.pipelines.mix import MixRecipe, build

    spec.check()
    groups = _groups(store, spec)
    labels = list(BINARY_LABELS) if spec.labels is None else [g["name"] for g in groups]
    status = ["kept", "uncurated"] if spec.uncurated else ["kept"]
    recipe = MixRecipe.parse({"name": f"{spec.name}-training", "seed": spec.seed, "groups": groups,
                              "status": status, "holdout": {"fraction": spec.heldout}}, f"classifier {spec.name}")
    features: dict[str, Any] = ({"n_features": spec.n_features, "ngrams": spec.ngrams, "max_chars": 20_000}
                                if spec.method == "ngram" else {"model": "all-MiniLM-L6-v2"})
    with store.run("classifier", "classifier_train_v1", {"name": spec.name, **spec.params(), "features": features}) as run:
        try:
            mix = build(store, recipe)
        except ConfigError as exc:
            hint = "" if spec.uncurated else (" (to learn from samples no run has curated yet, pass --uncurated / "
                                              "TrainSpec(uncurated=True))")
            raise ConfigError(f"classifier {spec.name}: {exc}{hint}") from exc
        rows = _members(store, mix.mix_id, recipe, labels)
        counts = {lab: sum(1 for r in rows if r[3] == lab and r[4] == "train") for lab in labels}
        for lab, n in counts.items():
            if n < 5:
                raise ConfigError(f"classifier {spec.name}: class {lab!r} has {n} training samples; it needs at least 5. "
                                  "Widen its predicate, ingest more, or curate first (only kept samples are used "
                                  "unless --uncurated)")
        train_rows = [r for r in rows if r[4] == "train"]
        held_rows = [r for r in rows if r[4] == "heldout"]
        x = featurize(store, spec.method, [r[1] for r in train_rows], [r[2] for r in train_rows], features)
        y = np.array([labels.index(r[3]) for r in train_rows])
        model = fit(spec.method, x, y, labels, features, c=spec.c, seed=spec.seed)
        metrics = {"n_train": {lab: counts[lab] for lab in labels},
                   "n_heldout": {lab: sum(1 for r in held_rows if r[3] == lab) for lab in labels}}
        if held_rows:
            xh = featurize(store, model, [r[1] for r in held_rows], [r[2] for r in held_rows])
            metrics.update(evaluate(model, model.proba(xh), np.array([labels.index(r[3]) for r in held_rows])))
        blob = model.to_bytes()
        whash = weight_hash(blob)
        params = {**spec.params(), "features": features}
        cid = "clf-" + hashlib.sha256(canonical_json({"name": spec.name, "params": params, "mix_id": mix.mix_id,
                                                      "weight_hash": whash}).encode()).hexdigest()[:24]
        existing = store.rows("SELECT classifier_id, version FROM classifiers WHERE classifier_id = ?", [cid])
        created = not existing
        version = int(existing[0]["version"]) if existing else int(
            store.scalar("SELECT coalesce(max(version), 0) FROM classifiers WHERE name = ?", [spec.name])) + 1
        if created:
            store.append_rows("classifiers", [{
                "classifier_id": cid, "name": spec.name, "version": version, "method": spec.method,
                "labels": json.dumps(labels), "params": canonical_json(params), "mix_id": mix.mix_id,
                "weight_hash": whash, "weights": blob, "metrics": canonical_json(rounded(metrics)), "run_id": run.run_id}])
        run.stats.update({"classifier_id": cid, "version": version, "mix_id": mix.mix_id, "created": created,
                          "metrics": rounded(metrics)})
    return {"classifier_id": cid, "name": spec.name, "version": version, "method": spec.method, "labels": labels,
            "mix_id": mix.mix_id, "weight_hash": whash, "created": created, "metrics": rounded(metrics)}


def _members(store: Store, mix_id: str, recipe: Any, labels: list[str]) -> list[tuple[str, str, str, str, str]]:
    """(sample_id, text, content_hash, label, split) of a training mix, in sample order. A
    sample's label is its group's: the first group whose predicate it matches."""
    from mixline.store.select import scope

    case = "CASE " + " ".join(f"WHEN {scope(store, g.where, 's')} THEN {_quote(g.name)}"
                              for g in recipe.groups if g.name in labels) + " END"
    out = store.execute(f"""SELECT s.sample_id, s.text, s.content_hash, {case} AS label, m.split
                            FROM mix_members m JOIN samples s USING (sample_id)
                            WHERE m.mix_id = ? ORDER BY s.sample_id""", [mix_id]).fetchall()
    return [tuple(r) for r in out if r[3] is not None]  # type: ignore[misc]
