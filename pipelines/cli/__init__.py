"""The `mixline` command line: one module per command group, over the Python API.

Only this package turns MixlineErrors into messages and exit codes.
"""

from mixline.pipelines.cli import curate, drift, ingest, lineage, mix, model, store  # noqa: F401  (register commands)
from mixline.pipelines.cli.app import cli


def main() -> None:
    import signal
    import sys

    # SIGTERM unwinds like Ctrl-C: the run rolls back, is marked aborted, and its spool is deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cli(prog_name="mixline")


__all__ = ["cli", "main"]
