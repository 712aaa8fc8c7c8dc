"""PII: detectors, scrub lineage, policies, conversations, memorisation, zero leaks, CLI, real data."""

import json

import pytest
from mixline.curation.pii.detectors import Detector, find_phone
from mixline.curation.pipeline import curate
from mixline.curation.recipe import Recipe
from mixline.pipelines.export import export
from mixline.pipelines.ingest import IngestOptions, ingest
from mixline.pipelines.mix import MixRecipe, build
from mixline.store.lineage import trace

from mixline.errors import ConfigError

PLANTED = {
    "EMAIL": "jane.roe@mailhost.io",
    "PHONE": "+44 20 7946 0958",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN": "GB82 WEST 1234 5698 7654 32",
    "US_SSN": "078-05-1120",
    "IP_ADDRESS": "192.168.13.37",
    "URL_CREDENTIALS": "bob:hunter2secret",
    "SECRET": "AKIAIOSFODNN7EXAMPLE",
}


def found(text, **kw):
    return [(s.entity_type, text[s.start:s.end]) for s in Detector(names="none", **kw).detect([text])[0]]


def test_each_detector_and_its_validation():
    assert found("mail jane.roe@mailhost.io now") == [("EMAIL", "jane.roe@mailhost.io")]
    assert found("card 4111 1111 1111 1111") == [("CREDIT_CARD", "4111 1111 1111 1111")]
    assert found("card 4111 1111 1111 1112") == []  # fails Luhn
    assert found("IBAN GB82 WEST 1234 5698 7654 32") == [("IBAN", "GB82 WEST 1234 5698 7654 32")]
    assert found("IBAN GB83 WEST 1234 5698 7654 32") == []  # fails mod 97
    assert found("ssn 078-05-1120") == [("US_SSN", "078-05-1120")]
    assert found("ip 10.0.0.1, not 999.1.1.1; v6 2001:db8::1") == [("IP_ADDRESS", "10.0.0.1"), ("IP_ADDRESS", "2001:db8::1")]
    assert found("call +44 20 7946 0958 or (555) 123-4567") == [("PHONE", "+44 20 7946 0958"), ("PHONE", "(555) 123-4567")]
    assert found("git clone https://bob:hunter2@host/repo") == [("URL_CREDENTIALS", "bob:hunter2")]
    assert found("aws AKIAIOSFODNN7EXAMPLE") == [("SECRET", "AKIAIOSFODNN7EXAMPLE")]
    assert found("token ghp_" + "a1B2" * 9) == [("SECRET", "ghp_" + "a1B2" * 9)]
    assert found('db_password = "Xk9#mQ2$vL7p"')[0][0] == "SECRET"
    assert found("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----")[0][0] == "SECRET"
    assert found("visit 1600 Pennsylvania Avenue today") == [("STREET_ADDRESS", "1600 Pennsylvania Avenue")]


def test_allow_list_and_plain_text_negatives():
    assert found("write to support@example.com") == []
    assert found("The meeting is at 10:30 on 2024-05-01 in room 12; version 3.11.7.") == []


def test_person_and_location_from_ner():
    spans = Detector(names="spacy").detect(["Yesterday Maria Gonzalez flew from Madrid to Chicago."])[0]
    assert {s.entity_type for s in spans} == {"PERSON", "LOCATION"}


def names_in(text, **kw):
    return [(s.entity_type, text[s.start:s.end]) for s in Detector(entities=("PERSON", "LOCATION", "STREET_ADDRESS"), **kw).detect([text])[0]]


