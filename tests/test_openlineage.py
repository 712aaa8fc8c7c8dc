"""OpenLineage events: START then COMPLETE or FAIL per run, to a file or to an HTTP receiver."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from mixline.curation.pipeline import curate
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build
from mixline.store import Store
from mixline.store.openlineage import run_uuid

from tests.test_curation_filters import GOOD

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_event(e: dict) -> None:
    """The RunEvent fields the OpenLineage 2-0-2 spec requires, with their types and formats."""
    assert e["schemaURL"].startswith("https://openlineage.io/spec/2-0-2/OpenLineage.json")
    assert e["eventType"] in ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", e["eventTime"]) and e["producer"].startswith("https://")
    assert UUID.match(e["run"]["runId"]) and e["job"]["namespace"] == "mixline" and e["job"]["name"]
    for d in e.get("inputs", []) + e.get("outputs", []):
        assert d["namespace"] and d["name"]
    for name, facet in e["run"]["facets"].items():
        assert facet["_producer"] and facet["_schemaURL"], name


def _work(store: Store, tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": f"{GOOD} Variation {i}."}) + "\n" for i in range(5)))
    ingest(store, path, IngestOptions(kind="web", source="a"))
    run = curate(store).run_id
    mix = build(store, MixRecipe.parse({"name": "m", "groups": [{"name": "all", "where": "TRUE"}]})).mix_id
    return run, mix


def test_every_run_emits_start_and_complete_to_a_file(tmp_path, monkeypatch) -> None:
    log = tmp_path / "events.jsonl"
    monkeypatch.setenv("MIXLINE_OPENLINEAGE_URL", f"file://{log}")
    with Store(tmp_path / "s.duckdb") as st:
        curate_run, mix = _work(st, tmp_path)
        runs = st.rows("SELECT run_id, kind, step FROM runs ORDER BY started_at")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    for e in events:
        check_event(e)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * len(runs)
    by_run = {e["run"]["facets"]["mixline"]["runId"]: e for e in events if e["eventType"] == "COMPLETE"}
    assert set(by_run) == {r["run_id"] for r in runs}
    cur = by_run[curate_run]
    assert cur["run"]["runId"] == run_uuid(curate_run) and cur["job"]["name"] == "curate_default"
    facet = cur["run"]["facets"]["mixline"]
    assert facet["store"] == str(tmp_path / "s.duckdb") and facet["configHash"]
    assert facet["stats"]["selected"] == 5 and "exact_dedup_v1" in facet["stats"]["steps"]
    ing = next(e for e in by_run.values() if e["job"]["name"] == "ingest_v1")
    assert ing["inputs"][0] == {"namespace": "file", "name": str(tmp_path / "a.jsonl"), "facets": {}, "inputFacets": {}}
    built = next(e for e in by_run.values() if e["job"]["name"] == "mix_build_v1")
    assert built["outputs"][0]["name"] == mix and "synthetic_share" in built["run"]["facets"]["mixline"]["stats"]
    # Nothing is sent without configuration.
    monkeypatch.delenv("MIXLINE_OPENLINEAGE_URL")
    before = log.read_text()
    with Store(tmp_path / "s2.duckdb") as st:
        _work(st, tmp_path)
    assert log.read_text() == before


class _Receiver(BaseHTTPRequestHandler):
    events: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).events.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    _Receiver.events = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Receiver.events
    server.shutdown()


def test_http_receiver_sees_pairs_parents_and_failures(tmp_path, monkeypatch, receiver) -> None:
    url, events = receiver
    monkeypatch.setenv("MIXLINE_OPENLINEAGE_URL", url)
    with Store(tmp_path / "s.duckdb") as st:
        with st.run("parent", "outer_v1", {}) as outer:
            pass
        with st.run("child", "inner_v1", {}, parent_run_id=outer.run_id):
            pass
        with pytest.raises(ValueError), st.run("boom", "boom_v1", {}):
            raise ValueError("disk on fire")
    for e in events:
        check_event(e)
    pairs: dict[str, list[str]] = {}
    for e in events:
        pairs.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert sorted(pairs.values()) == [["START", "COMPLETE"], ["START", "COMPLETE"], ["START", "FAIL"]]
    child = next(e for e in events if e["job"]["name"] == "inner_v1" and e["eventType"] == "COMPLETE")
    assert child["run"]["facets"]["parent"]["run"]["runId"] == run_uuid(outer.run_id)
    fail = next(e for e in events if e["eventType"] == "FAIL")
    assert fail["run"]["facets"]["errorMessage"]["message"] == "ValueError: disk on fire"


def test_a_dead_backend_never_fails_a_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MIXLINE_OPENLINEAGE_URL", "http://127.0.0.1:9")  # nothing listens there
    with Store(tmp_path / "s.duckdb") as st, st.run("x", "x_v1", {}):
        pass
    with Store(tmp_path / "s.duckdb", read_only=True) as st:
        assert st.scalar("SELECT status FROM runs") == "ok"
