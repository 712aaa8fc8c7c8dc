"""`mixline drift`: check, self-consumption, report."""

from __future__ import annotations

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit

from mixline.errors import MixlineError


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
    from mixline.curation.drift import DriftConfig, check_store

    with ctx.open() as st:
        out = check_store(st, batch_where, reference_where, DriftConfig(bootstrap=bootstrap, seed=seed, embeddings=not no_embeddings))
    if emit(as_json, out):
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
    from mixline.curation.drift import self_consumption
    from mixline.pipelines.mix import resolve_mix
    from mixline.pipelines.models import resolve_model

    with ctx.open() as st:
        model_id, _ = resolve_model(st, model_ref)
        if model_id is None:
            raise MixlineError(f"--model {model_ref!r} is not a model in this store; self-consumption needs its lineage")
        out = self_consumption(st, resolve_mix(st, mix_id), model_id, record=not no_record)
    if emit(as_json, out):
        return
    click.echo(f"{out['self_consumed']:,} of {out['train_samples']:,} training samples written by {model_id} or its ancestors "
               f"({out['self_consumed_share']:.1%}); with its family, {out['family_share']:.1%}")
    for g in out["by_generator"]:
        click.echo(f"  {g['model_id']:<28} {g['relation']:<9} {g['samples']:,}")


@command(drift, "report")
def drift_report(ctx: Ctx, as_json: bool) -> None:
    """Every drift check so far, oldest first, with the metrics that moved."""
    from mixline.curation.drift import report_table

    with ctx.open(read_only=True) as st:
        rows = report_table(st)
    if emit(as_json, rows):
        return
    for r in rows:
        click.echo(f"{r['checked_at']}  {'ALERT' if r['alert'] else 'ok   '}  batch [{r['batch']}] vs [{r['reference']}]  {r['moved'] or ''}")
