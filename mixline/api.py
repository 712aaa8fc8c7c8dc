"""The Python API: what `import mixline` gives. The CLI is a thin layer over the same functions.

    >>> import mixline
    >>> with mixline.Store.open("mixline.duckdb") as st:
    ...     r = mixline.ingest(st, "medquad.jsonl", kind="domain", domain="medical", text_field="answer")
    ...     c = mixline.curate(st)                      # the default recipe, a profile per kind
    ...     m = mixline.build_mix(st, mixline.MixRecipe.from_file("mix.toml"))
    ...     mixline.export_mix(st, m.mix_id, "out/mix")
    ...     t = mixline.trace(st, "3fa2b1c9")            # a sample id or a unique prefix

Every function takes the store explicitly and returns a typed result with `.to_dict()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mixline.curation.pipeline import CurateResult
from mixline.curation.recipe import Recipe
from mixline.pipelines.ingest import IngestOptions, IngestResult
from mixline.pipelines.mix import MixRecipe, MixResult
from mixline.store.lineage import Impact, Trace
from mixline.store.store import Store


def ingest(store: Store, paths: str | Path | Sequence[str | Path], *, kind: str, source: str | None = None,
           text_field: str | Sequence[str] = "text", **options: Any) -> IngestResult:
    """Ingest files, folders or `hf:NAME` datasets with their provenance.

    >>> ingest(st, "gsm8k.jsonl", kind="domain", domain="math", text_field=["question", "answer"]).ingested
    7473
    """
    from mixline.pipelines.ingest import default_source_name
    from mixline.pipelines.ingest import ingest as run

    ps = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    fields = (text_field,) if isinstance(text_field, str) else tuple(text_field)
    name = source or default_source_name(ps[0])
    return run(store, ps, IngestOptions(kind=kind, source=name, text_fields=fields, **options))


def curate(store: Store, recipe: Recipe | str | Path | None = None, where: str | None = None, *,
           new_only: bool = False, dry_run: bool = False, examples: int = 3) -> CurateResult:
    """Run a curation recipe (a Recipe, a TOML/YAML path, or None for the default) as one run.

    `dry_run=True` computes every decision and rolls them back; the result then carries keep
    rates per kind and source, and up to `examples` scrubbed excerpts per drop reason.

    >>> curate(st, where="source = 'medquad'").kept
    13667
    >>> curate(st, dry_run=True).by_kind[0]["kept_share"]
    0.9812
    """
    from mixline.curation.pipeline import curate as run

    rec = Recipe.from_file(recipe) if isinstance(recipe, str | Path) else recipe
    return run(store, rec, where, new_only=new_only, dry_run=dry_run, examples=examples)


def build_mix(store: Store, recipe: MixRecipe | str | Path) -> MixResult:
    """Build a content-addressed mix; the same recipe on the same store gives the same id.

    >>> build_mix(st, "mix.toml").mix_id
    'mix-690dd93064a42479a774ab72'
    """
    from mixline.pipelines.mix import build

    return build(store, recipe if isinstance(recipe, MixRecipe) else MixRecipe.from_file(recipe))


@dataclass
class ExportResult:
    """Where a mix was written, in what format, and its manifest."""

    mix_id: str
    folder: str
    format: str
    files: dict[str, list[str]] = field(default_factory=dict)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_mix(store: Store, mix: str, out: str | Path, fmt: str = "parquet") -> ExportResult:
    """Write a mix (scrubbed text only) with its manifest, dataset card and croissant.json.

    >>> export_mix(st, "my-mix", "exports/my-mix", "jsonl").files["train"]
    ['data/train-00000.jsonl']
    """
    from mixline.pipelines.export import export

    d = export(store, mix, Path(out), fmt)
    return ExportResult(str(d["mix_id"]), str(d["out"]), fmt, dict(d["files"]), int(d["rows"]))


def trace(store: Store, sample: str) -> Trace:
    """Where a sample came from: sources, ancestors, decisions, clusters and mixes."""
    from mixline.store.lineage import trace as run

    return run(store, sample)


def impact(store: Store, samples: str | Sequence[str]) -> Impact:
    """What samples reached: descendants, mixes and models (for deletion requests)."""
    from mixline.store.lineage import impact as run

    return run(store, [samples] if isinstance(samples, str) else list(samples))


@dataclass
class DriftResult:
    """A drift check: the overall alert, the metrics that moved, and every metric with its threshold."""

    alert: bool
    moved: list[str]
    n_batch: int
    n_reference: int
    metrics: list[dict[str, Any]]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drift_check(store: Store, batch: str, reference: str, *, embeddings: bool = True, bootstrap: int = 30,
                seed: int = 0) -> DriftResult:
    """Compare a batch (a --where predicate) with human reference text, calibrated on reference pairs.

    >>> drift_check(st, "synth_depth = 1", "synth_depth = 0", embeddings=False).moved
    ['distinct_2', 'self_bleu']
    """
    from mixline.curation.drift import DriftConfig, check_store

    d = check_store(store, batch, reference, DriftConfig(bootstrap=bootstrap, seed=seed, embeddings=embeddings))
    return DriftResult(bool(d["alert"]), list(d["moved"]), int(d["n_batch"]), int(d["n_reference"]),
                       list(d["metrics"]), list(d.get("notes", [])))


@dataclass
class ModelResult:
    """A model that mixline trained or generated with, and what the step reported."""

    model_id: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, **self.details}


def init_tiny(store: Store, mix: str, out: str | Path, *, seed: int = 0, **config: Any) -> ModelResult:
    """Train a byte-level BPE tokenizer on a mix and build a small GPT-2 to start from (offline)."""
    from mixline.pipelines.mix import resolve_mix
    from mixline.pipelines.models import TinyConfig
    from mixline.pipelines.models import init_tiny as run

    d = run(store, resolve_mix(store, mix), Path(out), TinyConfig(**config), seed)
    return ModelResult(str(d["model_id"]), d)


def train(store: Store, base: str, mix: str, out: str | Path, **config: Any) -> ModelResult:
    """Fine-tune a causal LM (a model id, a folder, or a hub name) on a mix; full or LoRA.

    >>> train(st, "tiny", "my-mix", "ckpt/g1", steps=100, method="lora").model_id
    'model-...'
    """
    from mixline.pipelines.mix import resolve_mix
    from mixline.pipelines.models import TrainConfig
    from mixline.pipelines.models import train as run

    d = run(store, base, resolve_mix(store, mix), Path(out), TrainConfig(**config))
    return ModelResult(str(d["model_id"]), d)


def generate(store: Store, model: str, **config: Any) -> ModelResult:
    """Write synthetic samples from a model, each with its prompt, decoding and depth recorded."""
    from mixline.pipelines.models import GenerateConfig
    from mixline.pipelines.models import generate as run

    d = run(store, model, GenerateConfig(**config))
    return ModelResult(str(d["model_id"]), d)


__all__ = ["CurateResult", "DriftResult", "ExportResult", "Impact", "IngestResult", "MixRecipe", "MixResult",
           "ModelResult", "Recipe", "Store", "Trace", "build_mix", "curate", "drift_check", "export_mix",
           "generate", "impact", "ingest", "init_tiny", "trace", "train"]
