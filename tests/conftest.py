"""Shared fixtures: in-memory stores, a CLI runner, and the real-data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mixline.pipelines.cli import cli
from mixline.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def store() -> Iterator[Store]:
    st = Store(":memory:")
    yield st
    st.close()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "mixline.duckdb"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/data, or $MIXLINE_REALDATA. Skips when missing, unless CI requires it."""
    path = Path(os.environ.get("MIXLINE_REALDATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        if os.environ.get("MIXLINE_REQUIRE_REALDATA"):
            pytest.fail(f"MIXLINE_REQUIRE_REALDATA is set but the real data folder {path} is missing")
        pytest.skip(f"real data folder {path} not found; set MIXLINE_REALDATA to run this test")
    return path


class Mixline:
    """Runs the CLI in-process against one store file."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, ["--store", str(self.store_path), *args])
        if ok and result.exit_code != 0:
            raise AssertionError(f"mixline {' '.join(args)} exited {result.exit_code}: {result.output}\n{result.exception!r}")
        return result

    def json(self, *args: str) -> object:
        import json

        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def mixline(store_path: Path) -> Mixline:
    return Mixline(store_path)
