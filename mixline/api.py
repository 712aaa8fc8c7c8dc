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

from collections.abc import Callable, Sequence
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
           text_field: str | Sequence[str] = "text", progress: Callable[[int], None] | None = None,
           executor: Any = None, **options: Any) -> IngestResult:
    """Ingest files, folders or `hf:NAME` datasets with their provenance.

    `options` are the fields of `IngestOptions` (license, domain, id_field, url_field, format, split,
    max_bytes, max_file_bytes, csv_header, max_bad_share, allow_bad, origin). `progress` gets the
    number of input bytes read so far. `executor=RayExecutor(...)` reads, validates and hashes
    each path in a Ray task; the result is the same.

    >>> ingest(st, "gsm8k.jsonl", kind="domain", domain="math", text_field=["question", "answer"]).ingested
    7473
    """
    from mixline.pipelines.ingest import default_source_name
    from mixline.pipelines.ingest import ingest as run

    ps = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    fields = (text_field,) if isinstance(text_field, str) else tuple(text_field)
    name = source or default_source_name(ps[0])
    return run(store, ps, IngestOptions(kind=kind, source=name, text_fields=fields, **options), progress, executor)


def curate(store: Store, recipe: Recipe | str | Path | None = None, where: str | None = None, *,
           new_only: bool = False, dry_run: bool = False, examples: int = 3,
           progress: Callable[[int], None] | None = None, executor: Any = None) -> CurateResult:
    """Run a curation recipe (a Recipe, a TOML/YAML path, or None for the default) as one run.

    `dry_run=True` computes every decision and rolls them back; the result then carries keep
    rates per kind and source, and up to `examples` scrubbed excerpts per drop reason.
    `executor=RayExecutor(...)` (from `mixline.curation.distributed`) runs it on Ray Data,
    with the same decisions, ids and clusters.

    >>> curate(st, where="source = 'medquad'").kept
    13667
    >>> curate(st, dry_run=True).by_kind[0]["kept_share"]
    0.9812
    """
    from mixline.curation.pipeline import curate as run

    rec = Recipe.from_file(recipe) if isinstance(recipe, str | Path) else recipe
    return run(store, rec, where, new_only=new_only, dry_run=dry_run, examples=examples, progress=progress,
               executor=executor)


def build_mix(store: Store, recipe: MixRecipe | str | Path, snapshot: int | None = None) -> MixResult:
    """Build a content-addressed mix; the same recipe on the same store gives the same id.
    With `snapshot` (DuckLake stores), select from the store as it was then.

    >>> build_mix(st, "mix.toml").mix_id
    'mix-690dd93064a42479a774ab72'
    """
    from mixline.pipelines.mix import build

    return build(store, recipe if isinstance(recipe, MixRecipe) else MixRecipe.from_file(recipe), snapshot=snapshot)


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


def export_mix(store: Store, mix: str, out: str | Path, fmt: str = "parquet", *, allow_canaries: bool = False) -> ExportResult:
    """Write a mix (scrubbed text only) with its manifest, dataset card and croissant.json.

    >>> export_mix(st, "my-mix", "exports/my-mix", "jsonl").files["train"]
    ['data/train-00000.jsonl']
    """
    from mixline.pipelines.export import export

    d = export(store, mix, Path(out), fmt, allow_canaries)
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



@dataclass
class Report:
    """A report whose headline fields are typed; `details` holds the rest, as the CLI's --json prints it."""

    details: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        own = {k: v for k, v in asdict(self).items() if k != "details"}
        return {**self.details, **own}


@dataclass
class MixInfo(Report):
    """A mix: recipe, composition by kind, source and domain, and the models trained on it."""

    mix_id: str = ""
    name: str = ""
    members: int = 0
    tokens: int = 0
    synthetic_share: float = 0.0


def show_mix(store: Store, mix: str) -> MixInfo:
    """A mix by id, unique prefix or name.

    >>> show_mix(st, "my-mix").synthetic_share
    0.25
    """
    from mixline.pipelines.mix import show

    d = show(store, mix)
    return MixInfo(d, str(d["mix_id"]), str(d["name"]), int(d["members"]), int(d["tokens"]), float(d["synthetic_share"]))


@dataclass
class MixDiff(Report):
    """What changed between two mixes: samples added and removed, and token counts."""

    a: str = ""
    b: str = ""
    added: int = 0
    removed: int = 0


def diff_mixes(store: Store, a: str, b: str) -> MixDiff:
    """Samples added and removed between mix A and mix B, by source."""
    from mixline.pipelines.mix import diff

    d = diff(store, a, b)
    return MixDiff(d, str(d["a"]), str(d["b"]), int(d["added"]), int(d["removed"]))


