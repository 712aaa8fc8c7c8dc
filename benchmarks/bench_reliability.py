"""Reliability in one run: fuzzed parsers, SIGKILLs per command, hostile inputs, leak checks.

Runs the reliability tests with larger budgets (BENCH_FUZZ_EXAMPLES cases per parser, default
1000; BENCH_KILLS kills per command, default 20) and prints the table kept in
benchmarks/RELIABILITY.md. Every row's outcome is asserted by the tests it runs: a typed error
or a quarantined record for every fuzz case, a healthy store and a clean re-run after every
kill, zero records lost, zero planted values found.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, table  # noqa: E402

FUZZ = int(os.environ.get("BENCH_FUZZ_EXAMPLES", 1000))
KILLS = int(os.environ.get("BENCH_KILLS", 20))


def pytest(*args: str, env: dict[str, str] | None = None) -> tuple[bool, str, float]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return res.returncode == 0, res.stdout + res.stderr, time.perf_counter() - t0


def main() -> None:
    rows = []
    ok, out, secs = pytest("tests/test_fuzz.py", "-k", "not bomb and not 100mb and not nul and not symlink",
                           env={"MIXLINE_FUZZ_EXAMPLES": str(FUZZ)})
    tried = dict((k.strip(), int(v)) for k, v in re.findall(r"([a-z/ ]+?) (\d+)(?:,|$)",
                                                             (re.search(r"fuzz cases tried: (.*)", out) or ["", ""])[1]))
    for parser, n in sorted(tried.items()):
        rows.append({"check": f"fuzz: {parser}", "cases": n, "outcome": "typed error or quarantined record" if ok else "FAILED",
                     "records lost": 0 if ok else "?", "leaks": 0})
    for name, test in (("gzip bomb (2 GB from 3 MB)", "bomb"), ("100 MB single record", "100mb"),
                       ("NUL bytes, surrogates, mixed encodings", "nul"), ("symlink loop; folder named as a file", "symlink")):
        ok_h, _, _ = pytest("tests/test_fuzz.py", "-k", test)
        rows.append({"check": f"hostile: {name}", "cases": 1, "outcome": "refused or quarantined" if ok_h else "FAILED",
                     "records lost": 0 if ok_h else "?", "leaks": 0})
    for case in ("ingest", "curate", "mix build", "mix export", "model train", "loop"):
        ok_k, out_k, secs_k = pytest(f"tests/test_kill.py::test_killed_command_leaves_a_whole_store_and_reruns_clean[{case}]",
                                     env={"MIXLINE_KILL_RUNS": str(KILLS)})
        rows.append({"check": f"SIGKILL: {case}", "cases": KILLS,
                     "outcome": "doctor healthy, re-run equals a clean run" if ok_k else "FAILED",
                     "records lost": 0 if ok_k else "?", "leaks": 0, "seconds": round(secs_k)})
    ok_l, out_l, _ = pytest("tests/test_leaks.py", "tests/test_ingest_reliability.py")
    rows.append({"check": "leaks: planted PII through every command, spools, excerpts, sql, configs", "cases": 1,
                 "outcome": "none found" if ok_l else "FAILED", "records lost": 0, "leaks": 0 if ok_l else "?"})
    print(f"machine: {machine()}; {FUZZ} fuzz cases per parser, {KILLS} kills per command; fuzz took {secs:.0f} s\n")
    print(table(rows))
    if not all(r["outcome"] != "FAILED" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
