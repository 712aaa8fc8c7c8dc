"""Store commands: init, stats, sql, quarantine, runs, optimize, doctor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit

from mixline.errors import ConfigError


@command(cli)
@click.option("--catalog", default=None, metavar="URL",
              help="Create the store in a DuckLake catalog: postgresql://user@host/db (many writers) "
                   "or sqlite:///path.sqlite (many processes on one machine).")
@click.option("--data-path", default=None, metavar="DIR",
              help="Where a DuckLake store writes its Parquet files (shared storage for a cluster). "
                   "Default for SQLite: beside the catalog file.")
def init(ctx: Ctx, as_json: bool, catalog: str | None, data_path: str | None) -> None:
    """Create the store (or migrate it to this mixline's schema).

    With --catalog, the store lives in a DuckLake catalog: writers in many processes commit
    concurrently, readers never wait, and every run records the snapshot it committed. Name it
    afterwards with `--store URL` or MIXLINE_STORE=URL.
    """
    from mixline.store import Store, lake

    if catalog is None and data_path is not None:
        raise ConfigError("--data-path goes with --catalog (a single-file store keeps everything in its file)")
    if catalog is not None:
        target = lake.parse(catalog)
        if data_path is None:
            data_path = target.default_data_path()
            if data_path is None:
                raise ConfigError("a PostgreSQL catalog needs --data-path DIR: the folder (shared by every "
                                  "writer and worker) where the store's Parquet files go")
        Path(data_path).mkdir(parents=True, exist_ok=True)
        if target.sqlite_path is not None:
            target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        st = Store(catalog, data_path=str(Path(data_path).resolve()))
    else:
        st = ctx.open()
    with st:
        if catalog is not None:
            from mixline.curation.pii.scrub import store_key

            store_key(st)  # made now, by one process, not raced for by the first concurrent curates
        out = {"store": st.display_path, "schema_version": st.schema_version(),
               "backend": st.lake.backend if st.lake else "duckdb-file", "snapshot": st.current_snapshot()}
    if not emit(as_json, out):
        click.echo(f"store {out['store']} at schema v{out['schema_version']}")
        if catalog is not None:
            click.echo(f"DuckLake catalog ({out['backend']}), data under {data_path}; use it with "
                       f"`mixline --store '{out['store']}' ...` or MIXLINE_STORE", err=True)


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
@click.option("--abort", "abort_run", metavar="RUN_ID",
              help="Mark a run whose process died as 'aborted' (a DuckLake run owned by another machine; "
                   "runs on this machine are marked by the next writer).")
def runs(ctx: Ctx, as_json: bool, limit: int, abort_run: str | None) -> None:
    """Recent runs: what wrote to the store, with config hash and status."""
    if abort_run:
        with ctx.open() as st:
            if not st.mark_aborted(abort_run):
                raise ConfigError(f"no run {abort_run} is left running in {st.display_path}; see `mixline runs`")
        if not ctx.quiet:
            click.echo(f"run {abort_run} marked aborted", err=True)
    with ctx.open(read_only=True) as st:
        rows = st.rows("SELECT run_id, kind, step, config_hash, status, started_at, finished_at, stats, error, snapshot_id, "
                       f"owner FROM {st.runs_sql()} ORDER BY started_at DESC LIMIT ?", [int(limit)])
    for r in rows:
        r["stats"] = json.loads(r["stats"]) if r["stats"] else None
    if emit(as_json, rows):
        return
    for r in rows:
        click.echo(f"{r['run_id']}  {r['kind']:<12} {r['step']:<20} {r['status']:<7} config {r['config_hash']}"
                   + (f"  snapshot {r['snapshot_id']}" if r["snapshot_id"] is not None else "")
                   + (f"  on {r['owner']} since {r['started_at']:%Y-%m-%d %H:%M:%S}"
                      if r["status"] == "running" and r["owner"] else "")
                   + (f"  {r['error']}" if r["error"] else "")
                   + _slowest(r["stats"]))


def _slowest(stats: dict | None, n: int = 3) -> str:
    """A curate run's slowest steps ("  slowest: pii_v3 5.9s, language_v2 4.2s"), from its timings."""
    timings = (stats or {}).get("timings") or {}
    top = sorted(((k, v["seconds"]) for k, v in timings.items() if not k.startswith("(")), key=lambda kv: -kv[1])[:n]
    return ("  slowest: " + ", ".join(f"{k} {secs:.1f}s" for k, secs in top)) if top else ""


@command(cli)
@click.option("--expire-days", type=float, default=None, metavar="DAYS",
              help="DuckLake stores: expire snapshots older than DAYS, except those mixes were built at; "
                   "time travel to them ends and their files are deleted.")
def optimize(ctx: Ctx, as_json: bool, expire_days: float | None) -> None:
    """Re-sort lineage tables so trace and impact stay fast at tens of millions of rows.

    On a DuckLake store, also merge the small files that every run commits (time travel is
    unchanged), and delete the files an earlier pass replaced once no reader can still be
    using them (an hour; MIXLINE_LAKE_CLEANUP_GRACE_S).
    """
    from mixline.store.lineage import optimize as run_optimize

    with ctx.open() as st:
        out = run_optimize(st, expire_days=expire_days)
    if emit(as_json, out):
        return
    click.echo(f"sorted {out['edges']} edges")
    if "files_merged" in out:
        click.echo(f"merged {out['files_merged']} small files into {out['files_created']}; deleted "
                   f"{out['files_deleted']} files replaced earlier; {out['files_waiting']} replaced files stay on disk "
                   "for readers in flight, until an optimize an hour or more from now")
    if expire_days is not None:
        click.echo(f"expired {out['snapshots_expired']} snapshots older than {expire_days:g} days; "
                   f"kept {out['snapshots_kept']} that mixes were built at")


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
