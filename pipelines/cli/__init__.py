"""The `mixline` command line: one module per command group, over the Python API.

Only this package turns MixlineErrors into messages and exit codes.
"""

from mixline.pipelines.cli import curate, drift, ingest, lineage, mix, model, store  # noqa: F401  (register commands)
from mixline.pipelines.cli.app import cli


def main() -> None:
    cli(prog_name="mixline")


__all__ = ["cli", "main"]
