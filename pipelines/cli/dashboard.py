"""`mixline dashboard`: the read-only local web UI."""

from __future__ import annotations

import click
from mixline.pipelines.cli.app import Ctx, cli, command


@command(cli)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but 127.0.0.1 exposes the store to the network (there is no login).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME[:PORT]",
              help="Another Host header to answer (repeatable): a name set up for this machine, or a proxy's NAME:PORT. "
                   "Requests naming any other host get 400 (DNS rebinding).")
def dashboard(ctx: Ctx, as_json: bool, host: str, port: int, allowed_hosts: tuple[str, ...]) -> None:
    """Serve a read-only web UI over the store: funnel, samples and their family trees, mixes, models, loops, drift, runs.

    It keeps working while a run writes: pages then read the last committed run's snapshot and say so.
    """
    from mixline.dashboards.app import serve

    serve(ctx.store_path, host=host, port=port, echo=lambda m: click.echo(m, err=True), allowed_hosts=allowed_hosts)
