"""Shared fixtures: in-memory stores, a CLI runner, the real-data folder, and PostgreSQL lakes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
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


@pytest.fixture(scope="session")
def pg_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server: $MIXLINE_TEST_PG (from .ci/run), else a throwaway cluster."""
    env = os.environ.get("MIXLINE_TEST_PG")
    if env:
        yield env.rstrip("/")
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import pgcluster

    why = pgcluster.available()
    if why is not None:
        if os.environ.get("MIXLINE_REQUIRE_PG"):
            pytest.fail(f"MIXLINE_REQUIRE_PG is set but no PostgreSQL cluster can start: {why}")
        pytest.skip(why)
    folder = Path("/tmp") / f"mixline-pg-{uuid.uuid4().hex[:8]}"
    base = pgcluster.start(folder, dbs=())
    try:
        yield base
    finally:
        pgcluster.stop(folder)


@pytest.fixture
def pg_url(pg_base: str, tmp_path: Path) -> str:
    sys.path.insert(0, str(Path(__file__).parent))
    import pgcluster

    url = pgcluster.create_db(pg_base, f"t_{uuid.uuid4().hex[:10]}")
    data = tmp_path / "lake-data"
    res = subprocess.run([sys.executable, "-m", "mixline.pipelines.cli", "--store", url, "init", "--catalog", url,
                          "--data-path", str(data)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return url
