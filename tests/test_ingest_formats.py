"""Each input format on small fixtures written here, through the store API."""

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from mixline.pipelines.ingest import IngestOptions, ingest

from mixline.errors import UnknownFormatError

DOCS = [{"id": f"d{i}", "text": f"Document number {i} about curation.", "url": f"https://ex.org/{i}"} for i in range(5)]


def write_jsonl(path: Path, rows: list[dict], opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return path


def opts(**kw) -> IngestOptions:
    return IngestOptions(**{"kind": "web", "source": "fixture", **kw})


def texts(store) -> list[str]:
    return [r[0] for r in store.execute("SELECT text FROM samples ORDER BY text").fetchall()]


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "jsonl.zst"])
def test_jsonl_plain_and_compressed(store, tmp_path, suffix):
    path = tmp_path / f"docs.{suffix}"
    if suffix.endswith("gz"):
        write_jsonl(path, DOCS, gzip.open)
    elif suffix.endswith("zst"):
        path.write_bytes(zstandard.ZstdCompressor().compress("".join(json.dumps(d) + "\n" for d in DOCS).encode()))
    else:
        write_jsonl(path, DOCS)
    r = ingest(store, path, opts())
    assert (r.ingested, r.duplicates, r.quarantined) == (5, 0, 0)
    origin = store.rows("SELECT original_id, url, locator, meta FROM sample_origins ORDER BY locator")[0]
    assert origin["original_id"] == "d0" and origin["url"] == "https://ex.org/0" and origin["locator"] == "line 1"
    assert json.loads(origin["meta"]) == {"id": "d0", "url": "https://ex.org/0"}


def test_parquet_and_csv(store, tmp_path):
    pq.write_table(pa.Table.from_pylist(DOCS), tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_text("id,body\nx1,Comma separated text one.\nx2,\"Quoted, with comma.\"\n")
    assert ingest(store, tmp_path / "a.parquet", opts()).ingested == 5
    r = ingest(store, tmp_path / "b.csv", opts(source="csv", text_fields=("body",)))
    assert r.ingested == 2
    assert "Quoted, with comma." in texts(store)
    assert store.scalar("SELECT locator FROM sample_origins WHERE original_id = 'x2'") == "line 3"


def test_folder_of_text_files(store, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("First file.")
    (tmp_path / "sub" / "b.txt").write_text("Second file.")
    r = ingest(store, tmp_path, opts())
    assert r.ingested == 2
    assert sorted(r[0] for r in store.execute("SELECT original_id FROM sample_origins").fetchall()) == ["a.txt", "sub/b.txt"]


def test_hf_saved_dataset_and_local_data_files(store, tmp_path):
    import datasets

    datasets.Dataset.from_list(DOCS).save_to_disk(str(tmp_path / "saved"))
    assert ingest(store, tmp_path / "saved", opts()).ingested == 5
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(DOCS[:2]), "test": datasets.Dataset.from_list([{"text": "held out"}])})
    dd.save_to_disk(str(tmp_path / "dd"))
    r = ingest(store, tmp_path / "dd", opts(source="dd", split="test"))
    assert r.ingested == 1 and "held out" in texts(store)


def test_openai_and_sharegpt_conversations(store, tmp_path):
    rows = [
        {"id": "c1", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"id": "c2", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        {"id": "c3", "messages": [{"role": "wizard", "content": "?"}]},
    ]
    r = ingest(store, write_jsonl(tmp_path / "chat.jsonl", rows), opts(kind="conversation"))
    # Both formats normalise to the same messages, so they are one sample with two origins.
    assert (r.ingested, r.duplicates, r.quarantined) == (1, 1, 1)
    s = store.rows("SELECT text, messages FROM samples")[0]
    assert s["text"] == "User: Hi\n\nAssistant: Hello!"
    assert json.loads(s["messages"]) == [{"content": "Hi", "role": "user"}, {"content": "Hello!", "role": "assistant"}]
    reason = store.scalar("SELECT reason FROM quarantine")
    assert "messages[0].role" in reason and "wizard" in reason


def test_oasst_tree_flattens_to_threads_keeping_ids(store, tmp_path):
    tree = {"message_id": "m1", "parent_id": None, "text": "Q?", "role": "prompter", "replies": [
        {"message_id": "m2", "text": "A1", "role": "assistant", "replies": [
            {"message_id": "m4", "text": "Thanks", "role": "prompter", "replies": []}]},
        {"message_id": "m3", "text": "A2", "role": "assistant", "synthetic": True, "model_name": "bot7", "replies": []},
        {"message_id": "m5", "text": "gone", "role": "assistant", "deleted": True, "replies": []},
    ]}
    r = ingest(store, write_jsonl(tmp_path / "trees.jsonl", [tree]), opts(kind="conversation"))
    assert r.ingested == 3  # m1-m2-m4, m1-m3, and m1 alone (its deleted branch ends the path)
    metas = [json.loads(m[0]) for m in store.execute("SELECT meta FROM sample_origins ORDER BY locator").fetchall()]
    assert [m["message_ids"] for m in metas] == [["m1", "m2", "m4"], ["m1", "m3"], ["m1"]]
    assert all(m["tree_id"] == "m1" for m in metas)
    synth = json.loads(store.scalar("SELECT messages FROM samples WHERE text LIKE '%A2%'"))
    assert synth[1] == {"content": "A2", "message_id": "m3", "model_name": "bot7", "role": "assistant", "synthetic": True}


def test_field_mapping_joins_text_fields_and_takes_id(store, tmp_path):
    rows = [{"qid": "q1", "question": "What is X?", "answer": "X is Y."}]
    ingest(store, write_jsonl(tmp_path / "qa.jsonl", rows), opts(kind="domain", domain="medical", text_fields=("question", "answer"), id_field="qid"))
    assert texts(store) == ["What is X?\n\nX is Y."]
    assert store.scalar("SELECT original_id FROM sample_origins") == "q1"
    assert store.scalar("SELECT domain FROM samples") == "medical"


def test_unknown_format_is_refused_with_a_fix(store, tmp_path):
    p = tmp_path / "data.bin"
    p.write_bytes(b"\x00\x01binary")
    with pytest.raises(UnknownFormatError, match=r"data.bin: cannot tell its format.*--format"):
        ingest(store, p, opts())
    assert store.scalar("SELECT count(*) FROM samples") == 0
