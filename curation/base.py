"""The step base classes. A concrete step only answers "keep, or drop for this reason".

Steps work on batches (Arrow tables with at least `sample_id` and `text`), so they
vectorise and run unchanged under Ray Data's `map_batches`. The pipeline runner
(`curation.pipeline`) does the counting, the timing and the writing of decision rows.

- `Filter`: row-local. `decide(batch)` returns one verdict per row.
- `GlobalStep`: needs every selected sample at once (dedup). A map phase,
  `features(batch)`, turns each batch into small per-sample features; a reduce phase,
  `reduce(features, order)`, decides over all of them and may report clusters.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from mixline.errors import ConfigError


@dataclass
class Verdicts:
    """One step's decisions about a batch, row-aligned with it."""

    keep: np.ndarray
    reasons: list[str | None]
    scores: np.ndarray | None = None
    # Per-row values for annotation columns of `samples` (for example `lang`).
    annotations: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_reasons(cls, reasons: list[str | None], scores: np.ndarray | None = None,
                     annotations: dict[str, list[Any]] | None = None) -> Verdicts:
        return cls(np.array([r is None for r in reasons], dtype=bool), reasons, scores, annotations or {})

    def __post_init__(self) -> None:
        if len(self.keep) != len(self.reasons):
            raise ValueError(f"verdicts disagree in length: {len(self.keep)} keep flags, {len(self.reasons)} reasons")


@dataclass
class Clusters:
    """Dedup clusters: for each sample in a cluster of 2+, its cluster id and whether it was kept."""

    sample_ids: list[str] = field(default_factory=list)
    cluster_ids: list[str] = field(default_factory=list)
    kept: list[bool] = field(default_factory=list)

    def add(self, sample_id: str, cluster_id: str, kept: bool) -> None:
        self.sample_ids.append(sample_id)
        self.cluster_ids.append(cluster_id)
        self.kept.append(kept)


