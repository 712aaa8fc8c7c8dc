"""Helpers shared by the benchmarks: real-data path, timing in subprocesses, result tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"
PEERS = WORK / "peers" / "bin" / "python"
# Tools are timed over RUNS runs and their best time kept: a process's first run pays for
# fresh memory pages and cold caches, and a run right after another process exits can be
# slowed for a few seconds (seen at half speed). A long job pays neither.
RUNS = int(os.environ.get("BENCH_RUNS", 2))


def realdata() -> Path:
    p = Path(os.environ.get("MIXLINE_REALDATA", ROOT.parent / "shared" / "data"))
    if not p.is_dir():
        sys.exit(f"real data folder {p} not found; set MIXLINE_REALDATA")
    return p


def machine() -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {cpus} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, {platform.system()}"


def timed(code: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run Python code in a fresh process; return wall seconds and peak RSS in MB.

    The code may print one JSON object on its last line; its keys are merged in.
    """
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    extra = {}
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if lines:
        extra = json.loads(lines[-1])
    return {"wall_s": wall, **extra}


def best_of(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(best seconds, result of the last call) over RUNS calls of fn, in this process."""
    times, result = [], None
    for _ in range(RUNS):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def best_peer(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a peer script from benchmarks/peers in the peers' venv RUNS times; the JSON
    object it prints last, from its fastest run (by its own "seconds")."""
    best: dict[str, Any] = {}
    for _ in range(RUNS):
        out = subprocess.run([str(PEERS), str(ROOT / "benchmarks" / "peers" / script), *args],
                             capture_output=True, text=True, cwd=WORK, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"{script} failed:\n{out.stderr[-3000:]}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if not best or res["seconds"] < best["seconds"]:
            best = res
    return best


PEAK_RSS = "import resource; _peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"


def table(rows: list[dict[str, object]]) -> str:
    """A Markdown table over every key of every row, in order of first appearance; '-' where a row has none."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r[c]) if c in r else "-" for c in cols) + " |")
    return "\n".join(out)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if v < 10 else f"{v:,.1f}"
    return str(v)


def self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def package(tree: Path) -> Path:
    """A folder where `mixline.*` is the tree's code: the installed (editable) finder would
    otherwise map mixline.store and the others to today's folders."""
    pkg = tree.parent / f"{tree.name}-pkg" / "mixline"
    if not pkg.exists():
        pkg.mkdir(parents=True)
        for f in (tree / "mixline").iterdir():
            (pkg / f.name).symlink_to(f)
        for d in ("store", "curation", "pipelines", "dashboards"):
            (pkg / d).symlink_to(tree / d)
    return pkg.parent


def worktree(commit: str) -> Path | None:
    """The commit checked out as a git worktree under benchmarks/_work, or None (with a line why)."""
    tree = WORK / f"baseline-{commit}"
    if not tree.exists():
        made = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                              capture_output=True, text=True)
        if made.returncode:
            print(f"baseline {commit} not measured: {made.stderr.strip()}")
            return None
    return tree
