"""`mixline ingest`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from mixline.pipelines.cli.app import Ctx, cli, command, emit, executor_options, make_executor
from mixline.store import Store


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
@click.option("--max-file-bytes", default=256 << 30, show_default=True,
              help="Stop reading a file past this many decompressed bytes (0: no limit); guards against compression bombs.")
@click.option("--no-header", is_flag=True, help="CSV/TSV files have no header row; fields are named 0, 1, ...")
@click.option("--max-bad-share", default=0.5, show_default=True, type=float,
              help="Stop and roll back when a larger share of records is bad.")
@click.option("--from", "origin", type=click.Choice(["datatrove", "distilabel"]), default=None,
              help="Output of another tool: datatrove (drop reasons become decisions) or distilabel (model and generations kept).")
@click.option("--allow-bad", is_flag=True, help="Keep the good records however many are bad; the bad ones are quarantined.")
@executor_options
def ingest(ctx: Ctx, as_json: bool, paths: tuple[str, ...], kind: str, source: str | None, license_: str | None,
           domain: str | None, text_fields: tuple[str, ...], id_field: str | None, url_field: str | None,
           fmt: str | None, split: str | None, max_bytes: int, max_file_bytes: int, no_header: bool, max_bad_share: float,
           allow_bad: bool, origin: str | None, executor: str, address: str | None, num_cpus: int | None,
           work_dir: str | None) -> None:
    """Ingest files, folders or Hugging Face datasets (hf:NAME) with their provenance."""
    from mixline.pipelines.ingest import default_source_name, total_bytes
    from tqdm import tqdm

    from mixline import api

    ps = [Path(p) for p in paths]
    if origin == "distilabel" and not text_fields:
        text_fields = ("generation",)
    name = source or default_source_name(paths[0])
    opts = {"license": license_, "domain": domain, "id_field": id_field, "url_field": url_field, "format": fmt,
            "split": split, "max_bytes": max_bytes, "max_file_bytes": max_file_bytes, "csv_header": not no_header,
            "max_bad_share": max_bad_share, "allow_bad": allow_bad, "origin": origin}
    # A memory cap keeps DuckDB's page cache from growing with the corpus; it spills instead.
    memory = os.environ.get("MIXLINE_MEMORY_LIMIT", "1GB")
    ex = make_executor(executor, address, num_cpus, work_dir)
    with Store(ctx.store_path, memory_limit=memory) as st, tqdm(total=total_bytes(ps) or None, unit="B", unit_scale=True,
                                 disable=ctx.quiet or None, desc="ingest", file=sys.stderr) as bar:
        done = [0]

        def progress(n: int) -> None:
            bar.update(max(0, n - done[0]))
            done[0] = max(done[0], n)

        try:
            result = api.ingest(st, ps, kind=kind, source=name, text_field=text_fields or ("text",), progress=progress,
                                executor=ex, **opts)
        finally:
            if ex is not None:
                ex.shutdown()
    out = result.as_dict()
    if emit(as_json, out):
        return
    click.echo(f"run {result.run_id}: {result.ingested} new samples, {result.duplicates} duplicates, "
               f"{result.quarantined} quarantined, {result.origins} new origins (source {name})")
    for r in result.first_reasons:
        click.echo(f"  quarantined {r}")
    if result.quarantined > len(result.first_reasons):
        click.echo(f"  ... see all with: mixline quarantine --run {result.run_id}")