@dataclass(frozen=True)
class StepParams:
    """Base for a step's typed parameters; its fields are the recipe keys."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}



class Step(ABC):
    """A versioned curation step. `name` and `version` make `step_name`, e.g. gopher_quality_v1."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    Params: ClassVar[type[StepParams]] = StepParams
    requires: ClassVar[tuple[str, ...]] = ()
    # Columns of `samples` the step reads, beyond sample_id and text.
    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                raise ConfigError(f"step {self.name} needs the Python package {mod!r}; install it with pip")
        if params is None:
            try:
                params = self.Params(**kwargs)
            except TypeError as exc:
                allowed = ", ".join(f.name for f in fields(self.Params))
                raise ConfigError(f"step {self.name}: {exc}; its parameters are: {allowed or '(none)'}") from exc
        self.params = params
        # Scope: a sample outside it gets no decision from this step (None means every sample).
        self.kinds: tuple[str, ...] | None = None
        self.where: str | None = None

    def scoped(self, kinds: tuple[str, ...] | None = None, where: str | None = None) -> Step:
        """Limit the step to samples of these kinds and/or matching this `--where` predicate."""
        self.kinds = tuple(kinds) if kinds else None
        self.where = where or None
        return self

    def in_scope(self, batch: pa.Table, where_column: str | None = None) -> np.ndarray:
        """Which rows of a batch this step applies to; the runner evaluates `where` into `where_column`."""
        mask = np.ones(batch.num_rows, dtype=bool)
        if self.kinds is not None:
            mask &= np.isin(np.asarray(batch.column("kind").to_pylist(), dtype=object), list(self.kinds))
        if self.where is not None and where_column is not None:
            mask &= np.asarray(batch.column(where_column).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        return mask

    @property
    def step_name(self) -> str:
        return f"{self.name}_v{self.version}"

    def config(self) -> dict[str, Any]:
        cfg = {"type": self.name, "version": self.version, **self.params.as_dict()}
        if self.kinds is not None:
            cfg["kinds"] = list(self.kinds)
        if self.where is not None:
            cfg["where"] = self.where
        return cfg

    def prepare(self, ctx: Any) -> None:  # noqa: B027 - optional hook
        """Load what the step needs from the store before any batch (eval n-grams, models)."""


class Filter(Step):
    @abstractmethod
    def decide(self, batch: pa.Table) -> Verdicts:
        """A verdict for every row of the batch."""


class GlobalStep(Step):
    """A step that decides over every selected sample at once.

    Its reduce is split so that the expensive part can be distributed: `shuffle_rows` turns
    features into rows with a 64-bit `key` (rows with the same key must meet), `pairs_among`
    finds candidate pairs among rows that share a partition of keys, and `resolve_pairs`
    joins the pairs into clusters and picks the copy to keep. In-process, all rows are one
    partition; on Ray, rows are hash-partitioned by key and each partition is a task. Rows
    reach `pairs_among` sorted by `row`, so the pairs do not depend on the partitioning.
    """

    # True when shuffle_rows needs every sample at once (k-means), so the driver computes it.
    shuffle_needs_all: ClassVar[bool] = False
    # True when the step decides over all its samples as one group (a top share by score)
    # rather than over clusters of pairs: a distributed reduce gives them to one task.
    whole_population: ClassVar[bool] = False

    @abstractmethod
    def features(self, batch: pa.Table) -> pa.Table:
        """Per-sample features for the reduce phase; must include `sample_id`."""

    def shuffle_rows(self, features: pa.Table) -> pa.Table:
        """Rows for the pair search: `row` (index into features), `key` (uint64), and any
        columns `pairs_among` reads."""
        raise NotImplementedError(f"step {self.name} has no distributed pair search")

    def pairs_among(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs (values of `row`) among rows sorted by `row` whose keys fall in
        one partition: every row of a key is present."""
        raise NotImplementedError(f"step {self.name} has no distributed pair search")

    def resolve_pairs(self, features: pa.Table, a: np.ndarray, b: np.ndarray, order: np.ndarray,
                      anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                      depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        """Clusters from candidate pairs, and the copy kept in each."""
        from mixline.curation.dedup.unionfind import components

        a, b = self.verify_pairs(features, a, b)
        return self.resolve_labels(features, components(features.num_rows, a, b), order, anchors, kinds, depths)

    # -- the pieces a distributed reduce calls (curation/distributed_reduce.py) ------------------
    def verify_pairs(self, features: pa.Table, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The candidate pairs that pass the step's pairwise check (all of them by default)."""
        return a, b

    def task_rows(self, features: pa.Table) -> pa.Table:
        """Shuffle rows for a pair search in tasks: `shuffle_rows`, plus whatever `task_pairs`
        needs to check a pair where it is found."""
        return self.shuffle_rows(features)

    def task_pairs(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Checked candidate pairs among task rows (`pairs_among`, then the pairwise check)."""
        return self.pairs_among(rows)

    def resolve_columns(self) -> tuple[str, ...]:
        """Feature columns `resolve_labels` reads, beyond sample_id."""
        return ()

    def resolve_labels(self, features: pa.Table, labels: np.ndarray, order: np.ndarray,
                       anchors: np.ndarray | None = None, kinds: list[str] | None = None,
                       depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        """The copy kept in each cluster, given each row's component label (any integer that
        is the same for the members of one component). Rows come in population order, and
        every member of a component is present, so a subset of whole components gives the
        same verdicts as the whole population."""
        raise NotImplementedError(f"step {self.name} has no distributed pair search")

    def reduce(self, features: pa.Table, order: np.ndarray, anchors: np.ndarray | None = None,
               kinds: list[str] | None = None, depths: np.ndarray | None = None) -> tuple[Verdicts, Clusters]:
        """Decide over all features, row-aligned with them.

        `order[i]` ranks row i (lower is preferred when keeping a copy); `anchors` marks
        samples kept by earlier runs, which always win; `depths` are synthetic depths.
        """
        a, b = self.pairs_among(self.shuffle_rows(features))
        return self.resolve_pairs(features, a, b, order, anchors, kinds, depths)


def rows_and_keys(rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The `row` and `key` columns of shuffle rows, as numpy arrays."""
    return (rows.column("row").to_numpy().astype(np.int64, copy=False),
            rows.column("key").to_numpy().astype(np.uint64, copy=False))


def concat_pairs(a_parts: list[np.ndarray], b_parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs found piece by piece (per band, partition or bucket), as two arrays."""
    if not a_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(a_parts).astype(np.int64, copy=False), np.concatenate(b_parts).astype(np.int64, copy=False)


@dataclass
class Rewrite:
    """A row's replacement: new text (and messages for conversations) plus what was changed."""

    text: str
    messages: str | None
    spans: list[Any]
    reason: str


@dataclass
class Rewrites:
    """One rewriter's output for a batch: per row, a Rewrite, a drop reason, or nothing (kept as is)."""

    rows: list[Rewrite | str | None]


class Rewriter(Step):
    """Row-local steps that may replace a sample with a new one (linked by `relation`)."""

    relation: ClassVar[str] = "rewritten_from"

    @abstractmethod
    def rewrite(self, batch: pa.Table) -> Rewrites:
        """For each row: a Rewrite, a drop reason (str), or None to keep it unchanged."""
