"""Ingest on real third-party files from ../shared/data."""

import json

from mixline.pipelines.ingest import IngestOptions, ingest

CC = "web/dolma_CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def test_common_crawl_copies_and_empties(store, realdata):
    r = ingest(store, realdata / CC, IngestOptions(kind="web", source="cc"))
    # 697 docs: 27 empty ones are quarantined; of the 35 exact extra copies, 26 are copies of
    # the empty text and 9 of real documents, so 697 - 27 - 9 = 661 samples.
    assert (r.records, r.quarantined, r.duplicates, r.ingested) == (697, 27, 9, 661)
    assert store.scalar("SELECT count(*) FROM sample_origins") == 670
    meta = json.loads(store.scalar("SELECT meta FROM sample_origins WHERE locator = 'line 1'"))
    assert meta["metadata"]["warc_url"].startswith("http") and meta["source"] == "test_gz"
    assert store.scalar("SELECT original_id FROM sample_origins WHERE locator = 'line 1'") == "blj5uzvcoa4iybpd5o6kom5nir6ngmoj"
    again = ingest(store, realdata / CC, IngestOptions(kind="web", source="cc"))
    assert (again.ingested, again.origins) == (0, 0)


def test_warc_files_to_text_with_urls(store, realdata):
    files = [realdata / "web/dolma_sample-0000.warc.gz", realdata / "web/dolma_sample-0001.warc.gz"]
    r = ingest(store, files, IngestOptions(kind="web", source="warc"))
    assert r.records == 37 and r.quarantined == 0
    assert r.ingested + r.duplicates == 37
    row = store.rows("SELECT url, original_id, locator, meta FROM sample_origins WHERE url = 'https://soldaini.net/'")[0]
    assert row["original_id"].startswith("<urn:uuid:") and row["locator"].startswith("offset ")
    assert json.loads(row["meta"])["http_status"] == "200"
    assert "<script" not in store.scalar("SELECT string_agg(text, ' ') FROM samples")


def test_oasst_trees(store, realdata):
    r = ingest(store, realdata / "conversations/oasst_en_100_message.jsonl", IngestOptions(kind="conversation", source="oasst"))
    assert r.records == 626 and r.quarantined == 0
    trees = store.scalar("SELECT count(DISTINCT json_extract_string(meta, '$.tree_id')) FROM sample_origins")
    assert trees == 100
    synth = store.scalar("SELECT count(*) FROM sample_origins WHERE CAST(json_extract(meta, '$.synthetic_messages') AS INT) > 0")
    assert synth > 0
    first = json.loads(store.scalar("SELECT messages FROM samples LIMIT 1"))
    assert first[0]["role"] == "user" and "message_id" in first[0]


def test_sharegpt_file_is_heavily_duplicated(store, realdata):
    r = ingest(store, realdata / "conversations/fastchat_dummy_conversation_sharegpt_format.json", IngestOptions(kind="conversation", source="fastchat"))
    assert r.records == 500 and r.quarantined == 0
    assert r.ingested + r.duplicates == 500
    assert store.scalar("SELECT count(*) FROM sample_origins WHERE original_id = 'identity_0'") == 1


def test_medquad_question_and_answer(store, realdata):
    r = ingest(store, realdata / "domain_medical/medquad_qa.jsonl.gz",
               IngestOptions(kind="domain", source="medquad", domain="medical", text_fields=("question", "answer"), id_field="qid"))
    assert r.records == 16_407 and r.quarantined == 0
    assert r.ingested + r.duplicates == 16_407
    assert store.scalar("SELECT count(DISTINCT url) FROM sample_origins") > 1000
    assert store.scalar("SELECT count(*) FROM samples WHERE domain = 'medical'") == r.ingested
