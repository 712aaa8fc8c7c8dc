"""The dashboard over a real store: every page and its JSON twin, privacy, escaping, and no writes.

The browser checks (headless Chromium) are in test_dashboard_browser.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mixline.dashboards.app import create_app
from starlette.testclient import TestClient

from tests import dashboard_store


@pytest.fixture(scope="module")
def built(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("dash")
    ids = dashboard_store.build(root / "m.duckdb", realdata, root / "work")
    return root / "m.duckdb", ids


@pytest.fixture(scope="module")
def client(built: tuple[Path, dict[str, str]]) -> TestClient:
    return TestClient(create_app(built[0]), base_url="http://127.0.0.1")


def pages(ids: dict[str, str]) -> list[str]:
    return ["/", "/samples", "/samples?q=Maria&kind=conversation", f"/samples?q={ids['gen3'][:8]}", "/samples?kind=web&page=2",
            f"/samples/{ids['gen3']}", f"/samples/{ids['hostile']}", f"/samples/{ids['raw']}", f"/samples/{ids['scrubbed']}",
            "/mixes", f"/mixes/{ids['mix_a']}", f"/mixes/diff?a={ids['mix_a']}&b={ids['mix_b']}", "/models",
            f"/models/{ids['model']}", f"/models/{ids['model']}/card", "/classifiers",
            f"/classifiers/{ids['classifier']}", "/classifiers/lit@v1", "/loops", f"/loops/{ids['loop']}", "/drift", "/drift?subject=loop:", "/runs"]


def api(path: str) -> str:
    return "/api/overview" if path == "/" else "/api" + path


def test_every_page_and_its_json_twin(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    for path in pages(built[1]):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-type"].startswith("text/html") and "Data as of run" in r.text
        j = client.get(api(path))
        assert j.status_code == 200, (path, j.text[:300])
        assert j.json()["freshness"]["latest_run"]["run_id"].startswith("run-")


def test_overview_counts_and_funnel(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    d = client.get("/api/overview").json()
    kinds = {r["key"]: r["samples"] for r in d["by_kind"]}
    with duckdb.connect(str(built[0]), read_only=True) as con:
        assert kinds == dict(con.execute("SELECT kind, count(*) FROM samples GROUP BY 1").fetchall())
        n_web = con.execute("SELECT count(*) FROM samples WHERE source = 'cc'").fetchone()[0]
    assert kinds["conversation"] == 60 and kinds["synthetic"] > 0  # 30 raw chats + 30 scrubbed
    assert d["samples"] == sum(kinds.values())
    assert [r["depth"] for r in d["synth_depth"]] == [0, 1, 2, 3]
    funnel = {(r["run_id"], r["kind"]): r for r in d["funnel"]}
    web = next(r for (_, k), r in funnel.items() if k == "web" and r["n_in"] > 1)
    assert web["n_in"] + web["rewritten"] == n_web  # inputs, plus the scrubbed copies this run wrote
    assert web["kept"] + web["dropped"] == web["n_in"] and web["dropped"] == sum(web["dropped_by"].values()) > 0
    assert all(":" in reason for reason in web["dropped_by"])  # step: reason
    chats = next(r for (_, k), r in funnel.items() if k == "conversation")
    assert chats["rewritten"] == 30  # every chat had PII scrubbed
    html = client.get("/").text
    assert 'class="chart-spec"' in html and html.count('class="chart"') == 6


def test_gen3_sample_lineage_graph(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    ids = built[1]
    d = client.get(f"/api/samples/{ids['gen3']}").json()
    assert d["trace"]["sample"]["synth_depth"] == 3
    nodes = {n["id"]: n for n in d["graph"]["nodes"]}
    kinds = [n["kind"] for n in nodes.values()]
    # Three generating models, the mixes they were trained on, back to a human prompt ancestor.
    assert kinds.count("model") >= 3 and "mix" in kinds and "sample" in kinds
    edges = {(e["from"], e["to"]) for e in d["graph"]["edges"]}
    gen = d["trace"]["generated_by"][0]
    assert (gen["model_id"], ids["gen3"]) in edges and (gen["mix_id"], gen["model_id"]) in edges
    assert all(a in nodes and b in nodes for a, b in edges)
    html = client.get(f"/samples/{ids['gen3']}").text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="lineage"' in html and f'href="/models/{gen["model_id"]}"' in html


def test_hostile_text_is_escaped(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    html = client.get(f"/samples/{built[1]['hostile']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html
    listing = client.get("/samples?q=onerror").text
    assert "onerror=alert(2)&gt;" in listing and "<img src=x" not in listing


def test_no_raw_pii_on_any_page(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    ids = built[1]
    raw = client.get(f"/api/samples/{ids['raw']}").json()
    assert raw["trace"]["sample"]["withheld"] and "withheld" in raw["trace"]["sample"]["text"]
    assert raw["trace"]["redactions"] == {} and raw["trace"]["scrubbed_into"] == [ids["scrubbed"]]
    scrubbed = client.get(f"/api/samples/{ids['scrubbed']}").json()["trace"]
    assert set(scrubbed["redactions"]) >= {"PHONE", "EMAIL"}
    for path in pages(ids) + ["/samples?q=gmail", "/samples?q=555", "/samples?q=Lopez", "/api/samples?q=gmail"]:
        body = client.get(path).text
        assert not re.search(r"lopez\d+@gmail|415 555", body, re.I), path
    # A text search cannot probe raw parents: nothing matches the raw email.
    assert client.get("/api/samples?q=lopez3@gmail").json()["samples"] == []


def test_read_only_and_safe_headers(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/").status_code == 405
        assert getattr(client, method)("/api/runs").status_code == 405
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    # Request parameters are values, never SQL: an injection attempt is just a search that finds nothing.
    inj = client.get("/api/samples", params={"q": "x' OR 1=1 --", "kind": "web' OR '1'='1"})
    assert inj.status_code == 200 and inj.json()["samples"] == []
    assert client.get("/api/mixes/diff?a=x").status_code == 400
    assert client.get("/api/samples/00").status_code == 400
    assert client.get("/api/models/model-nope").status_code == 404
    missing = client.get("/loops/nope")
    assert missing.status_code == 404 and "has no recorded stages" in missing.text


def test_assets_are_served_locally(client: TestClient) -> None:
    html = client.get("/").text
    assert not re.search(r"(src|href)=\"https?://", html)
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:5000].lower()
    assert client.get("/static/app.css").status_code == 200 and client.get("/static/app.js").status_code == 200
    assert client.get("/static/../pyproject.toml").status_code == 404


def test_model_and_loop_pages(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    ids = built[1]
    m = client.get(f"/api/models/{ids['model']}").json()
    assert m["model"]["model_id"] == ids["model"] and len(m["chain"]) >= 2 and m["chain"][0]["loss_curve"]
    assert m["chain"][1]["model_id"] == m["model"]["parent_model_id"]
    loop = client.get(f"/api/loops/{ids['loop']}").json()
    assert set(loop["strategies"]) == {"replace", "accumulate"}
    # The accumulate mixes hold nearly all the prose, so the gate had too little human text left to judge them.
    assert {(t["strategy"], t["of"]) for t in loop["trends"]} == {("replace", "mix"), ("replace", "output"), ("accumulate", "output")}
    assert "Trend across generations" in client.get(f"/loops/{ids['loop']}").text
    for gens in loop["strategies"].values():
        assert [g["generation"] for g in gens] == [0, 1, 2, 3] and all(g["bits_per_char"] > 0 for g in gens)
    drift = client.get("/api/drift").json()
    n = len(drift["checks"])
    assert n >= 6 and max(len(pts) for pts in drift["series"].values()) == n
    assert all(p["threshold"] > 0 for pts in drift["series"].values() for p in pts)
    moved = {m for c in drift["checks"] for m in c["moved"]}
    assert moved == {metric for metric, pts in drift["series"].items() if any(p["alert"] for p in pts)}


def test_classifier_pages(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    ids = built[1]
    listed = client.get("/api/classifiers").json()["classifiers"]
    assert [(c["name"], c["version"], c["classifier_id"]) for c in listed] == [("lit", 1, ids["classifier"])]
    d = client.get("/api/classifiers/lit").json()
    c = d["classifier"]
    with duckdb.connect(str(built[0]), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM samples WHERE kind <> 'eval'").fetchone()[0]
        scored = con.execute("SELECT count(DISTINCT sample_id) FROM classifier_scores").fetchone()[0]
        top_mix = con.execute("SELECT mix_id FROM mixes WHERE name = 'top-lit'").fetchone()[0]
    assert c["scored"] == scored == n and sum(r["n"] for r in d["histogram"]) == n
    assert {t["split"] for t in c["training"]} == {"train", "heldout"} and c["metrics"]["auc"] > 0.9
    # Shakespeare against web pages: the highest scores are prose, the lowest are not.
    assert {s["source"] for s in d["top"]} == {"prose"} and "prose" not in {s["source"] for s in d["bottom"]}
    assert [s["score"] for s in d["top"]] == sorted((s["score"] for s in d["top"]), reverse=True)
    assert top_mix in {u["mix_id"] for u in c["uses"]} and any(u["step"] == "classifier_score_v1" for u in c["uses"])
    page = client.get("/classifiers/lit@v1").text
    assert "Highest scores" in page and f'href="/mixes/{top_mix}"' in page and 'id="scores"' in page
    assert client.get("/api/classifiers/nope").status_code == 404


def test_pages_read_the_snapshot_while_a_writer_holds_the_store(client: TestClient, built: tuple[Path, dict[str, str]]) -> None:
    import subprocess
    import sys
    import textwrap

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(built[0])!r})
        print("locked", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        r = client.get("/api/overview")
        assert r.status_code == 200 and r.json()["freshness"]["snapshot"]
        assert "read snapshot" in client.get("/").text
    finally:
        holder.communicate("\n", timeout=30)


def test_host_warning(tmp_path: Path, built: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from mixline.dashboards import app

    said: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: said.append(f"run {k['host']}:{k['port']}"))
    app.serve(built[0], host="0.0.0.0", port=9999, echo=said.append)
    assert said[0].startswith("warning: serving on 0.0.0.0") and said[-2] == "run 0.0.0.0:9999"
    said.clear()
    app.serve(built[0], echo=said.append)
    assert not any(s.startswith("warning") for s in said) and "run 127.0.0.1:8765" in said


def test_foreign_host_header_gets_400_over_http(built: tuple[Path, dict[str, str]]) -> None:
    """DNS rebinding: a real server on a real port answers only its own names, each with its port."""
    import http.client
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(built[0], host="127.0.0.1", port=port, allowed_hosts=["dash.internal", "proxy.example:443"])
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)

    def get(host: str | None, path: str = "/api/runs") -> tuple[int, str, Any]:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        con.putrequest("GET", path, skip_host=True)
        if host is not None:
            con.putheader("Host", host)
        con.endheaders()
        r = con.getresponse()
        out = r.status, r.read().decode(), r.headers  # case-insensitive
        con.close()
        return out

    try:
        for ok in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}",
                   f"dash.internal:{port}", "proxy.example:443"):
            status, body, _ = get(ok)
            assert status == 200 and "run_id" in body, (ok, status, body[:200])
        for bad in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost",
                    f"localhost.evil.example:{port}", "proxy.example:8443"):
            for path in ("/api/runs", "/", "/static/app.js", "/no/such/page"):
                status, body, headers = get(bad, path)
                assert status == 400, (bad, path, status)
                assert body.startswith("400 Bad Request: ") and body.count("\n") == 1 and "--allowed-host" in body
                assert "run_id" not in body and headers["Content-Type"].startswith("text/plain")
                assert headers["X-Frame-Options"] == "DENY"
        # A Host the HTTP parser itself refuses (malformed, or none in HTTP/1.1) is a 400 before the app sees it.
        for bad in (f"dash.internal:{port}@evil", None):
            status, body, _ = get(bad)
            assert status == 400 and "run_id" not in body
        assert "'evil.example'" in get("evil.example")[1]
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_allowed_host_values_are_checked() -> None:
    from mixline.dashboards.app import host_check

    from mixline.errors import ConfigError

    names, pairs = host_check("192.168.1.5", ["Box.Lan", "[fe80::1]:9000", "proxy:443"], 8765)
    assert names == {"127.0.0.1", "localhost", "::1", "192.168.1.5", "box.lan"} and pairs == {("fe80::1", 9000), ("proxy", 443)}
    assert host_check("0.0.0.0", [], 8765)[0] == {"127.0.0.1", "localhost", "::1"}  # a wildcard bind names no host
    for bad in ("*", "", "host:port", "[::1"):
        with pytest.raises(ConfigError, match="--allowed-host"):
            host_check("127.0.0.1", [bad], 8765)


def test_host_check_refuses_no_host_and_several_hosts() -> None:
    """HTTP/1.0 may send no Host, and a smuggling client several: both are refused by the middleware itself."""
    import asyncio

    from mixline.dashboards.app import HostCheck

    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    def call(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        scope = {"type": "http", "path": "/", "headers": headers}
        asyncio.run(HostCheck(inner, {"127.0.0.1"}, set(), 8765)(scope, None, send))  # type: ignore[arg-type]
        return sent

    for headers, said in (([], b"no Host header"), ([(b"host", b"127.0.0.1:8765"), (b"host", b"evil.example")], b"several Host")):
        sent = call(headers)
        assert sent[0]["status"] == 400 and said in sent[1]["body"] and not reached
    assert call([(b"host", b"127.0.0.1:8765")]) == [] and reached == ["/"]
