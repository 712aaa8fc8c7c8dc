"""`mixline drift`: check, check-mix, trend, self-consumption, report."""

from __future__ import annotations

import click
from mixline.curation.drift import human_level
from mixline.pipelines.cli.app import Ctx, cli, command, emit


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
    from mixline import api

    with ctx.open() as st:
        out = api.drift_check(st, batch_where, reference_where, embeddings=not no_embeddings, bootstrap=bootstrap,
                              seed=seed).to_dict()
    if emit(as_json, out):
        return
    click.echo(f"{'ALERT' if out['alert'] else 'ok'}: {out['n_batch']} batch samples vs {out['n_reference']} reference; moved: {', '.join(out['moved']) or 'nothing'}")
    _metrics(out)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _metrics(out: dict) -> None:
    click.echo(f"  {'metric':<20} {'value':>9} {'human':>9} {'distance':>9} {'threshold':>9}")
    for m in out["metrics"]:
        human = human_level(m["metric"], m["reference_value"], m.get("null_mean"))
        ref = f"{human:9.4f}" if human is not None else f"{'-':>9}"
        click.echo(f"  {m['metric']:<20} {m['value']:9.4f} {ref} {m['distance']:9.4f} {m['threshold']:9.4f}"
                   + (f"  MOVED: {m['direction']}" if m["alert"] else ""))
    for n in out["notes"]:
        click.echo(f"  note: {n}")


@command(drift, "check-mix")
@click.argument("mix_id")
@click.option("--reference", "reference_where", required=True, help="SQL predicate selecting human reference text.")
@click.option("--model", "model_ref", default=None, help="The model about to be trained on the mix: reports its family's share.")
@click.option("--no-embeddings", is_flag=True, help="Text metrics only.")
@click.option("--bootstrap", default=30, show_default=True, help="Reference-vs-reference pairs for calibration.")
@click.option("--seed", default=0, show_default=True)
@click.option("--no-record", is_flag=True, help="Only report; record no checks or decisions.")
def drift_check_mix(ctx: Ctx, as_json: bool, mix_id: str, reference_where: str, model_ref: str | None, no_embeddings: bool,
                    bootstrap: int, seed: int, no_record: bool) -> None:
    """Judge the mix about to be trained (members weighted by repeats) against human text: the gate."""
    from mixline import api

    with ctx.open() as st:
        out = api.drift_check_mix(st, mix_id, reference_where, model=model_ref, embeddings=not no_embeddings,
                                  bootstrap=bootstrap, seed=seed, record=not no_record).to_dict()
    if emit(as_json, out):
        return
    fam = f"; written by the model's family {out['family_share']:.1%}" if out["family_share"] is not None else ""
    depth = ", ".join(f"depth {d}: {s:.1%}" for d, s in out["depth_histogram"].items())
    click.echo(f"{'ALERT' if out['alert'] else 'pass'}: mix {out['mix_id']}, synthetic share {out['synthetic_share']:.1%}{fam} ({depth})")
    _metrics(out)
    other = [m for m in out.get("beyond_noise", []) if m not in out["moved"]]
    if other:
        click.echo(f"  beyond human-vs-human noise but not toward collapse, or under the margins "
                   f"(min_effect {out['margins']['min_effect']:.0%}, min_tail_loss {out['margins']['min_tail_loss']:.0%}): "
                   + ", ".join(other))


@command(drift, "trend")
@click.argument("loop")
@click.option("--alpha", default=0.02, show_default=True, help="Family-wise false-alert rate across the metrics.")
def drift_trend(ctx: Ctx, as_json: bool, loop: str, alpha: float) -> None:
    """Each metric across a loop's generations, its slope, and a test for a steady move."""
    from mixline import api

    with ctx.open(read_only=True) as st:
        out = api.drift_trend(st, loop, alpha).to_dict()
    if emit(as_json, out):
        return
    for t in out["trends"]:
        click.echo(f"{t['strategy']} ({t['of']}): {'TREND' if t['flagged'] else 'no trend'}"
                   + (f" in {', '.join(t['moved'])}" if t["moved"] else ""))
        for m in t["metrics"]:
            series = " ".join(f"{d:+.3f}" for d in m["distances"])
            click.echo(f"  {m['metric']:<20} gens {m['generations'][0]}-{m['generations'][-1]}: {series}  slope {m['slope']:+.4f}/gen "
                       f"(z {m['z']:+.1f}, p {m['p']:.3g}; Mann-Kendall S {m['mann_kendall_s']:+d})"
                       + (f"  TREND: {m['direction']}" if m["flagged"] else ""))


@command(drift, "self-consumption")
@click.argument("mix_id")
@click.option("--model", "model_ref", required=True, help="The model about to be trained on the mix (a model id).")
@click.option("--no-record", is_flag=True, help="Only report; write no flags.")
def drift_self_consumption(ctx: Ctx, as_json: bool, mix_id: str, model_ref: str, no_record: bool) -> None:
    """Training samples of MIX written by the model, its ancestors, or its family; flagged."""
    from mixline import api

    with ctx.open() as st:
        out = api.self_consumption(st, mix_id, model_ref, record=not no_record).to_dict()
    model_id = out["model_id"]
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
        click.echo(f"{r['checked_at']}  {'ALERT' if r['alert'] else 'ok   '}  [{r['batch']}] vs [{r['reference']}]")
        for m in r["moved"]:
            click.echo(f"    {m['metric']:<20} {m['value']:.4f} vs human {_num(m['reference_value'])}"
                       f" (threshold {m['threshold']:.4f}): {m['direction']}")
