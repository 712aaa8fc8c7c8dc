"""mixline installs as one package, and its layers import in one direction."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["mixline", "store", "curation", "pipelines", "dashboards"]


@pytest.mark.slow
def test_wheel_holds_only_the_mixline_package(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("mixline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"mixline", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("mixline/__init__.py", "mixline/errors.py", "mixline/store/store.py",
                   "mixline/curation/pii/scrub.py", "mixline/pipelines/cli/__init__.py",
                   "mixline/dashboards/__init__.py", "mixline/store/py.typed", "mixline/dashboards/app.py",
                   "mixline/dashboards/templates/sample.html", "mixline/dashboards/static/app.js"):
        assert module in names, module
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "mixline = mixline.pipelines.cli:main" in entry


def _imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        if "_work" in path.relative_to(folder).parts:
            continue  # benchmarks' scratch space: peers' venvs and the baseline commit's worktree
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return found


def test_no_module_imports_the_old_top_level_names() -> None:
    for name in SOURCES[1:] + ["tests", "benchmarks"]:
        bad = {m for m in _imports(ROOT / name) if m.split(".")[0] in SOURCES[1:]}
        assert not bad, f"{name}/ imports {sorted(bad)}; import them as mixline.<package>"


def test_curation_and_store_import_nothing_from_pipelines() -> None:
    for name in ("curation", "store"):
        bad = {m for m in _imports(ROOT / name) if m.startswith("mixline.pipelines")}
        assert not bad, f"{name}/ imports {sorted(bad)}"
    assert not {m for m in _imports(ROOT / "store") if m.startswith("mixline.curation")}


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "mixline.pipelines.cli", "--version"], capture_output=True, text=True, check=True)
    assert "mixline" in out.stdout and "0.1.0" in out.stdout