@pytest.mark.parametrize(("text", "expected"), [
    ("Yesterday Maria Gonzalez flew from Madrid to Chicago.", [("PERSON", "Maria Gonzalez"), ("LOCATION", "Madrid"), ("LOCATION", "Chicago")]),
    # A surname in no list still follows a known first name; a title marks an unknown one.
    ("Please forward this to Gwendolyn Okonkwo-Brkić today.", [("PERSON", "Gwendolyn Okonkwo-Brkić")]),
    ("I spoke with Mrs. Abernathy-Quist about the refund.", [("PERSON", "Abernathy-Quist")]),
    ("My account is under my husband's name Donald van der Voet", [("PERSON", "Donald van der Voet")]),
    # Words that are also names only count with more evidence.
    ("Rose petals and hope will grow in May.", []),
    ("Will you call me back?", []),
    ("Taylor Barabás sent the form.", [("PERSON", "Taylor Barabás")]),
    # A place after a first name is a surname; a place needs no capital in lowercase text.
    ("Dustin Rivas listed his top songs.", [("PERSON", "Dustin Rivas")]),
    ("we moved here from reykjavik last year", [("LOCATION", "reykjavik")]),
    ("The clinic in Reykjavík and the one in Costa Rica reopened.", [("LOCATION", "Reykjavík"), ("LOCATION", "Costa Rica")]),
    # Possessives end before the 's; street names are not people.
    ("It was Sumaya's idea.", [("PERSON", "Sumaya")]),
    ("Send it to 106 Kate Edger Place, please.", [("STREET_ADDRESS", "106 Kate Edger Place")]),
    # A town too small for the gazetteer, placed by the shape of the address around it.
    ("Ship to:\nMaria Quintero\n14 Harbour Lane\nSuite 9\nKilmacrennan\nIreland 44102",
     [("PERSON", "Maria Quintero"), ("STREET_ADDRESS", "14 Harbour Lane\nSuite 9"), ("LOCATION", "Kilmacrennan"), ("LOCATION", "Ireland"),
          ("STREET_ADDRESS", "44102")]),
    ("she lives at 87 Jakobi 69, Laane", [("LOCATION", "Laane")]),
    ("In 2019, we moved house.", []),
    ("Morishita began writing as a teenager.", [("PERSON", "Morishita")]),
    # Conversation text: function words, headings, acronyms and product names are not people.
    ("My Google Sheet has a column per month. Can you help?", []),
    ("How The Brain Can Sometimes Trick Us\nIt fills in gaps.", []),
    ("I compared OpenAI and X-Plane output with the SEO report.", []),
])
def test_lexicon_names_and_places(text, expected):
    assert sorted(names_in(text)) == sorted(expected)


def test_names_none_and_unknown_detector():
    assert names_in("Yesterday Maria Gonzalez flew from Madrid.", names="none") == []
    with pytest.raises(ConfigError, match="names = 'bert'"):
        Detector(names="bert")


def test_scrub_step_lineage_redactions_and_withheld_parent(store):
    from tests.test_curation_pipeline import add

    text = "Contact Jane at jane.roe@mailhost.io or 555-123-4567. Jane works at the lab."
    (raw,) = add(store, [(text, "web", 0, "crawl")])
    res = curate(store, Recipe.parse({"steps": [{"type": "pii", "names": "none"}]}, "t"))
    assert res.rewritten == 1
    child = store.scalar("SELECT child_id FROM edges WHERE parent_id = ? AND relation = 'scrubbed_from'", [raw])
    scrubbed = store.scalar("SELECT text FROM samples WHERE sample_id = ?", [child])
    assert scrubbed == "Contact Jane at <EMAIL> or <PHONE>. Jane works at the lab."
    reds = store.rows('SELECT entity_type, "start", "end", detector FROM redactions WHERE sample_id = ? ORDER BY "start"', [child])
    assert [scrubbed[r["start"]:r["end"]] for r in reds] == ["<EMAIL>", "<PHONE>"]
    # No column of any table holds the raw value except the raw sample itself.
    for table in ("redactions", "decisions", "edges", "pii_fingerprints", "runs"):
        dump = json.dumps(store.rows(f"SELECT * FROM {table}"), default=str)
        assert "jane.roe@mailhost.io" not in dump
    assert store.scalar("SELECT status FROM sample_status WHERE sample_id = ?", [raw]) == "rewritten"
    assert store.scalar("SELECT status FROM sample_status WHERE sample_id = ?", [child]) == "kept"
    t = trace(store, raw)
    assert t.sample["withheld"] and "jane.roe" not in t.sample["text"] and t.scrubbed_into == [child]
    tc = trace(store, child)
    assert tc.redactions == {"EMAIL": 1, "PHONE": 1}
    assert [(a["sample_id"], a["relation"]) for a in tc.ancestors] == [(raw, "scrubbed_from")]


