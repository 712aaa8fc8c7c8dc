"""The dashboard in a real browser (Debian's headless Chromium): charts render, no console
errors, hostile sample text shows as text. Screenshots are kept in $MIXLINE_ARTIFACTS
(default build/test-artifacts)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import dashboard_store

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MIXLINE_ARTIFACTS", ROOT / "build" / "test-artifacts"))


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("MIXLINE_REQUIRE_BROWSER"):
            pytest.fail("MIXLINE_REQUIRE_BROWSER is set but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not installed; `apt-get install -y chromium` to run the browser tests")
    return exe


@pytest.fixture(scope="module")
def server(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    import uvicorn
    from mixline.dashboards.app import create_app

    chromium()
    root = tmp_path_factory.mktemp("browser")
    ids = dashboard_store.build(root / "m.duckdb", realdata, root / "work")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(root / "m.duckdb", host="127.0.0.1", port=port)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ids
    srv.should_exit = True
    thread.join(timeout=10)


def browse(url: str, shot: str | None, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """The DOM after scripts ran, and the browser's log; a screenshot goes to the artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    flags = [chromium(), *extra, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
             "--virtual-time-budget=8000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    if shot is None:
        return dom.stdout, dom.stderr
    subprocess.run([*flags, f"--screenshot={ARTIFACTS / shot}", url], capture_output=True, text=True, timeout=120)
    assert (ARTIFACTS / shot).stat().st_size > 10_000, f"no screenshot of {url}"
    return dom.stdout, dom.stderr


def console_errors(dom: str, log: str) -> list[str]:
    kept = re.search(r'<pre id="console-errors">(.*?)</pre>', dom, re.S)
    errors = [e for e in (kept.group(1).strip().splitlines() if kept else []) if e]
    # Chromium logs page console output as CONSOLE(...) lines; uncaught errors say "Uncaught".
    errors += [line for line in log.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    return errors


def charts_drawn(dom: str) -> int:
    m = re.search(r'data-charts-drawn="(\d+)"', dom)
    return int(m.group(1)) if m else 0


def test_overview_renders_charts(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, _ = server
    dom, log = browse(base + "/", "overview.png", tmp_path)
    assert charts_drawn(dom) == 6 and dom.count('class="main-svg"') >= 6  # plotly draws SVG
    assert console_errors(dom, log) == []


def test_gen3_lineage_page(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, ids = server
    dom, log = browse(f"{base}/samples/{ids['gen3']}", "lineage.png", tmp_path)
    assert 'class="lineage"' in dom and dom.count("<rect") >= 8
    assert console_errors(dom, log) == []


def test_loop_and_drift_pages(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, ids = server
    dom, log = browse(f"{base}/loops/{ids['loop']}", "loop.png", tmp_path)
    assert charts_drawn(dom) == 1 and 'class="main-svg"' in dom and console_errors(dom, log) == []
    dom, log = browse(f"{base}/drift", "drift.png", tmp_path)
    assert charts_drawn(dom) >= 5 and 'class="main-svg"' in dom and console_errors(dom, log) == []


def test_classifier_page_draws_its_scores(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, ids = server
    dom, log = browse(f"{base}/classifiers/{ids['classifier']}", "classifier.png", tmp_path)
    assert charts_drawn(dom) == 1 and 'class="main-svg"' in dom and console_errors(dom, log) == []
    assert "Highest scores" in dom and "lit@v1" in dom


def test_hostile_text_shows_as_text(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, ids = server
    dom, log = browse(f"{base}/samples/{ids['hostile']}", "hostile.png", tmp_path)
    text = re.search(r'<pre class="text " id="sample-text">(.*?)</pre>', dom, re.S)
    assert text and text.group(1) == "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    assert "<img src=\"x\"" not in dom and "alert(2)" not in log
    assert console_errors(dom, log) == []


def test_dns_rebinding_is_refused(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    """A page on a foreign domain that resolves to 127.0.0.1 (DNS rebinding) gets a 400, not the store."""
    base, _ = server
    port = base.rsplit(":", 1)[1]
    rebind = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    dom, _ = browse(f"http://evil.example:{port}/api/runs", None, tmp_path, rebind)
    assert "400 Bad Request" in dom and "evil.example" in dom and "--allowed-host" in dom
    assert "run_id" not in dom and "Data as of run" not in dom
    # The same browser, the same address, under the dashboard's own name: served.
    dom, _ = browse(f"http://localhost:{port}/runs", None, tmp_path, rebind)
    assert "Data as of run" in dom
