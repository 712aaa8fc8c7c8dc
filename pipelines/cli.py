"""The `mixline` command line. The only place that turns MixlineErrors into exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from store import MixlineError, Store, resolve_store_path
from store.errors import ReadOnlyError

F = TypeVar("F", bound=Callable[..., Any])


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_json_default, ensure_ascii=False, indent=2))


class Ctx:
    """What every command gets: where the store is and how to talk."""

    def __init__(self, store_path: str | None, quiet: bool) -> None:
        self.store_path = resolve_store_path(store_path)
        self.quiet = quiet

    def open(self, read_only: bool = False) -> Store:
        return Store(self.store_path, read_only=read_only)

    def say(self, msg: str) -> None:
        if not self.quiet:
            click.echo(msg, err=True)


def command(group: click.Group, name: str | None = None, **kw: Any) -> Callable[[F], F]:
    """A subcommand with --json and --quiet, whose MixlineErrors become clean exits."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context().find_object(Ctx)
            if ctx is not None and kwargs.pop("quiet", False):
                ctx.quiet = True
            try:
                return fn(*args, **kwargs)
            except MixlineError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(exc.exit_code)

        wrapper = click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter on stderr.")(wrapper)
        wrapper = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(wrapper)
        return group.command(name, **kw)(click.pass_obj(wrapper))  # type: ignore[return-value]

    return deco


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_path", envvar="MIXLINE_STORE", default=None,
              help="Store file (default ./mixline.duckdb, or $MIXLINE_STORE).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter on stderr.")
@click.version_option(package_name="mixline")
@click.pass_context
def cli(ctx: click.Context, store_path: str | None, quiet: bool) -> None:
    """mixline: curate LLM training data and trace its lineage."""
    ctx.obj = Ctx(store_path, quiet)


@command(cli)
def init(ctx: Ctx, as_json: bool) -> None:
    """Create the store (or migrate it to this mixline's schema)."""
    with ctx.open() as st:
        out = {"store": st.path, "schema_version": st.schema_version()}
    if as_json:
        emit_json(out)
    else:
        click.echo(f"store {out['store']} at schema v{out['schema_version']}")


@command(cli)
@click.argument("paths", nargs=-1, required=True)
@click.option("--kind", required=True, type=click.Choice(["web", "domain", "conversation", "synthetic", "eval"]),
              help="What kind of text this is.")
@click.option("--source", default=None, help="Source name (default: the first path's stem).")
@click.option("--license", "license_", default=None, help="Licence of the data, e.g. CC-BY-4.0.")
@click.option("--domain", default=None, help="Domain label, e.g. medical, legal, code.")
@click.option("--text-field", "text_fields", multiple=True, help="Field(s) holding the text; several are joined by a blank line. Default: text.")
@click.option("--id-field", default=None, help="Field holding the record's original id.")
@click.option("--url-field", default=None, help="Field holding the record's url.")
@click.option("--format", "fmt", default=None, help="Force a format: jsonl, json, parquet, csv, tsv, txt, warc, yaml, hf.")
@click.option("--split", default=None, help="Split of a Hugging Face dataset.")
@click.option("--max-bytes", default=16 << 20, show_default=True, help="Quarantine records whose text is larger.")
@click.option("--no-header", is_flag=True, help="CSV/TSV files have no header row; fields are named 0, 1, ...")
def ingest(ctx: Ctx, as_json: bool, paths: tuple[str, ...], kind: str, source: str | None, license_: str | None,
           domain: str | None, text_fields: tuple[str, ...], id_field: str | None, url_field: str | None,
           fmt: str | None, split: str | None, max_bytes: int, no_header: bool) -> None:
    """Ingest files, folders or Hugging Face datasets (hf:NAME) with their provenance."""
    from tqdm import tqdm

    from pipelines.ingest import IngestOptions, total_bytes
    from pipelines.ingest import ingest as run_ingest

    ps = [Path(p) for p in paths]
    name = source or Path(paths[0].removeprefix("hf:")).name.split(".")[0]
    opts = IngestOptions(kind=kind, source=name, license=license_, domain=domain,
                         text_fields=text_fields or ("text",), id_field=id_field, url_field=url_field,
                         format=fmt, split=split, max_bytes=max_bytes, csv_header=not no_header)
    # A memory cap keeps DuckDB's page cache from growing with the corpus; it spills instead.
    memory = os.environ.get("MIXLINE_MEMORY_LIMIT", "1GB")
    with Store(ctx.store_path, memory_limit=memory) as st, tqdm(total=total_bytes(ps) or None, unit="B", unit_scale=True,
                                 disable=ctx.quiet or None, desc="ingest", file=sys.stderr) as bar:
        done = [0]

        def progress(n: int) -> None:
            bar.update(max(0, n - done[0]))
            done[0] = max(done[0], n)

        result = run_ingest(st, ps, opts, progress)
    out = result.as_dict()
    if as_json:
        emit_json(out)
        return
    click.echo(f"run {result.run_id}: {result.ingested} new samples, {result.duplicates} duplicates, "
               f"{result.quarantined} quarantined, {result.origins} new origins (source {name})")
    for r in result.first_reasons:
        click.echo(f"  quarantined {r}")
    if result.quarantined > len(result.first_reasons):
        click.echo(f"  ... see all with: mixline quarantine --run {result.run_id}")