def test_pseudonyms_are_consistent_and_drop_policy(store):
    from tests.test_curation_pipeline import add

    add(store, [("Write to ann@corp.io about the plan.", "web", 0, "s"), ("ann@corp.io said yes; bo@corp.io said no.", "web", 0, "s"),
                ("The key is AKIAIOSFODNN7EXAMPLE for the bucket.", "web", 0, "s")])
    r = Recipe.parse({"steps": [{"type": "pii", "names": "none", "policies": {"EMAIL": "pseudonym", "SECRET": "drop"}}]}, "t")
    res = curate(store, r)
    texts = sorted(t for (t,) in store.execute("SELECT text FROM samples WHERE created_run_id = ?", [res.run_id]).fetchall())
    p1 = texts[0].split()[0] if texts[0].startswith("<") else texts[1].split()[0]
    assert p1.startswith("<EMAIL_") and sum(t.count(p1) for t in texts) == 2
    assert store.scalar("SELECT reason FROM decisions WHERE verdict = 'dropped'") == "pii_drop:SECRET"


def test_conversations_scrubbed_per_message_and_secret_drops_conversation(store, tmp_path):
    rows = [{"messages": [{"role": "user", "content": "I'm at 203.0.113.9, mail me: kim@web.io"},
                          {"role": "assistant", "content": "Noted."}]},
            {"messages": [{"role": "user", "content": "my key AKIAIOSFODNN7EXAMPLE"}, {"role": "assistant", "content": "Don't share keys."}]}]
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ingest(store, p, IngestOptions(kind="conversation", source="chat"))
    res = curate(store, Recipe.parse({"steps": [{"type": "pii", "names": "none"}]}, "t"))
    assert res.rewritten == 1 and res.dropped == 1
    msgs = json.loads(store.scalar("SELECT messages FROM samples WHERE created_run_id = ?", [res.run_id]))
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["content"] == "I'm at <IP_ADDRESS>, mail me: <EMAIL>"


def test_memorisation_flags_verbatim_spans_and_known_pii(store):
    from tests.test_curation_pipeline import add

    conv = "User: my daughter Lily starts at Riverside Elementary next week and I am nervous about it."
    add(store, [(conv, "conversation", 0, "chat"), ("Reach me at lee.k@privmail.io any time.", "web", 0, "crawl")], run="r1")
    curate(store, Recipe.parse({"steps": [{"type": "pii", "names": "none"}]}, "t"))
    add(store, [("Story: my daughter Lily starts at Riverside Elementary next week and she is happy.", "synthetic", 1, "gen1"),
                ("You can email lee.k@privmail.io for details.", "synthetic", 1, "gen1"),
                ("A fresh sentence with nothing borrowed from anyone at all.", "synthetic", 1, "gen1")], run="r2")
    res = curate(store, Recipe.parse({"steps": [{"type": "memorisation"}]}, "t"), where="synth_depth > 0")
    reasons = sorted(r for (r,) in store.execute("SELECT reason FROM decisions WHERE run_id = ? AND verdict = 'dropped'", [res.run_id]).fetchall())
    assert len(reasons) == 2 and reasons[0] == "memorised_pii:EMAIL" and reasons[1].startswith("memorised_span:")


