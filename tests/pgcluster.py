"""A throwaway PostgreSQL 15 cluster for the DuckLake tests.

`.ci/run` starts one before the tests and stops it after:

    eval "$(python tests/pgcluster.py start DIR)"   # exports MIXLINE_TEST_PG=postgresql://...
    python tests/pgcluster.py stop DIR

It runs initdb in DIR as the `postgres` user (the server refuses to run as root), listens on
127.0.0.1 at a free port and on a Unix socket in DIR, trusts local connections, and keeps
nothing after `stop`. The tests' fixture starts its own when MIXLINE_TEST_PG is unset and the
binaries are there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(os.environ.get("MIXLINE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL binaries not found in {BIN} (Debian's postgresql-15; set MIXLINE_PG_BIN)"
    if os.geteuid() != 0 and shutil.which("pg_ctl") is None and not os.access(BIN / "pg_ctl", os.X_OK):
        return "pg_ctl is not runnable"
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the command as the `postgres` user."""
    if os.geteuid() == 0:
        return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(c) for c in cmd)]
    return cmd


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(folder: str | Path, dbs: tuple[str, ...] = ("mixline_a", "mixline_b", "mixline_c")) -> str:
    """Create and start a cluster in `folder`; returns a postgresql:// URL base (no database)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        # su needs to reach the folder: every parent must be traversable by the postgres user.
        for parent in folder.parents:
            if parent != Path("/") and not (parent.stat().st_mode & 0o001):
                os.chmod(parent, parent.stat().st_mode | 0o001)
    subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
    port = _free_port()
    opts = f"-k {folder} -h 127.0.0.1 -p {port} -c fsync=off -c max_connections=200"
    subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"),
                                 "-w", "start"]), check=True, capture_output=True)
    (folder / "port").write_text(str(port))
    for _ in range(50):
        ok = subprocess.run(_as_postgres([str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]),
                            capture_output=True)
        if ok.returncode == 0:
            break
        time.sleep(0.2)
    for db in dbs:
        create_db(f"postgresql://postgres@127.0.0.1:{port}", db)
    return f"postgresql://postgres@127.0.0.1:{port}"


def create_db(base: str, name: str) -> str:
    """Create a database on the cluster (through DuckDB's postgres extension, so no psql is needed)."""
    port = base.rsplit(":", 1)[1]
    subprocess.run(_as_postgres([str(BIN.parent / "bin" / "createdb") if (BIN / "createdb").exists() else "createdb",
                                 "-h", "127.0.0.1", "-p", port, "-U", "postgres", name]), check=True, capture_output=True)
    return f"{base}/{name}"


def stop(folder: str | Path) -> None:
    folder = Path(folder).resolve()
    data = folder / "data"
    if data.exists():
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    action, where = sys.argv[1], sys.argv[2]
    if action == "start":
        print(f"export MIXLINE_TEST_PG={start(where)}")
    elif action == "stop":
        stop(where)
    else:
        sys.exit(f"usage: {sys.argv[0]} start|stop DIR")