@command(cli)
@click.argument("sample_id")
@click.option("--full", is_flag=True, help="Show the whole text, not the first 500 characters.")
def trace(ctx: Ctx, as_json: bool, sample_id: str, full: bool) -> None:
    """Where a sample came from: sources, ancestors, decisions, clusters and mixes."""
    from store.lineage import trace as run_trace

    with ctx.open(read_only=True) as st:
        t = run_trace(st, sample_id).as_dict()
    if as_json:
        emit_json(t)
        return
    s = t["sample"]
    click.echo(f"sample {s['sample_id']}  kind={s['kind']} source={s['source']} domain={s['domain']} "
               f"synth_depth={s['synth_depth']} chars={s['n_chars']}")
    text = s["text"] if full else s["text"][:500] + ("..." if len(s["text"]) > 500 else "")
    click.echo("  " + text.replace("\n", "\n  "))
    click.echo(f"sources ({len(t['sources'])}):")
    for o in t["sources"]:
        click.echo(f"  {o['source']} [{o['kind']}] {o['file']}:{o['locator']} id={o['original_id']} url={o['url']}")
    if t["ancestors"]:
        click.echo("ancestors:")
        for a in t["ancestors"]:
            click.echo(f"  {'  ' * (a['distance'] - 1)}{a['relation']} <- {a['sample_id']} [{a['kind']}, depth {a['synth_depth']}] run {a['run_id']} step {a['step']}")
    for g in t["generated_by"]:
        click.echo(f"generated by model {g['model_id']} ({g['name']}) trained on mix {g['mix_id']}")
    click.echo(f"decisions ({len(t['decisions'])}):")
    for d in t["decisions"]:
        click.echo(f"  {d['step']}: {d['verdict']}" + (f" ({d['reason']})" if d["reason"] else "") + f" run {d['run_id']}")
    for c in t["clusters"]:
        click.echo(f"cluster {c['method']} {c['cluster_id']} size {c['size']} {'kept' if c['kept'] else 'dropped'}")
    for m in t["mixes"]:
        click.echo(f"in mix {m['mix_id']} ({m['name']}) x{m['repeats']} [{m['split']}]")
    if t["redactions"]:
        click.echo("redactions: " + ", ".join(f"{k} {v}" for k, v in t["redactions"].items()))
    for c in t["scrubbed_into"]:
        click.echo(f"scrubbed into {c}")


@command(cli)
@click.argument("sample_ids", nargs=-1, required=True)
def impact(ctx: Ctx, as_json: bool, sample_ids: tuple[str, ...]) -> None:
    """What samples reached: descendant samples, mixes, and models (e.g. for deletion requests)."""
    from store.lineage import impact as run_impact

    with ctx.open(read_only=True) as st:
        out = run_impact(st, list(sample_ids)).as_dict()
    if as_json:
        emit_json(out)
        return
    click.echo(f"{len(out['roots'])} root(s) reached {len(out['samples'])} samples, "
               f"{len(out['mixes'])} mixes, {len(out['models'])} models")
    for s in out["samples"][:50]:
        click.echo(f"  sample {s['sample_id']} via {s['relation']} (distance {s['distance']})")
    if len(out["samples"]) > 50:
        click.echo(f"  ... {len(out['samples']) - 50} more (use --json)")
    for m in out["mixes"]:
        click.echo(f"  mix {m['mix_id']} {m.get('name') or ''}")
    for m in out["models"]:
        click.echo(f"  model {m['model_id']} {m.get('name') or ''} (trained on mix {m.get('mix_id')})")


