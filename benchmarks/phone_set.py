"""The labelled PHONE set: number-bearing sentences from real domain and web text, plus the
phone numbers labelled in Presidio's generated sets.

Candidates are found by a broad pattern that knows nothing of mixline's detector: a run of
digits and separators holding at least 6 digits. `tests/fixtures/phone_labels.json` keeps
where each candidate is (file, record, offsets) and its label, never the text around it; this
module reads the sentences back from the real data folder.

    python benchmarks/phone_set.py candidates   # list unlabelled candidates to label by hand
    python benchmarks/phone_set.py score        # PHONE precision and recall on the labelled set
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, realdata, table  # noqa: E402

LABELS = ROOT / "tests" / "fixtures" / "phone_labels.json"
CANDIDATE = re.compile(r"(?<![\w.])\+?\(?\d[\d()./ -]{4,20}\d(?![\w])")
SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?](?=\s|$)|\n|$)")
SOURCES = {  # file under the real data folder -> (text field, records read)
    "domain_medical/medquad_qa.jsonl.gz": ("answer", 16000),
    "domain_legal/legalbench_train_permissive.jsonl": ("text", 5000),
    "code/cpython_stdlib_3.8_vs_3.12.jsonl.gz": ("text", 400),
    "web/dolma_cc_en_head-0091.jsonl.gz": ("text", 3000),
    "web/dolma_cc_en_head-0174.jsonl.gz": ("text", 3000),
}


def records(data: Path, name: str) -> Iterator[tuple[int, str]]:
    field, limit = SOURCES[name]
    path = data / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for i, line in zip(range(limit), fh, strict=False):
            text = json.loads(line).get(field)
            if isinstance(text, str):
                yield i, text


def digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def candidates(data: Path) -> Iterator[dict]:
    """Every candidate number with its sentence's offsets, in file order."""
    for name in SOURCES:
        for i, text in records(data, name):
            for m in CANDIDATE.finditer(text):
                if digits(m.group()) < 6:
                    continue
                a = text.rfind("\n", 0, m.start()) + 1
                sent_start = max(a, max((text.rfind(p, 0, m.start()) + 2 for p in (". ", "? ", "! ")), default=0))
                ends = [e for e in (text.find(p, m.end()) for p in (". ", "\n")) if e >= 0]
                yield {"file": name, "record": i, "start": m.start(), "end": m.end(), "value": m.group(),
                       "sentence": [sent_start, min(ends) + 1 if ends else len(text)]}


def presidio_phones(data: Path) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """Texts of Presidio's generated sets that label a phone number, with the gold spans."""
    for name in ("presidio_generated_small.json", "presidio_generated_large.json"):
        for r in json.loads((data / "pii" / name).read_text()):
            gold = [(s["start_position"], s["end_position"]) for s in r["spans"] if s["entity_type"] == "PHONE_NUMBER"]
            if gold:
                yield r["full_text"], gold


def labelled(data: Path) -> Iterator[tuple[str, str, list[tuple[int, int]], list[tuple[int, int]]]]:
    """(source, sentence, phone spans, vanity-number spans) for every labelled sentence, then
    every text of Presidio's generated sets that labels a phone number."""
    sentences = json.loads(LABELS.read_text())["sentences"]
    texts: dict[tuple[str, int], str] = {}
    for name in {x["file"] for x in sentences}:
        want = {x["record"] for x in sentences if x["file"] == name}
        texts.update(((name, i), t) for i, t in records(data, name) if i in want)
    for x in sentences:
        text = texts[(x["file"], x["record"])]
        a, b = x["sentence"]
        for start, end, value in x["phones"] + x["vanity"]:
            if text[start:end] != value:
                raise SystemExit(f"{x['file']} record {x['record']}: expected {value!r} at {start}; the data has changed")
        yield (x["file"].split("/")[0], text[a:b], [(s - a, e - a) for s, e, _ in x["phones"]],
               [(s - a, e - a) for s, e, _ in x["vanity"]])
    for text, gold in presidio_phones(data):
        yield "pii (Presidio generated)", text, gold, []


def overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(2 * (min(span[1], b) - max(span[0], a)) >= span[1] - span[0] for a, b in spans)


def score(data: Path) -> list[dict]:
    """PHONE precision and recall per source: a gold phone is found when a predicted span covers
    half of it; a predicted span is right when half of it lies on a gold phone."""
    from mixline.curation.pii.detectors import find_phone

    rows: dict[str, dict] = {}
    for source, sentence, phones, vanity in labelled(data):
        r = rows.setdefault(source, {"source": source, "sentences": 0, "phones": 0, "found": 0, "predicted": 0, "right": 0})
        pred = [(s.start, s.end) for s in find_phone(sentence) if not overlaps((s.start, s.end), vanity)]
        r["sentences"] += 1
        r["phones"] += len(phones)
        r["found"] += sum(any(2 * (min(b, y) - max(a, x)) >= b - a for x, y in pred) for a, b in phones)
        r["predicted"] += len(pred)
        r["right"] += sum(overlaps(p, phones) for p in pred)
    total = {"source": "ALL", **{k: sum(r[k] for r in rows.values()) for k in ("sentences", "phones", "found", "predicted", "right")}}
    out = [*rows.values(), total]
    for r in out:
        r["precision"] = round(r["right"] / r["predicted"], 3) if r["predicted"] else 1.0
        r["recall"] = round(r["found"] / r["phones"], 3) if r["phones"] else 1.0
    return out


def main() -> None:
    data = realdata()
    if sys.argv[1:] == ["candidates"]:
        for c in candidates(data):
            print(json.dumps(c))
    else:
        print(table(score(data)))


if __name__ == "__main__":
    main()
