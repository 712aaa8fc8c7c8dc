"""The `mixline` command line: one module per command group, over the Python API.

Only this package turns MixlineErrors into messages and exit codes.
"""

from mixline.pipelines.cli import (  # noqa: F401  (register commands)
    canary,
    classifier,
    curate,
    dashboard,
    drift,
    ingest,
    lineage,
    mix,
    model,
    store,
)
from mixline.pipelines.cli.app import cli


def main() -> None:
    import signal
    import sys

    from mixline.pipelines.cli.app import TERMINATED

    def terminate(*_: object) -> None:
        # SIGTERM unwinds like Ctrl-C: the run rolls back, is marked aborted, and its spool is deleted.
        TERMINATED.set()
        sys.exit(143)

    signal.signal(signal.SIGTERM, terminate)
    cli(prog_name="mixline")


__all__ = ["cli", "main"]