@command(cli)
def stats(ctx: Ctx, as_json: bool) -> None:
    """Counts by kind, source and domain, and the synthetic-depth histogram."""
    from store.lineage import stats as run_stats

    with ctx.open(read_only=True) as st:
        out = run_stats(st)
    if as_json:
        emit_json(out)
        return
    click.echo(f"{out['samples']} samples ({out['chars']:,} chars), {out['origins']} origins, {out['edges']} edges, "
               f"{out['quarantined']} quarantined, {out['runs']} runs, {out['mixes']} mixes, {out['models']} models")
    for title, key in (("kind", "by_kind"), ("source", "by_source"), ("domain", "by_domain")):
        click.echo(f"by {title}:")
        for r in out[key]:
            click.echo(f"  {str(r['key']):<32} {r['samples']:>10,} samples {int(r['chars'] or 0):>14,} chars")
    click.echo("synthetic depth:")
    top = max((r["samples"] for r in out["synth_depth"]), default=1)
    for r in out["synth_depth"]:
        click.echo(f"  {r['depth']:>3} {r['samples']:>10,} {'#' * max(1, round(40 * r['samples'] / top))}")


@command(cli)
@click.argument("query")
def sql(ctx: Ctx, as_json: bool, query: str) -> None:
    """Run a read-only SQL query against the store."""
    import duckdb

    with ctx.open(read_only=True) as st:
        try:
            rows = st.rows(query)
        except ReadOnlyError:
            raise
        except duckdb.Error as exc:
            raise MixlineError(f"query failed: {str(exc).splitlines()[0]}") from exc
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("(no rows)")
        return
    cols = list(rows[0])
    click.echo("\t".join(cols))
    for r in rows:
        click.echo("\t".join(_cell(r[c]) for c in cols))


def _cell(v: Any) -> str:
    s = "NULL" if v is None else str(v)
    s = s.replace("\n", "\\n").replace("\t", " ")
    return s if len(s) <= 80 else s[:77] + "..."


@command(cli)
@click.option("--run", "run_id", default=None, help="Only this run's records.")
@click.option("--limit", default=50, show_default=True)
def quarantine(ctx: Ctx, as_json: bool, run_id: str | None, limit: int) -> None:
    """Records that could not be ingested, with file, line or offset, and reason."""
    with ctx.open(read_only=True) as st:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        rows = st.rows(f"SELECT run_id, file, locator, reason FROM quarantine {where} ORDER BY run_id, file, try_cast(regexp_extract(locator, '[0-9]+') AS BIGINT), locator LIMIT {int(limit)}", params)
        total = st.scalar(f"SELECT count(*) FROM quarantine {where}", params)
    if as_json:
        emit_json({"total": total, "records": rows})
        return
    click.echo(f"{total} quarantined record(s)")
    for r in rows:
        click.echo(f"  {r['file']}:{r['locator']}: {r['reason']}")


@command(cli)
@click.option("--limit", default=20, show_default=True)
def runs(ctx: Ctx, as_json: bool, limit: int) -> None:
    """Recent runs: what wrote to the store, with config hash and status."""
    with ctx.open(read_only=True) as st:
        rows = st.rows(f"SELECT run_id, kind, step, config_hash, status, started_at, finished_at, stats, error FROM runs ORDER BY started_at DESC LIMIT {int(limit)}")
    for r in rows:
        r["stats"] = json.loads(r["stats"]) if r["stats"] else None
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['run_id']}  {r['kind']:<12} {r['step']:<20} {r['status']:<7} config {r['config_hash']}"
                   + (f"  {r['error']}" if r["error"] else ""))


@command(cli)
def optimize(ctx: Ctx, as_json: bool) -> None:
    """Re-sort lineage tables so trace and impact stay fast at tens of millions of rows."""
    from store.lineage import optimize as run_optimize

    with ctx.open() as st:
        out = run_optimize(st)
    if as_json:
        emit_json(out)
    else:
        click.echo(f"sorted {out['edges']} edges")


