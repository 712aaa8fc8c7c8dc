"""Curation commands: curate, why, pii scan."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit, executor_options, make_executor

from mixline.errors import MixlineError


@command(cli)
@click.argument("recipe", required=False)
@click.option("--where", default=None, help="SQL predicate over samples, e.g. \"source = 'oasst' AND synth_depth = 0\".")
@click.option("--new", "new_only", is_flag=True, help="Only samples no earlier run has decided about.")
@click.option("--show-default", is_flag=True, help="Print the built-in default recipe (TOML) and exit.")
@click.option("--dry-run", is_flag=True,
              help="Run the recipe, report keep rates per kind, source and step with scrubbed examples, and write nothing.")
@click.option("--examples", default=3, show_default=True, type=click.IntRange(0, 50),
              help="With --dry-run: excerpts shown per drop reason (PII scrubbed).")
@executor_options
def curate(ctx: Ctx, as_json: bool, recipe: str | None, where: str | None, new_only: bool, show_default: bool,
           dry_run: bool, examples: int, executor: str, address: str | None, num_cpus: int | None,
           work_dir: str | None) -> None:
    """Run a curation recipe (TOML/YAML; the built-in default if omitted) over the store.

    Tune a recipe with --dry-run first: it computes every decision, then rolls them back.
    """
    from mixline.curation.recipe import DEFAULT_RECIPE, Recipe

    if show_default:
        click.echo(DEFAULT_RECIPE, nl=False)
        return
    from tqdm import tqdm

    from mixline import api

    rec = Recipe.from_file(recipe) if recipe else Recipe.default()
    rec.build()
    ex = make_executor(executor, address, num_cpus, work_dir)
    try:
        with ctx.open() as st, tqdm(unit=" samples", disable=ctx.quiet or None, desc="curate", file=sys.stderr) as bar:
            result = api.curate(st, rec, where, new_only=new_only, progress=bar.update, dry_run=dry_run,
                                examples=examples, executor=ex)
    finally:
        if ex is not None:
            ex.shutdown()
    out = result.as_dict()
    if emit(as_json, out):
        return
    head = "dry run (nothing was written)" if dry_run else f"run {result.run_id}"
    click.echo(f"{head}: {result.selected} selected, {result.kept} kept, {result.dropped} dropped")
    for col, groups in (("kind", result.by_kind), ("source", result.by_source)):
        if groups:
            click.echo(f"  by {col}:")
            for g in groups:
                click.echo(f"    {str(g[col]):<22} {g['kept']:>8} of {g['selected']:>8} kept ({g['kept_share']:.1%})"
                           + (f", {g['rewritten']} rewritten" if g["rewritten"] else ""))
    if dry_run:
        click.echo("  by step:")
    for step in result.steps:
        reasons = ", ".join(f"{k} {v}" for k, v in step["reasons"].items())
        click.echo(f"  {step['step']:<24} kept {step['kept']:>8}  dropped {step['dropped']:>8}" + (f"  ({reasons})" if reasons else ""))
    last = None
    for ex in result.examples:
        if (ex["step"], ex["reason"]) != last:
            last = (ex["step"], ex["reason"])
            click.echo(f"  dropped by {ex['step']} as {ex['reason']}, for example:")
        text = " ".join(ex["text"].split())
        click.echo(f"    {ex['sample_id'][:12]} [{ex['kind']}/{ex['source']}] {text}")


@command(cli)
@click.argument("sample_id")
def why(ctx: Ctx, as_json: bool, sample_id: str) -> None:
    """Every curation decision about a sample, and its dedup clusters."""
    from mixline import api

    with ctx.open(read_only=True) as st:
        out = api.why(st, sample_id).to_dict()
    if emit(as_json, out):
        return
    click.echo(f"sample {out['sample_id']}: {out['status']}")
    for d in out["decisions"]:
        click.echo(f"  {d['started_at']} {d['recipe']}  {d['step']}: {d['verdict']}" + (f" ({d['reason']})" if d["reason"] else ""))
    if out["steps"]:
        skipped = [f"{st['step']} {st['applied']}" for st in out["steps"] if st["applied"] != "applied"]
        click.echo("  steps of the latest run: " + (", ".join(skipped) if skipped else "all applied"))
    for c in out["clusters"]:
        click.echo(f"  {c['method']} cluster {c['cluster_id']} of {c['size']}: {'kept' if c['kept'] else 'dropped'}")


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
    from mixline.curation.pii.detectors import Detector

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
