"""The CLI: help everywhere, JSON interfaces other tools call, read-only SQL, exit codes."""

import json

import click
from mixline.pipelines.cli import cli


def all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


def test_every_command_has_help_text():
    missing = [" ".join(path) for path, cmd in all_commands(cli) if not (cmd.help or "").strip()]
    assert missing == []


def test_ingest_trace_impact_sql_json_interfaces(mixline, tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"id": "x1", "text": "A sentence about lineage."}) + "\n")
    out = mixline.json("ingest", str(p), "--kind", "web", "--source", "fixture")
    assert {"run_id", "ingested", "duplicates", "quarantined"} <= set(out) and out["ingested"] == 1
    rows = mixline.json("sql", "SELECT sample_id FROM samples")
    sid = rows[0]["sample_id"]
    t = mixline.json("trace", sid)
    assert t["sample"]["sample_id"] == sid and t["sample"]["source"] == "fixture"
    # Not yet scanned for PII: trace keeps the text in the store.
    assert t["sample"]["kind"] == "web" and t["sample"]["withheld"] and "no curation run has scanned it" in t["sample"]["text"]
    assert t["ancestors"] == [] and t["decisions"] == []
    imp = mixline.json("impact", sid)
    assert imp["samples"] == [] and imp["mixes"] == [] and imp["models"] == []
    st = mixline.json("stats")
    assert st["samples"] == 1
    runs = mixline.json("runs")
    assert runs[0]["kind"] == "ingest" and runs[0]["stats"]["ingested"] == 1
    read = mixline.json("trace", sid, "--scan-pii")  # the opt-in read: scanned now, recorded as a run
    assert read["sample"]["text"] == "A sentence about lineage." and read["sample"]["read"]["pii_found"] == {}
    assert mixline.json("runs")[0]["run_id"] == read["sample"]["read"]["run_id"]


def test_runs_names_a_curate_run_s_slowest_steps(mixline, tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps({"text": f"Sentence number {i} is about lineage and curation."}) + "\n"
                           for i in range(5)))
    mixline("ingest", str(src), "--kind", "web", "--source", "fixture")
    mixline("curate")
    run = mixline.json("runs")[0]
    assert run["kind"] == "curate" and run["stats"]["timings"]["language_v2"]["docs"] == 5
    line = next(ln for ln in mixline("runs").stdout.splitlines() if run["run_id"] in ln)
    assert "slowest: " in line and "_v" in line.split("slowest: ")[1]


def test_sql_is_read_only(mixline):
    mixline("init")
    r = mixline("sql", "DELETE FROM samples", ok=False)
    assert r.exit_code != 0 and "read-only" in r.output


def test_errors_become_messages_and_exit_codes(mixline, tmp_path):
    mixline("init")
    r = mixline("trace", "0" * 32, ok=False)
    assert r.exit_code == 4 and "no sample with id" in r.output
    r = mixline("ingest", str(tmp_path / "missing.jsonl"), "--kind", "web", ok=False)
    assert r.exit_code == 3 and "no such file" in r.output
    r = mixline("sql", "SELECT nope FROM samples", ok=False)
    assert r.exit_code == 1 and "query failed" in r.output


def test_same_text_from_two_sources_is_one_sample_two_origins(mixline, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"text": "shared text"}\n{"text": "only in a"}\n')
    b.write_text('{"text": "shared text"}\n')
    mixline("ingest", str(a), "--kind", "web", "--source", "A")
    out = mixline.json("ingest", str(b), "--kind", "domain", "--source", "B")
    assert (out["ingested"], out["duplicates"], out["origins"]) == (0, 1, 1)
    again = mixline.json("ingest", str(a), "--kind", "web", "--source", "A")
    assert (again["ingested"], again["origins"], again["quarantined"]) == (0, 0, 0)
    sid = mixline.json("sql", "SELECT sample_id FROM samples WHERE text = 'shared text'")[0]["sample_id"]
    assert sorted(o["source"] for o in mixline.json("trace", sid)["sources"]) == ["A", "B"]


def test_source_kind_conflict_is_refused(mixline, tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text('{"text": "t"}\n')
    mixline("ingest", str(a), "--kind", "web", "--source", "A")
    r = mixline("ingest", str(a), "--kind", "eval", "--source", "A", ok=False)
    assert r.exit_code == 2 and "already registered with --kind web" in r.output
