"""The `mixline` group, the per-command context, and the one emit-or-render helper."""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import click
import duckdb
from mixline.store import Store, resolve_store_path

from mixline.errors import ConfigError, MixlineError, safe_message

# Set when SIGTERM arrives (see `main`), so that the error it causes inside a query exits 143.
TERMINATED = threading.Event()
F = TypeVar("F", bound=Callable[..., Any])


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_json_default, ensure_ascii=False, indent=2))


def emit(as_json: bool, obj: Any) -> bool:
    """Print `obj` as JSON when --json was given; True when it did, so the caller skips its text."""
    if as_json:
        emit_json(obj.to_dict() if hasattr(obj, "to_dict") else obj)
    return as_json


class Ctx:
    """What every command gets: where the store is and how to talk."""

    def __init__(self, store_path: str | None, quiet: bool) -> None:
        self.store_path = resolve_store_path(store_path)
        self.quiet = quiet

    def open(self, read_only: bool = False) -> Store:
        st = Store(self.store_path, read_only=read_only)
        if st.snapshot and not self.quiet:
            click.echo(f"note: a writer holds the store; reading its snapshot as of run {st.snapshot['run_id']} "
                       f"(published {st.snapshot['published_at']} UTC)", err=True)
        return st

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
            except duckdb.Error as exc:
                # Not one of ours: no traceback, and no data values quoted from the store.
                click.echo(f"error: the store could not run this command ({safe_message(exc)})", err=True)
                sys.exit(1)
            except OSError as exc:
                where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
                click.echo(f"error: cannot read or write{where}: {exc.strerror or safe_message(exc)}", err=True)
                sys.exit(3)
            except KeyboardInterrupt:
                click.echo("error: interrupted; the run was rolled back", err=True)
                sys.exit(130)
            except Exception as exc:
                if TERMINATED.is_set():  # DuckDB turns the unwinding SystemExit into "Query interrupted"
                    click.echo("error: terminated; the run was rolled back", err=True)
                    sys.exit(143)
                if os.environ.get("MIXLINE_DEBUG"):
                    raise
                # A bug: one line, with quoted values withheld; MIXLINE_DEBUG=1 shows the traceback.
                click.echo(f"error: internal error ({safe_message(exc)}); this is a bug in mixline. "
                           "Run again with MIXLINE_DEBUG=1 for the traceback, and report it", err=True)
                sys.exit(1)

        wrapper = click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter on stderr.")(wrapper)
        wrapper = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(wrapper)
        return group.command(name, **kw)(click.pass_obj(wrapper))  # type: ignore[return-value]

    return deco


def executor_options(fn: F) -> F:
    """--executor local|ray and the Ray options, for commands that can run on Ray."""
    fn = click.option("--work-dir", default=None, metavar="DIR",
                      help="Ray: where workers write Parquet shards (shared storage on a cluster); "
                           "default beside the store, or under a DuckLake store's data path.")(fn)
    fn = click.option("--num-cpus", type=click.IntRange(1), default=None,
                      help="Ray, with no --address: CPUs of the local Ray instance (default: all).")(fn)
    fn = click.option("--address", default=None, metavar="ADDR",
                      help="Ray: join this cluster (`auto`, or ray://head:10001) instead of starting one.")(fn)
    fn = click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                      help="Run in this process, or on Ray Data (`pip install mixline[ray]`).")(fn)
    return fn


def make_executor(name: str, address: str | None, num_cpus: int | None, work_dir: str | None) -> Any:
    if name == "local":
        if address or num_cpus or work_dir:
            raise ConfigError("--address, --num-cpus and --work-dir go with --executor ray")
        return None
    from mixline.curation.distributed import RayExecutor

    return RayExecutor(address=address, num_cpus=num_cpus, work_dir=work_dir)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_path", envvar="MIXLINE_STORE", default=None,
              help="Store file (default ./mixline.duckdb, or $MIXLINE_STORE).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or chatter on stderr.")
@click.version_option(package_name="mixline")
@click.pass_context
def cli(ctx: click.Context, store_path: str | None, quiet: bool) -> None:
    """mixline: curate LLM training data and trace its lineage."""
    ctx.obj = Ctx(store_path, quiet)