@command(cli)
@click.argument("recipe", required=False)
@click.option("--where", default=None, help="SQL predicate over samples, e.g. \"source = 'oasst' AND synth_depth = 0\".")
@click.option("--new", "new_only", is_flag=True, help="Only samples no earlier run has decided about.")
@click.option("--show-default", is_flag=True, help="Print the built-in default recipe (TOML) and exit.")
def curate(ctx: Ctx, as_json: bool, recipe: str | None, where: str | None, new_only: bool, show_default: bool) -> None:
    """Run a curation recipe (TOML/YAML; the built-in default if omitted) over the store."""
    from curation.recipe import DEFAULT_RECIPE, Recipe

    if show_default:
        click.echo(DEFAULT_RECIPE, nl=False)
        return
    from tqdm import tqdm

    from curation.pipeline import curate as run_curate

    rec = Recipe.from_file(recipe) if recipe else Recipe.default()
    rec.build()
    with ctx.open() as st, tqdm(unit=" samples", disable=ctx.quiet or None, desc="curate", file=sys.stderr) as bar:
        result = run_curate(st, rec, where, new_only=new_only, progress=bar.update)
    out = result.as_dict()
    if as_json:
        emit_json(out)
        return
    click.echo(f"run {result.run_id}: {result.selected} selected, {result.kept} kept, {result.dropped} dropped")
    for step in result.steps:
        reasons = ", ".join(f"{k} {v}" for k, v in step["reasons"].items())
        click.echo(f"  {step['step']:<24} kept {step['kept']:>8}  dropped {step['dropped']:>8}" + (f"  ({reasons})" if reasons else ""))


@command(cli)
@click.argument("sample_id")
def why(ctx: Ctx, as_json: bool, sample_id: str) -> None:
    """Every curation decision about a sample, and its dedup clusters."""
    from curation.pipeline import why as run_why

    with ctx.open(read_only=True) as st:
        out = run_why(st, sample_id)
    if as_json:
        emit_json(out)
        return
    click.echo(f"sample {out['sample_id']}: {out['status']}")
    for d in out["decisions"]:
        click.echo(f"  {d['started_at']} {d['recipe']}  {d['step']}: {d['verdict']}" + (f" ({d['reason']})" if d["reason"] else ""))
    for c in out["clusters"]:
        click.echo(f"  {c['method']} cluster {c['cluster_id']} of {c['size']}: {'kept' if c['kept'] else 'dropped'}")


@cli.group()
def mix() -> None:
    """Build, inspect, compare, export and verify training mixes."""


@command(mix, "build")
@click.argument("recipe")
def mix_build(ctx: Ctx, as_json: bool, recipe: str) -> None:
    """Build a mix from a recipe (TOML/YAML); prints its content-addressed id."""
    from pipelines.mix import MixRecipe, build

    rec = MixRecipe.from_file(recipe)
    with ctx.open() as st:
        out = build(st, rec).as_dict()
    if as_json:
        emit_json(out)
        return
    click.echo(f"{out['mix_id']}  {out['name']}: {out['members']:,} members, {out['tokens']:,} tokens, "
               f"synthetic share {out['synthetic_share']:.3f}, {out['heldout']:,} held out"
               + ("" if out["created"] else " (already built: same recipe, same store state)"))
    for r in out["by_source"]:
        click.echo(f"  {r['key']:<28} {r['docs']:>9,} docs {r['tokens']:>12,} tokens")


@command(mix, "show")
@click.argument("mix_id")
def mix_show(ctx: Ctx, as_json: bool, mix_id: str) -> None:
    """Show a mix: recipe, composition, synthetic share, models trained on it."""
    from pipelines.mix import show

    with ctx.open(read_only=True) as st:
        out = show(st, mix_id)
    if as_json:
        emit_json(out)
        return
    click.echo(f"{out['mix_id']}  {out['name']}  built {out['created_at']} by run {out['run_id']}")
    click.echo(f"  {out['members']:,} members, {out['tokens']:,} tokens, synthetic share {out['synthetic_share']:.3f}, {out['heldout']:,} held out")
    for title in ("by_kind", "by_source", "by_domain"):
        click.echo(f"  {title.replace('_', ' ')}: " + ", ".join(f"{r['key']} {r['tokens']:,}" for r in out[title]))
    for m in out["models"]:
        click.echo(f"  trained: model {m['model_id']} ({m['name']})")


