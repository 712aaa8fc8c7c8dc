"""Store commands: init, stats, sql, quarantine, runs, optimize, doctor."""

from __future__ import annotations

import json
from typing import Any

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit


@command(cli)
def init(ctx: Ctx, as_json: bool) -> None:
    """Create the store (or migrate it to this mixline's schema)."""
    with ctx.open() as st:
        out = {"store": st.path, "schema_version": st.schema_version()}
    if not emit(as_json, out):
        click.echo(f"store {out['store']} at schema v{out['schema_version']}")


@command(cli)
def stats(ctx: Ctx, as_json: bool) -> None:
    """Counts by kind, source and domain, and the synthetic-depth histogram."""
    from mixline.store.lineage import stats as run_stats

    with ctx.open(read_only=True) as st:
        out = run_stats(st)
    if emit(as_json, out):
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
    """Run one read-only SELECT against the store.

    The connection cannot read or write files, attach databases or install extensions, and
    the table holding the PII key is hidden.
    """
    from mixline.store.select import run_user_query

    rows = run_user_query(ctx.store_path, query)
    if emit(as_json, rows):
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
    if emit(as_json, {"total": total, "records": rows}):
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
    if emit(as_json, rows):
        return
    for r in rows:
        click.echo(f"{r['run_id']}  {r['kind']:<12} {r['step']:<20} {r['status']:<7} config {r['config_hash']}"
                   + (f"  {r['error']}" if r["error"] else ""))


@command(cli)
def optimize(ctx: Ctx, as_json: bool) -> None:
    """Re-sort lineage tables so trace and impact stay fast at tens of millions of rows."""
    from mixline.store.lineage import optimize as run_optimize

    with ctx.open() as st:
        out = run_optimize(st)
    if not emit(as_json, out):
        click.echo(f"sorted {out['edges']} edges")


@command(cli)
def doctor(ctx: Ctx, as_json: bool) -> None:
    """Check the store's invariants: lineage, runs and mixes point at rows that exist. Exit 1 if any fails."""
    import sys

    from mixline.store.doctor import CHECKS
    from mixline.store.doctor import doctor as run_doctor

    with ctx.open(read_only=True) as st:
        report = run_doctor(st)
    if not emit(as_json, report.to_dict()):
        for name, n in report.checks.items():
            click.echo(f"  {'ok ' if n == 0 else 'BAD' if name != 'runs_left_running' else 'note'} {name:<34} {n:>8}  {CHECKS[name][0]}")
        click.echo(f"  {report.aborted_runs} runs aborted (their writes were rolled back)")
        click.echo("healthy" if report.healthy else "problems found")
    if not report.healthy:
        sys.exit(1)