@dataclass
class VerifyResult(Report):
    """An export checked against its manifest."""

    mix_id: str = ""
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    rows_checked: int = 0


def verify_export(folder: str | Path) -> VerifyResult:
    """Recompute every content hash of an exported mix and compare with its manifest."""
    from mixline.pipelines.export import verify

    d = verify(Path(folder))
    return VerifyResult(d, str(d["mix_id"]), bool(d["ok"]), list(d["problems"]), int(d["rows_checked"]))


@dataclass
class Why(Report):
    """Every curation decision about a sample, and its dedup clusters."""

    sample_id: str = ""
    status: str = ""
    decisions: list[dict[str, Any]] = field(default_factory=list)


def why(store: Store, sample: str) -> Why:
    """Why a sample is kept or dropped: its decisions, oldest run first, and its clusters.

    >>> why(st, "3fa2b1c9").status
    'dropped by gopher_quality (gopher_short_document)'
    """
    from mixline.curation.pipeline import why as run

    d = run(store, sample)
    return Why(d, str(d["sample_id"]), str(d["status"]), list(d["decisions"]))


@dataclass
class EvalResult(Report):
    """Bits per character per held-out set, with the parent model's figure where it has one."""

    model_id: str = ""
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)


def evaluate(store: Store, model: str, sets: dict[str, str], max_docs: int = 200) -> EvalResult:
    """Evaluate a model on named sets (name -> predicate over samples); recorded as evals rows.

    >>> evaluate(st, "model-1a2b", {"general": "source = 'shakespeare'"}).sets["general"]["bits_per_char"]
    2.79
    """
    from mixline.pipelines.models import evaluate as run

    d = run(store, model, sets, max_docs)
    return EvalResult(d, str(d.get("model_id", model)), dict(d["sets"]))


@dataclass
class MixGate(Report):
    """The drift gate's verdict on a mix about to be trained."""

    mix_id: str = ""
    alert: bool = False
    moved: list[str] = field(default_factory=list)
    synthetic_share: float = 0.0
    family_share: float | None = None


def drift_check_mix(store: Store, mix: str, reference: str, *, model: str | None = None, embeddings: bool = True,
                    bootstrap: int = 30, seed: int = 0, record: bool = True) -> MixGate:
    """Judge a mix (members weighted by repeats) against human reference text; the loop's gate.

    >>> drift_check_mix(st, "gen3-mix", "synth_depth = 0 AND source = 'shakespeare'", embeddings=False).alert
    False
    """
    from mixline.curation.drift import DriftConfig
    from mixline.curation.drift_gate import check_mix
    from mixline.errors import MixlineError
    from mixline.pipelines.mix import resolve_mix
    from mixline.pipelines.models import resolve_model

    model_id = None
    if model:
        model_id, _ = resolve_model(store, model)
        if model_id is None:
            raise MixlineError(f"--model {model!r} is not a model in this store")
    d = check_mix(store, resolve_mix(store, mix), reference, DriftConfig(bootstrap=bootstrap, seed=seed, embeddings=embeddings),
                  model_id=model_id, record=record)
    fam = d.get("family_share")
    return MixGate(d, str(d["mix_id"]), bool(d["alert"]), list(d["moved"]), float(d["synthetic_share"]),
                   None if fam is None else float(fam))


@dataclass
class Trend(Report):
    """Each drift metric across a loop's generations, per strategy, with a monotone-trend test."""

    loop: str = ""
    trends: list[dict[str, Any]] = field(default_factory=list)


def drift_trend(store: Store, loop: str, alpha: float = 0.02) -> Trend:
    """Slopes and Mann-Kendall tests per metric across a loop's generations."""
    from mixline.curation.drift_gate import trend

    d = trend(store, loop, alpha)
    return Trend(d, str(d.get("loop", loop)), list(d["trends"]))


@dataclass
class SelfConsumption(Report):
    """Training samples of a mix written by the model about to be trained, its ancestors or its family."""

    model_id: str = ""
    train_samples: int = 0
    self_consumed: int = 0
    self_consumed_share: float = 0.0
    family_share: float = 0.0


def self_consumption(store: Store, mix: str, model: str, record: bool = True) -> SelfConsumption:
    """Flag a mix's samples that the model (or its family) wrote itself."""
    from mixline.curation.drift import self_consumption as run
    from mixline.errors import MixlineError
    from mixline.pipelines.mix import resolve_mix
    from mixline.pipelines.models import resolve_model

    model_id, _ = resolve_model(store, model)
    if model_id is None:
        raise MixlineError(f"--model {model!r} is not a model in this store; self-consumption needs its lineage")
    d = run(store, resolve_mix(store, mix), model_id, record=record)
    return SelfConsumption(d, model_id, int(d["train_samples"]), int(d["self_consumed"]), float(d["self_consumed_share"]),
                           float(d["family_share"]))