@command(mix, "diff")
@click.argument("a")
@click.argument("b")
def mix_diff(ctx: Ctx, as_json: bool, a: str, b: str) -> None:
    """What changed between two mixes, by source."""
    from pipelines.mix import diff

    with ctx.open(read_only=True) as st:
        out = diff(st, a, b)
    if as_json:
        emit_json(out)
        return
    click.echo(f"{out['a']} -> {out['b']}: +{out['added']:,} -{out['removed']:,} samples, tokens {out['tokens']['delta']:+,}")
    for r in out["by_source"]:
        click.echo(f"  {r['source']:<28} +{r['added']:,} -{r['removed']:,} repeats changed {r['repeats_changed']:,}")


@command(mix, "export")
@click.argument("mix_id")
@click.option("--format", "fmt", default="parquet", type=click.Choice(["parquet", "jsonl", "hf"]), show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write (under the export root).")
def mix_export(ctx: Ctx, as_json: bool, mix_id: str, fmt: str, out: Path) -> None:
    """Export a mix's data with manifest.json and a dataset card."""
    from pipelines.export import export

    with ctx.open(read_only=True) as st:
        res = export(st, mix_id, out, fmt)
    if as_json:
        emit_json(res)
    else:
        click.echo(f"exported {res['mix_id']} ({res['rows']:,} rows, {fmt}) to {res['out']}")


@command(mix, "verify")
@click.argument("folder", type=click.Path(path_type=Path))
def mix_verify(ctx: Ctx, as_json: bool, folder: Path) -> None:
    """Recompute every hash of an export and report differences (exit 1 if any)."""
    from pipelines.export import verify

    res = verify(folder)
    if as_json:
        emit_json(res)
    else:
        click.echo(f"{res['mix_id']}: {'OK' if res['ok'] else 'MISMATCH'} ({res['rows_checked']:,} rows checked)")
        for p in res["problems"]:
            click.echo(f"  {p}")
    if not res["ok"]:
        sys.exit(1)


@cli.group()
def pii() -> None:
    """Detect personal data: scan files, and scrub through the `pii` curation step."""


@command(pii, "scan")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--text-field", default="text", show_default=True, help="Field holding the text.")
@click.option("--id-field", default="id", show_default=True, help="Field holding the record id (else the line number).")
@click.option("--names", type=click.Choice(["lexicon", "spacy", "both", "none"]), default="lexicon", show_default=True,
              help="How person names and places are found: census/GeoNames lexicons with context (fast), spaCy NER, both, or none.")
def pii_scan(ctx: Ctx, as_json: bool, path: Path, text_field: str, id_field: str, names: str) -> None:
    """Print detected PII spans per JSONL record (offsets in the input text). Nothing is stored."""
    from curation.pii.detectors import Detector

    records: list[tuple[Any, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MixlineError(f"{path}:line {n}: malformed JSON ({exc.msg}); fix or remove the line") from exc
        text = rec.get(text_field) if isinstance(rec, dict) else None
        if not isinstance(text, str):
            raise MixlineError(f"{path}:line {n}: field {text_field!r} is missing or not a string; set --text-field")
        records.append((rec.get(id_field, n), text))
    det = Detector(names=names)
    found = det.detect([t for _, t in records])
    for (rid, _text), spans in zip(records, found, strict=True):
        if as_json:
            click.echo(json.dumps({"id": rid, "spans": [s.as_dict() for s in spans]}, ensure_ascii=False))
        else:
            click.echo(f"{rid}: " + (", ".join(f"{s.entity_type}[{s.start}:{s.end}] by {s.detector}" for s in spans) or "no PII"))


@cli.group()
def drift() -> None:
    """Echo-chamber drift: compare a batch with human reference text, calibrated on the reference."""


@command(drift, "check")
@click.option("--batch", "batch_where", required=True, help="SQL predicate over samples selecting the batch.")
@click.option("--reference", "reference_where", required=True, help="SQL predicate selecting human reference text.")
@click.option("--no-embeddings", is_flag=True, help="Text metrics only (skips MiniLM: MMD, Fréchet, Vendi, spread).")
@click.option("--bootstrap", default=30, show_default=True, help="Reference-vs-reference pairs for calibration.")
@click.option("--seed", default=0, show_default=True)
def drift_check(ctx: Ctx, as_json: bool, batch_where: str, reference_where: str, no_embeddings: bool, bootstrap: int, seed: int) -> None:
    """Per-metric values, calibrated thresholds and an overall alert; stored with the run."""
    from curation.drift import DriftConfig, check_store

    with ctx.open() as st:
        out = check_store(st, batch_where, reference_where, DriftConfig(bootstrap=bootstrap, seed=seed, embeddings=not no_embeddings))
    if as_json:
        emit_json(out)
        return
    click.echo(f"{'ALERT' if out['alert'] else 'ok'}: {out['n_batch']} batch samples vs {out['n_reference']} reference; moved: {', '.join(out['moved']) or 'nothing'}")
    for m in out["metrics"]:
        click.echo(f"  {m['metric']:<22} value {m['value']:.4f}  distance {m['distance']:.4f}  threshold {m['threshold']:.4f}{'  <-- moved' if m['alert'] else ''}")
    for n in out["notes"]:
        click.echo(f"  note: {n}")


@command(drift, "self-consumption")
@click.argument("mix_id")
@click.option("--model", "model_ref", required=True, help="The model about to be trained on the mix (a model id).")
@click.option("--no-record", is_flag=True, help="Only report; write no flags.")
def drift_self_consumption(ctx: Ctx, as_json: bool, mix_id: str, model_ref: str, no_record: bool) -> None:
    """Training samples of MIX written by the model, its ancestors, or its family; flagged."""
    from curation.drift import self_consumption
    from pipelines.mix import resolve_mix
    from pipelines.models import resolve_model

    with ctx.open() as st:
        model_id, _ = resolve_model(st, model_ref)
        if model_id is None:
            raise MixlineError(f"--model {model_ref!r} is not a model in this store; self-consumption needs its lineage")
        out = self_consumption(st, resolve_mix(st, mix_id), model_id, record=not no_record)
    if as_json:
        emit_json(out)
        return
    click.echo(f"{out['self_consumed']:,} of {out['train_samples']:,} training samples written by {model_id} or its ancestors "
               f"({out['self_consumed_share']:.1%}); with its family, {out['family_share']:.1%}")
    for g in out["by_generator"]:
        click.echo(f"  {g['model_id']:<28} {g['relation']:<9} {g['samples']:,}")


@command(drift, "report")
def drift_report(ctx: Ctx, as_json: bool) -> None:
    """Every drift check so far, oldest first, with the metrics that moved."""
    from curation.drift import report_table

    with ctx.open(read_only=True) as st:
        rows = report_table(st)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['checked_at']}  {'ALERT' if r['alert'] else 'ok   '}  batch [{r['batch']}] vs [{r['reference']}]  {r['moved'] or ''}")


@cli.group()
def model() -> None:
    """Tiny local models, fine-tuning on mixes, evaluation and generation, all with lineage."""


@command(model, "init-tiny")
@click.argument("mix_id")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the tokenizer and weights.")
@click.option("--vocab-size", default=2048, show_default=True)
@click.option("--n-embd", default=128, show_default=True)
@click.option("--n-layer", default=2, show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_init_tiny(ctx: Ctx, as_json: bool, mix_id: str, out: Path, vocab_size: int, n_embd: int, n_layer: int, seed: int) -> None:
    """Train a byte-level BPE tokenizer on a mix and build a small GPT-2 (no download)."""
    from pipelines.mix import resolve_mix
    from pipelines.models import TinyConfig, init_tiny

    with ctx.open() as st:
        res = init_tiny(st, resolve_mix(st, mix_id), out, TinyConfig(vocab_size=vocab_size, n_embd=n_embd, n_layer=n_layer), seed)
    emit_json(res) if as_json else click.echo(f"{res['model_id']}: {res['parameters']:,} parameters in {res['path']}")


@command(model, "train")
@click.argument("base")
@click.argument("mix_id")
@click.option("--out", required=True, type=click.Path(path_type=Path))
@click.option("--steps", default=200, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--method", default="full", type=click.Choice(["full", "lora"]), show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_train(ctx: Ctx, as_json: bool, base: str, mix_id: str, out: Path, steps: int, batch_size: int, lr: float, method: str, seed: int) -> None:
    """Fine-tune BASE (a model id, a local folder, or a hub name when online) on a mix."""
    from pipelines.mix import resolve_mix
    from pipelines.models import TrainConfig, train

    with ctx.open() as st:
        res = train(st, base, resolve_mix(st, mix_id), out, TrainConfig(steps=steps, batch_size=batch_size, lr=lr, method=method, seed=seed))
    if as_json:
        emit_json(res)
        return
    click.echo(f"{res['model_id']}: final loss {res['final_loss']:.3f}, {res['tokens_per_second']:,.0f} tokens/s")
    sc = res["self_consumption"]
    if sc["self_consumed"] or sc["family"]:
        click.echo(f"warning: {sc['self_consumed']:,} training samples were written by this model or its ancestors, and "
                   f"{sc['family']:,} by models of its family ({sc['family_share']:.1%} of {sc['train_samples']:,}); "
                   "they are flagged (see `mixline why`)", err=True)


@command(model, "eval")
@click.argument("model_id")
@click.option("--set", "sets", multiple=True, required=True, help="NAME=PREDICATE over samples, e.g. general=\"source = 'wiki'\".")
@click.option("--max-docs", default=200, show_default=True)
def model_eval(ctx: Ctx, as_json: bool, model_id: str, sets: tuple[str, ...], max_docs: int) -> None:
    """Bits per character on held-out sets, compared with the parent model."""
    from pipelines.models import evaluate

    parsed = {}
    for s in sets:
        if "=" not in s:
            raise MixlineError(f"--set {s!r} must be NAME=PREDICATE")
        k, v = s.split("=", 1)
        parsed[k] = v
    with ctx.open() as st:
        res = evaluate(st, model_id, parsed, max_docs)
    if as_json:
        emit_json(res)
        return
    for name, r in res["sets"].items():
        click.echo(f"{name}: {r['bits_per_char']:.3f} bits/char on {r['docs']} docs" + (f" (parent {r['parent_bits_per_char']:.3f})" if "parent_bits_per_char" in r else ""))


@command(model, "generate")
@click.argument("model_id")
@click.option("--n", default=50, show_default=True)
@click.option("--prompts", "prompts_where", default="kind <> 'eval' AND synth_depth = 0", show_default=True, help="--where predicate for prompt samples.")
@click.option("--temperature", default=1.0, show_default=True)
@click.option("--max-new-tokens", default=48, show_default=True)
@click.option("--seed", default=0, show_default=True)
def model_generate(ctx: Ctx, as_json: bool, model_id: str, n: int, prompts_where: str, temperature: float, max_new_tokens: int, seed: int) -> None:
    """Write N synthetic samples from prompts; each records its model, prompt and decoding."""
    from pipelines.models import GenerateConfig, generate

    with ctx.open() as st:
        res = generate(st, model_id, GenerateConfig(n=n, prompts_where=prompts_where, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed))
    emit_json(res) if as_json else click.echo(f"{res['generated']} samples from {res['model_id']} as source {res['source']} (synthetic depth {res['synth_depth']})")


@command(cli, "loop")
@click.argument("config")
@click.option("--workdir", default="loop-out", show_default=True, type=click.Path(path_type=Path), help="Where checkpoints go.")
def loop_cmd(ctx: Ctx, as_json: bool, config: str, workdir: Path) -> None:
    """Run generations of generate, mix, train, evaluate and drift check; resumes where it stopped."""
    from pipelines.loop import Loop, LoopConfig

    cfg = LoopConfig.from_file(config)
    with ctx.open() as st:
        rows = Loop(st, cfg, workdir).run()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"gen {r['generation']} {r['strategy']:<11} bits/char {r['bits_per_char']:.3f}  drift "
                   f"{'ALERT ' + ','.join(r['moved']) if r['drift_alert'] else ('ok' if r['drift_alert'] is not None else '-')}"
                   f"  model {r['model_id']}  mix {r['mix_id']}" + (f"  [{r['gate']}]" if r.get("gate") else ""))


def main() -> None:
    cli(prog_name="mixline")


if __name__ == "__main__":
    main()