def test_zero_leak_from_corpus_to_export(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLINE_EXPORT_ROOT", str(tmp_path))
    filler = "The committee met on Tuesday to review the budget and the plans for the new library building."
    shown = {k: (f"https://{v}@git.internal/repo" if k == "URL_CREDENTIALS" else v) for k, v in PLANTED.items()}
    docs = [{"text": f"{filler} Note {k}: the value is {v} as discussed. {filler}"} for k, v in shown.items()]
    docs += [{"text": f"{filler} Another ordinary paragraph number {i} with nothing private in it at all."} for i in range(5)]
    p = tmp_path / "pii.jsonl"
    p.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    ingest(store, p, IngestOptions(kind="web", source="planted"))
    curate(store, Recipe.parse({"steps": [{"type": "pii"}, {"type": "exact_dedup"}]}, "t"))
    m = build(store, MixRecipe.parse({"name": "leak", "groups": [{"name": "all", "where": "TRUE"}]}))
    assert m.summary["members"] >= len(PLANTED)
    for fmt in ("parquet", "jsonl"):
        out = tmp_path / f"exp-{fmt}"
        export(store, m.mix_id, out, fmt)
        blob = b"".join(f.read_bytes() for f in out.rglob("*") if f.is_file())
        import pyarrow.parquet as pq

        for f in out.rglob("*.parquet"):
            blob += json.dumps(pq.read_table(f).to_pylist()).encode()
        for kind, value in PLANTED.items():
            assert value.encode() not in blob, f"{kind} value leaked into the {fmt} export"


def test_cli_pii_scan_json(mixline, tmp_path):
    p = tmp_path / "scan.jsonl"
    p.write_text(json.dumps({"id": "r1", "text": "mail a.b@corp.io"}) + "\n" + json.dumps({"text": "nothing"}) + "\n")
    out = mixline("pii", "scan", str(p), "--json", "--names", "none").stdout.strip().splitlines()
    assert [json.loads(x) for x in out] == [
        {"id": "r1", "spans": [{"start": 5, "end": 16, "entity_type": "EMAIL", "detector": "email_regex"}]},
        {"id": 2, "spans": []}]


def test_secrets_recall_on_detect_secrets_baseline(realdata):
    from mixline.curation.pii.evaluate import secrets_recall

    exact, near = secrets_recall(realdata / "pii/detect_secrets_test_data")
    print(f"secrets recall: {exact:.3f} exact line or hash, {near:.3f} within one line")
    # Three baseline entries point one line off their secret (the baseline predates an edit of the files).
    assert near >= 0.9 and exact >= 0.85


def test_presidio_small_set_structured_types(realdata):
    data = json.loads((realdata / "pii/presidio_generated_small.json").read_text())
    mapping = {"EMAIL": "EMAIL_ADDRESS", "CREDIT_CARD": "CREDIT_CARD", "US_SSN": "US_SSN", "IBAN": "IBAN_CODE"}
    det = Detector(names="none")
    tp = fp = fn = 0
    for rec, spans in zip(data, det.detect([r["full_text"] for r in data]), strict=True):
        gold = {(s["start_position"], s["end_position"], s["entity_type"]) for s in rec["spans"] if s["entity_type"] in mapping.values()}
        pred = {(s.start, s.end, mapping[s.entity_type]) for s in spans if s.entity_type in mapping}
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
    f1 = 2 * tp / (2 * tp + fp + fn)
    print(f"presidio small, structured types: F1 {f1:.3f} (tp {tp}, fp {fp}, fn {fn})")
    assert f1 >= 0.8


def test_lexicon_names_on_real_sets(realdata):
    """Person and location F1 (exact spans) on Presidio's generated sets: the lexicon
    detector is measured at 0.77 and 0.56 (benchmarks/RESULTS.md); spaCy's small model, as
    Presidio uses it, at 0.64 and 0.42."""
    texts, gold = [], []
    for name in ("presidio_generated_small.json", "presidio_generated_large.json"):
        for r in json.loads((realdata / "pii" / name).read_text()):
            texts.append(r["full_text"])
            gold.append({(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]
                         if s["entity_type"] in ("PERSON", "LOCATION")})
    found = Detector(entities=("PERSON", "LOCATION")).detect(texts)
    for kind, floor in (("PERSON", 0.74), ("LOCATION", 0.52)):
        g = {(i, *x) for i, spans in enumerate(gold) for x in spans if x[2] == kind}
        p = {(i, s.start, s.end, s.entity_type) for i, spans in enumerate(found) for s in spans if s.entity_type == kind}
        f1 = 2 * len(g & p) / (len(g) + len(p))
        print(f"{kind}: F1 {f1:.3f} on {len(g)} gold spans")
        assert f1 >= floor


DOMAIN_NUMBERS = [
    "Incidence rose during 2000-2012 in every group.",
    "in the period 1997-2007, rates fell",
    "Am J Med 2009;122:1234-1250.",
    "doi:10.1016/j.cell.2009.01.042",
    "PMID: 19167326",
    "mean 54.2 (95% CI 51.3-57.1)",
    "ISBN 978-3-16-148410-0",
    "registered as NCT01234567",
    "fixed in version 3.12.1",
    "under 42 U.S.C. § 1983-1988",
    "at 40.7128, -74.0060",
    "doses of 120-1400 mg/day",
    "1200-1500 patients were enrolled",
    "see section 12-3456 of the code",
]


@pytest.mark.parametrize("text", DOMAIN_NUMBERS)
def test_domain_numbers_are_not_phones(text):
    assert [s for s in find_phone(text)] == []


@pytest.mark.parametrize("text,phone", [
    ("call 1-800-CDC-INFO (1-800-232-4636) today", "1-800-232-4636"),
    ("Call me at (555) 123-4567 tomorrow", "(555) 123-4567"),
    ("phone: 020 7946 0958", "020 7946 0958"),
    ("reach 555.123.4567 after 5", "555.123.4567"),
    ("office +44 20 7946 0958", "+44 20 7946 0958"),
])
def test_real_phones_are_still_found(text, phone):
    assert [text[s.start:s.end] for s in find_phone(text)] == [phone]


@pytest.mark.parametrize("text,phones", [
    ("or by calling 18008608747.", ["18008608747"]),
    ("Phone: 7035246686 Fax: 7035246630", ["7035246686", "7035246630"]),
    ("call 1800MEDICARE (18006334227) today", ["18006334227"]),
    ("Order number 18008608747 shipped.", []),                  # no cue: an id
    ("14 15 16 17 18", []),                                    # line numbers
    ("Programmatic $ 300,000.00 90% 10%", []),
    ("RFC 2373 2.5.2. defines it", []),
    ("netmask 255.255.255.224", []),
    ("high serum ferritin (850-4000 ng/mL)", []),
    ("You can call 0477 11 28 98", ["0477 11 28 98"]),
])
def test_cued_bare_numbers_and_number_runs(text, phones):
    assert [text[s.start:s.end] for s in find_phone(text)] == phones


@pytest.mark.realdata
def test_phone_precision_and_recall_on_the_labelled_set(realdata):
    """314 hand-checked sentences with numbers from medical, legal, code and web text, plus
    Presidio's labelled phones (tests/fixtures/phone_labels.json, benchmarks/phone_set.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from phone_set import score

    rows = {r["source"]: r for r in score(realdata)}
    print(rows["ALL"])
    assert rows["ALL"]["sentences"] >= 400 and sum(r["sentences"] for s, r in rows.items() if s != "ALL" and not s.startswith("pii")) >= 300
    assert rows["ALL"]["precision"] >= 0.97 and rows["ALL"]["recall"] >= 0.9
    for source in ("domain_legal", "web", "code"):
        assert rows[source]["predicted"] == rows[source]["right"], f"false phones in {source}"


def test_cheap_hints_never_skip_a_detector_that_would_find_something() -> None:
    """Detector skips a pattern where a hint (an '@', enough digits, the pattern's core) rules it
    out; on texts dense with near-PII, every finder run unconditionally finds nothing more."""
    import random

    from mixline.curation.pii import detectors as d

    rng = random.Random(11)
    parts = ["call", "+49", "(030)", "555-0100", "123-45-6789", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
             "10.0.0.1", "fe80::1", "a@b.io", "https://u:p@h.io/", "key=", "'AbCdEf0123456789'", "ext 12", "x",
             "٣٤٥٦٧٨٩", "12.5", "::", "\n    ", "Rua do Sol 12", "token: ", "0" * 32, ".", "-", " ", "(", ")", "7"]
    texts = ["".join(rng.choice(parts) + rng.choice(["", " ", ", "]) for _ in range(rng.randint(1, 12)))
             for _ in range(4000)]
    for text in texts:
        hints = d.Hints(text)
        for entity, finder in d.PATTERN_DETECTORS.items():
            if not hints.may_hold(entity):
                assert list(finder(text)) == [], (entity, text)