@dataclass
class LoopResult:
    """One row per generation and strategy: bits/char, the drift verdict, the gate, the model and mix."""

    generations: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"generations": self.generations}


def run_loop(store: Store, config: str | Path | Any, workdir: str | Path = "loop-out") -> LoopResult:
    """Run a synthetic-data loop (a LoopConfig or a TOML path); resumes where it stopped."""
    from mixline.pipelines.loop import Loop, LoopConfig

    cfg = config if isinstance(config, LoopConfig) else LoopConfig.from_file(config)
    return LoopResult(Loop(store, cfg, Path(workdir)).run())



def register_model(store: Store, path: str | Path, *, parent: str | None, mix: str | None, stage: str,
                   name: str | None = None, notes: str | None = None) -> dict[str, Any]:
    """Record a model trained outside mixline, so lineage, evals and provenance cards hold.

    >>> register_model(st, "ckpt/dpo", parent="sft-model", mix="prefs", stage="preference")["model_id"]
    'model-...'
    """
    from mixline.pipelines.stages import register

    return register(store, path, parent=parent, mix=mix, stage=stage, name=name, notes=notes)


def compare_models(store: Store, before: str, after: str, sets: dict[str, str], *, roles: dict[str, str] | None = None,
                   threshold: float = 0.05, max_docs: int = 200, bootstrap: int = 1000) -> dict[str, Any]:
    """The forgetting check: bits/char before and after a stage per set, with a bootstrap CI;
    `guard` sets that worsen past `threshold` (relative) are forgetting alerts.

    >>> compare_models(st, "base", "med-cpt", {"general": "...", "medical": "..."}, roles={"general": "guard"})["forgetting_alerts"]
    []
    """
    from mixline.pipelines.stages import compare

    return compare(store, before, after, sets, roles=roles, threshold=threshold, max_docs=max_docs, bootstrap=bootstrap)


def compose_adapters(store: Store, adapters: Sequence[str], weights: Sequence[float], method: str, out: str | Path, *,
                     name: str | None = None, density: float = 0.5) -> dict[str, Any]:
    """Compose LoRA adapters of one base (linear, cat, ties, dare_ties) and measure interference."""
    from mixline.pipelines.stages import compose

    return compose(store, list(adapters), list(weights), method, Path(out), name=name, density=density)


def model_card(store: Store, model: str) -> dict[str, Any]:
    """A model's provenance card (see `mixline.pipelines.model_card`); `render_md` prints it."""
    from mixline.pipelines.model_card import card

    return card(store, model)


def adversarial_eval(store: Store, model: str, name: str, where: str, max_docs: int = 50) -> dict[str, Any]:
    """Red-team prompts answered by the model: shares of toxic replies and refusals, recorded as adversarial evals."""
    from mixline.pipelines.stages import adversarial_eval as run

    return run(store, model, name, where, max_docs)

def plant_canaries(store: Store, source: str, *, n: int = 10, repeats: tuple[int, ...] = (1, 4, 16),
                   formats: tuple[str, ...] = ("plain", "phone"), seed: int = 0, where: str | None = None) -> dict[str, Any]:
    """Plant canaries (random secrets) into copies of `source`'s samples, before curating.

    >>> plant_canaries(st, "support", n=5)["canaries"]
    30
    """
    from mixline.pipelines.canaries import PlantSpec, plant

    return plant(store, PlantSpec(source, n, tuple(repeats), tuple(formats), seed, where))


def audit_model(store: Store, model: str, **config: Any) -> dict[str, Any]:
    """Canary exposure, verbatim extraction and membership inference of a model, recorded.
    `config` takes `AuditConfig`'s fields (`candidates`, `max_exposure`, `max_extraction`, ...);
    the result's `passed` is False past a limit.

    >>> audit_model(st, "model-3c4d", max_exposure=8.0)["passed"]
    True
    """
    from mixline.pipelines.audit import AuditConfig, audit

    return audit(store, model, AuditConfig(**config))


__all__ = ["CurateResult", "DriftResult", "EvalResult", "ExportResult", "Impact", "IngestResult", "LoopResult", "MixDiff",
           "MixGate", "MixInfo", "MixRecipe", "MixResult", "ModelResult", "adversarial_eval", "compare_models", "compose_adapters", "model_card", "register_model", "Recipe", "SelfConsumption", "Store", "Trace",
           "Trend", "VerifyResult", "Why", "build_mix", "curate", "diff_mixes", "drift_check", "drift_check_mix",
           "drift_trend", "evaluate", "export_mix", "generate", "impact", "ingest", "init_tiny", "run_loop",
           "self_consumption", "show_mix", "trace", "train", "verify_export", "why", "plant_canaries", "audit_model"]
