"""Street addresses in international formats: found as one span, and left alone in domain text."""

from __future__ import annotations

import json

import pytest
from mixline.curation.pii.address import find_addresses
from mixline.curation.pii.detectors import Detector


def addresses(text: str) -> list[str]:
    return [text[a:b] for a, b in find_addresses(text)]


@pytest.mark.parametrize("text,address", [
    ("Please ship it to Rua do Arenque 1634 by Friday.", "Rua do Arenque 1634"),
    ("I live at Allika 46, Apt. 595 now.", "Allika 46, Apt. 595"),
    ("Mail goes to PSC 0413, Box 8144, APO AA 42323 for now.", "PSC 0413, Box 8144, APO AA 42323"),
    ("Visit us at 221B Baker Street, London NW1 6XE.", "221B Baker Street, London NW1 6XE"),
    ("Our office: Hauptstraße 5, 10115 Berlin", "Hauptstraße 5, 10115 Berlin"),
    ("She moved to 1194 North Mathilda Avenue, Sunnyvale, CA 94089 last year.",
     "1194 North Mathilda Avenue, Sunnyvale, CA 94089"),
    ("Send the form to P.O. Box 669, Neenah, WI 54957.", "P.O. Box 669, Neenah, WI 54957"),
    ("It is at Eötvös út 10. in the old town", "Eötvös út 10."),
])
def test_international_addresses_are_one_span(text: str, address: str) -> None:
    assert addresses(text) == [address]


@pytest.mark.parametrize("text", [
    "It is a 2 hour drive from the coast, a 10 minute walk from the station.",
    "The study took place in 1969 and was repeated in 1973 by Dr. Smith.",
    "Read Chapter 46 before installing Windows 10.",
    "The building has 13 million net rentable square feet.",
    "Set the value to 3, followed by the starting square, and close 3 ports.",
    "In 286, and that's where the Court held otherwise.",
    "Patients aged 45-65 were followed for 12 months (p < 0.05).",
])
def test_numbers_and_street_words_in_prose_are_not_addresses(text: str) -> None:
    assert addresses(text) == []


def test_detector_splits_towns_and_countries_out_of_an_address() -> None:
    text = "Send it to 95 230 Wit Rd\nSuite 246\nBryanston\nRwanda 02438 please"
    spans = Detector(entities=("STREET_ADDRESS", "LOCATION")).detect([text])[0]
    got = [(s.entity_type, text[s.start:s.end]) for s in spans]
    assert ("LOCATION", "Rwanda") in got
    assert got[0] == ("STREET_ADDRESS", "95 230 Wit Rd\nSuite 246")
    covered = set().union(*(range(s.start, s.end) for s in spans))
    assert all(i in covered for i in range(text.index("95"), text.index(" please")) if not text[i].isspace())
    # Without place names, the address stays one span.
    only = Detector(entities=("STREET_ADDRESS",)).detect([text])[0]
    assert [text[s.start:s.end] for s in only] == ["95 230 Wit Rd\nSuite 246\nBryanston\nRwanda 02438"]


@pytest.mark.realdata
def test_address_recall_and_precision_on_presidio_sets(realdata, monkeypatch) -> None:
    import sys
    from pathlib import Path

    monkeypatch.setenv("MIXLINE_REALDATA", str(realdata))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from bench_pii import address_scores

    r = address_scores()
    print(f"addresses: recall {r['recall']:.3f}, precision {r['precision']:.3f} on {r['gold']} gold spans")
    assert r["gold"] > 1000 and r["recall"] >= 0.6 and r["precision"] >= 0.8


@pytest.mark.realdata
def test_domain_text_has_almost_no_addresses(realdata) -> None:
    import gzip

    with gzip.open(realdata / "domain_medical" / "medquad_qa.jsonl.gz", "rt", encoding="utf-8") as fh:
        answers = [json.loads(line)["answer"] for _, line in zip(range(3000), fh, strict=False)]
    hits = [t[a:b] for t in answers for a, b in find_addresses(t)]
    assert len(hits) <= 3, hits
