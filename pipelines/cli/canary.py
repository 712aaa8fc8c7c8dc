"""`mixline canary`: plant random secrets into copies of a source's samples, and list them."""

from __future__ import annotations

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit


@cli.group()
def canary() -> None:
    """Canaries: planted secrets that `mixline model audit` looks for in a trained model."""


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: give counts separated by commas, e.g. 1,4,16") from None


@command(canary, "plant")
@click.option("--source", required=True, help="The source whose samples carry the canaries (e.g. a conversation source).")
@click.option("--n", "n", default=10, show_default=True, help="Canaries per format and repeat count.")
@click.option("--repeats", default="1,4,16", show_default=True, help="Copies of each canary, comma-separated counts.")
@click.option("--format", "formats", default="plain,phone", show_default=True,
              help="plain (a digit code no scrubber can know), phone, email (PII-shaped), comma-separated.")
@click.option("--where", default=None, metavar="PRED", help="Only carriers matching this predicate.")
@click.option("--seed", default=0, show_default=True, help="Picks carriers and sentences; secrets are always random.")
def canary_plant(ctx: Ctx, as_json: bool, source: str, n: int, repeats: str, formats: str, where: str | None, seed: int) -> None:
    """Plant canaries before curating: each is a random secret sentence in copies of one carrier sample,
    which the copies replace. The secrets stay in the store's secret table and are never shown."""
    from mixline.pipelines.canaries import PlantSpec, plant

    spec = PlantSpec(source, n, _ints(repeats), tuple(f.strip() for f in formats.split(",") if f.strip()), seed, where)
    with ctx.open() as st:
        out = plant(st, spec)
    if emit(as_json, out):
        return
    by = ", ".join(f"{k}: {v}" for k, v in out["by_format_and_repeats"].items())
    click.echo(f"planted {out['canaries']} canaries in {out['copies']} copies of {source}'s samples ({by}); run {out['run_id']}")
    click.echo("  curate, mix and train as usual, then `mixline model audit MODEL` measures their exposure")


@command(canary, "list")
def canary_list(ctx: Ctx, as_json: bool) -> None:
    """Every canary: its format, copies, source and carrier (never its secret)."""
    from mixline.pipelines.canaries import list_all

    with ctx.open(read_only=True) as st:
        rows = list_all(st)
    if emit(as_json, rows):
        return
    for r in rows:
        click.echo(f"{r['canary_id']}  {r['format']:<6} x{r['copies']:<4} {r['source']}  carrier {r['carrier_id']}")
    if not rows:
        click.echo("no canary planted: `mixline canary plant --source S`")
