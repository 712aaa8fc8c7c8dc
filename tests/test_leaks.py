"""Leaks: spools, quarantine excerpts, trace before the pii step, secrets in run configs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from mixline.curation.pipeline import curate
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.store import Store
from mixline.store.lineage import trace

EMAIL = "maria.okafor@mailhost.io"


def _big(path: Path, n: int = 200_000) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"text": f"record {i} written by {EMAIL} " + "lorem ipsum dolor sit amet " * 30}) + "\n")
    return path


def _spools(folder: Path) -> list[Path]:
    return list(folder.glob(".mixline-spool-*"))


def test_sigterm_and_sigkill_leave_no_spool_of_raw_text(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    big = _big(tmp_path / "big.jsonl")
    cmd = [sys.executable, "-m", "mixline.pipelines.cli", "--store", str(store), "ingest", "--quiet", "--kind", "web", "--source"]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen([*cmd, f"big-{sig.name}", str(big)])
        for _ in range(500):  # wait until the run has its spool (it fills as batches are read)
            time.sleep(0.01)
            if _spools(tmp_path):
                break
        time.sleep(0.2)
        assert proc.poll() is None and _spools(tmp_path), "ingest ended before it spooled; make the file bigger"
        proc.send_signal(sig)
        proc.wait()
        if sig == signal.SIGTERM:
            assert proc.returncode == 143 and _spools(tmp_path) == [], "SIGTERM must clean up on the way out"
    assert _spools(tmp_path), "a SIGKILLed run cannot clean up; its spool stays until the next writer"
    with Store(store) as st:
        assert st.scalar("SELECT count(*) FROM runs WHERE status = 'running'") == 1  # the killed one
        ingest(st, [_small(tmp_path)], IngestOptions(kind="web", source="next"))
        assert st.scalar("SELECT count(*) FROM runs WHERE status = 'aborted'") == 2  # SIGTERM's, and SIGKILL's
    assert _spools(tmp_path) == [], "the next writer deletes a dead run's spool"


def _small(tmp_path: Path) -> Path:
    p = tmp_path / "small.jsonl"
    p.write_text(json.dumps({"text": "a short clean record of text"}) + "\n")
    return p


def test_quarantine_excerpts_are_scrubbed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"body": f"write to {EMAIL} or call +44 20 7946 0958"}) + "\n"
                    + json.dumps({"text": "fine record"}) + "\n")
    ingest(store, path, IngestOptions(kind="web", source="b", allow_bad=True))
    excerpt = store.scalar("SELECT excerpt FROM quarantine")
    assert EMAIL not in excerpt and "7946" not in excerpt and "<EMAIL>" in excerpt


def test_trace_withholds_text_until_the_pii_step_has_seen_it(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    from tests.test_curation_filters import GOOD as text

    path.write_text(json.dumps({"text": text}) + "\n")
    ingest(store, path, IngestOptions(kind="web", source="a"))
    sid = store.scalar("SELECT sample_id FROM samples")
    before = trace(store, sid).sample
    assert before["withheld"] and "no curation run has scanned it for PII" in before["text"] and "--scan-pii" in before["text"]
    curate(store)
    after = trace(store, sid).sample
    assert after["text"] == text and not after.get("withheld")


SECRET_CHAT = [{"role": "user", "content": "my key is AKIAIOSFODNN7EXAMPLE and my email is ana.lopez@mail-host.org, "
                                          "please help me configure the command line tool on my laptop today"},
               {"role": "assistant", "content": "Run the configure command and paste the key id when it asks; never share it."}]


def test_withheld_text_says_why_and_an_opt_in_read_is_recorded(tmp_path: Path) -> None:
    """A rule's drop before PII scanning, and the pii step's own drop, each say so; `--scan-pii` reads it scrubbed."""
    from mixline.curation.pii.scrub import read_scrubbed
    from mixline.store.select import open_sql_connection

    store = Store(tmp_path / "s.duckdb")

    web, chat = tmp_path / "w.jsonl", tmp_path / "c.jsonl"
    web.write_text(json.dumps({"text": f"menu home about contact {EMAIL} login register search help"}) + "\n")
    chat.write_text(json.dumps({"messages": SECRET_CHAT}) + "\n")
    ingest(store, web, IngestOptions(kind="web", source="w"))
    ingest(store, chat, IngestOptions(kind="conversation", source="c"))
    curate(store)
    wid = store.scalar("SELECT sample_id FROM samples WHERE kind = 'web'")
    cid = store.scalar("SELECT sample_id FROM samples WHERE kind = 'conversation'")
    status = dict(store.execute("SELECT sample_id, status FROM sample_status").fetchall())
    assert status == {wid: "dropped", cid: "dropped"}

    w = trace(store, wid).sample
    assert w["withheld"] and EMAIL not in w["text"]
    assert "dropped by gopher_quality (short_doc)" in w["text"] and "before any pii step scanned it" in w["text"]
    assert f"mixline trace {wid[:12]} --scan-pii" in w["text"] and "run `mixline curate`" not in w["text"]
    c = trace(store, cid).sample
    assert c["withheld"] and "AKIA" not in c["text"] and c["messages"] is None
    assert "the pii step dropped it" in c["text"] and "pii_drop:conversation_with_SECRET" in c["text"]

    # `mixline sql` withholds the pii step's drop as it does a scrubbed parent.
    store.close()
    con = open_sql_connection(str(tmp_path / "s.duckdb"))
    shown = con.execute("SELECT text FROM samples WHERE kind = 'conversation'").fetchone()[0]
    con.close()
    assert "AKIA" not in shown and "withheld" in shown
    store = Store(tmp_path / "s.duckdb")

    runs_before = store.scalar("SELECT count(*) FROM runs")
    read = read_scrubbed(store, cid)
    assert "AKIA" not in read["text"] and "ana.lopez" not in read["text"] and "<SECRET>" in read["text"]
    assert "<EMAIL>" in read["text"] and "configure the command line tool" in read["text"]
    assert read["pii_found"] == {"EMAIL": 1, "SECRET": 1} and "AKIA" not in (read["messages"] or "")
    run = store.rows("SELECT kind, step, config, stats FROM runs WHERE run_id = ?", [read["run_id"]])[0]
    assert (run["kind"], run["step"]) == ("read", "pii_read_v1") and cid in run["config"] and "AKIA" not in run["stats"]
    assert json.loads(run["stats"])["pii_found"] == {"EMAIL": 1, "SECRET": 1}
    wread = read_scrubbed(store, wid)
    assert EMAIL not in wread["text"] and "menu home about contact <EMAIL> login" in wread["text"]
    # A read is a record, not a decision: nothing about either sample changed.
    assert store.scalar("SELECT count(*) FROM runs") == runs_before + 2
    assert dict(store.execute("SELECT sample_id, status FROM sample_status").fetchall()) == status
    assert trace(store, cid).sample["withheld"] and trace(store, wid).sample["withheld"]
    store.close()


def test_secrets_in_configs_are_not_stored(store: Store) -> None:
    with store.run("test", "t", {"hub_token": "hf_abcdefghijklmnop", "max_new_tokens": 64, "nested": {"password": "pw1234"}}):
        pass
    cfg = json.loads(store.scalar("SELECT config FROM runs WHERE kind = 'test'"))
    assert cfg == {"hub_token": "<redacted>", "max_new_tokens": 64, "nested": {"password": "<redacted>"}}


PLANTED = {"email": "maria.okafor@mailhost.io", "phone": "+44 20 7946 0958", "card": "4111 1111 1111 1111",
           "name": "Maria Okafor", "iban": "GB82 WEST 1234 5698 7654 32"}


def test_planted_pii_never_reaches_outputs_exports_or_errors(mixline, tmp_path, monkeypatch) -> None:
    """Every command a user sees output from, on conversations with planted PII: no planted value
    in stdout, stderr, --json, exports, cards or quarantine excerpts."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    chats = tmp_path / "chats.jsonl"
    rows = []
    for i in range(30):
        rows.append({"messages": [
            {"role": "user", "content": f"Hi, my name is {PLANTED['name']} and my email is {PLANTED['email']}. "
                                        f"Please help me plan a garden for the spring, question {i}."},
            {"role": "assistant", "content": f"Of course. I will send the plan to {PLANTED['email']} or call "
                                             f"{PLANTED['phone']}. Your card {PLANTED['card']} and IBAN {PLANTED['iban']} "
                                             f"are not needed for this; plant tomatoes after the last frost ({i})."}]})
    chats.write_text("".join(json.dumps(r) + "\n" for r in rows) + json.dumps({"body": PLANTED["email"]}) + "\n")
    seen: list[str] = []

    def run(*args: str) -> object:
        res = mixline(*args)
        seen.append(res.output)
        return res

    run("ingest", str(chats), "--kind", "conversation", "--source", "chats", "--json")
    run("quarantine", "--json")
    run("curate", "--dry-run", "--json")
    run("curate", "--json")
    raw = mixline.json("sql", "SELECT sample_id FROM samples WHERE sample_id IN (SELECT parent_id FROM edges) LIMIT 1")
    raw_id = raw[0]["sample_id"] if isinstance(raw, list) else raw["rows"][0]["sample_id"]
    child = mixline.json("sql", f"SELECT child_id FROM edges WHERE parent_id = '{raw_id}'")
    child_id = child[0]["child_id"] if isinstance(child, list) else child["rows"][0]["child_id"]
    for sid in (raw_id, child_id):
        run("trace", sid, "--json")
        run("why", sid, "--json")
        run("impact", sid, "--json")
    (tmp_path / "mix.toml").write_text('name = "c"\n[[groups]]\nname = "all"\nwhere = "kind = \'conversation\'"\n')
    mix_id = json.loads(run("mix", "build", str(tmp_path / "mix.toml"), "--json").stdout)["mix_id"]
    run("mix", "show", mix_id, "--json")
    for fmt in ("parquet", "jsonl"):
        run("mix", "export", mix_id, "--format", fmt, "--out", str(tmp_path / f"exp-{fmt}"))
        run("mix", "verify", str(tmp_path / f"exp-{fmt}"))
    run("stats", "--json")
    run("runs", "--json")
    bad = mixline("trace", "no-such-sample", ok=False)  # an error path
    seen.append(bad.output)
    import pyarrow.parquet as pq

    for f in tmp_path.glob("exp-*/**/*"):
        if f.is_file():
            seen.append(pq.read_table(f).to_pylist().__repr__() if f.suffix == ".parquet" else f.read_text())
    everything = "\n".join(seen)
    assert "<EMAIL>" in everything or "<EMAIL_" in everything, "the scrubbed text was expected in the outputs"
    for kind, value in PLANTED.items():
        assert value not in everything, f"planted {kind} leaked"


def test_sql_withholds_raw_parents_and_cannot_reach_around_its_views(mixline, tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"text": f"Write to {EMAIL} about the spring garden plans and the tomatoes."}) + "\n")
    mixline("ingest", str(path), "--kind", "conversation", "--source", "a")
    before = mixline.json("sql", "SELECT text FROM samples")
    assert EMAIL in json.dumps(before), "before curation the text is the user's own input, shown as is"
    mixline("curate")
    rows = json.dumps(mixline.json("sql", "SELECT s.text, o.meta FROM samples s JOIN sample_origins o USING (sample_id)"))
    assert EMAIL not in rows and "withheld" in rows
    texts = json.dumps(mixline.json("sql", "SELECT text FROM samples"))
    assert EMAIL not in texts and "<EMAIL>" in texts
    for query in ("SELECT text FROM mixline_store.samples", "SELECT text FROM mixline_store.main.samples",
                  "SELECT * FROM store_secrets"):
        res = mixline("sql", query, ok=False)
        assert res.exit_code != 0 and EMAIL not in res.output, query
