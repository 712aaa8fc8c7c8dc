"""PII detection side by side with Presidio on the same texts, with one type mapping.

Span-level precision, recall and F1 per entity type (a span counts when its boundaries
and type match the gold span exactly), on Presidio's generated sets, WNUT-17 dev (person
and location in real social-media text), and the detect-secrets baseline. Then street
addresses on Presidio's generated sets (span level: a gold address is found when half of its
characters are redacted), and PHONE on the labelled set of real domain text (phone_set.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RUNS, WORK, best_of, best_peer, machine, realdata, table  # noqa: E402

OURS_TO_GOLD = {"EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "CREDIT_CARD": "CREDIT_CARD", "IBAN": "IBAN_CODE",
                "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "PERSON": "PERSON", "LOCATION": "LOCATION"}
PRESIDIO_TO_GOLD = {"EMAIL_ADDRESS": "EMAIL_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER", "CREDIT_CARD": "CREDIT_CARD",
                    "IBAN_CODE": "IBAN_CODE", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "PERSON": "PERSON",
                    "LOCATION": "LOCATION"}
TYPES = sorted(set(OURS_TO_GOLD.values()))


def presidio_sets() -> tuple[list[str], list[set[tuple[int, int, str]]]]:
    texts, gold = [], []
    for name in ("presidio_generated_small.json", "presidio_generated_large.json"):
        for r in json.loads((realdata() / "pii" / name).read_text()):
            texts.append(r["full_text"])
            gold.append({(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"] if s["entity_type"] in TYPES})
    return texts, gold


def wnut() -> tuple[list[str], list[set[tuple[int, int, str]]]]:
    texts, gold = [], []
    words: list[tuple[str, str]] = []
    lines = (realdata() / "pii/wnut17/emerging.dev.conll").read_text(encoding="utf-8").splitlines() + [""]
    for line in lines:
        if line.strip():
            tok, tag = line.split("\t")[:2]
            words.append((tok, tag))
            continue
        if not words:
            continue
        text, spans, pos, cur = "", set(), 0, None
        for tok, tag in words:
            start = len(text) + (1 if text else 0)
            text = (text + " " + tok) if text else tok
            kind = {"person": "PERSON", "location": "LOCATION"}.get(tag[2:]) if tag != "O" else None
            if tag.startswith("B-") and kind:
                if cur:
                    spans.add(cur)
                cur = (start, len(text), kind)
            elif tag.startswith("I-") and kind and cur:
                cur = (cur[0], len(text), cur[2])
            else:
                if cur:
                    spans.add(cur)
                cur = None
        if cur:
            spans.add(cur)
        texts.append(text)
        gold.append(spans)
        words = []
        del pos
    return texts, gold


def score(gold: list[set], pred: list[set], types: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for t in [*types, "ALL"]:
        tp = fp = fn = 0
        for g, p in zip(gold, pred, strict=True):
            gt = {x for x in g if t in ("ALL", x[2])}
            pt = {x for x in p if t in ("ALL", x[2]) and x[2] in types}
            tp += len(gt & pt)
            fp += len(pt - gt)
            fn += len(gt - pt)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        out[t] = {"p": prec, "r": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0, "n": tp + fn}
    return out


def ours(texts: list[str], names: str) -> tuple[float, list[set]]:
    from mixline.curation.pii.detectors import Detector

    det = Detector(names=names)
    det.detect(["warm up John at john@x.io"])
    dt, found = best_of(lambda: det.detect(texts))
    return dt, [{(s.start, s.end, OURS_TO_GOLD[s.entity_type]) for s in spans if s.entity_type in OURS_TO_GOLD} for spans in found]


def presidio(texts: list[str]) -> tuple[float, list[set]]:
    path = WORK / "pii_texts.json"
    path.write_text(json.dumps(texts))
    res = best_peer("presidio_scan.py", str(path), env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(WORK)})
    return res["seconds"], [{(s["start"], s["end"], PRESIDIO_TO_GOLD[s["entity_type"]]) for s in spans if s["entity_type"] in PRESIDIO_TO_GOLD}
                            for spans in res["spans"]]


def secrets_recall() -> float:
    from mixline.curation.pii.evaluate import secrets_recall as recall

    return recall(realdata() / "pii/detect_secrets_test_data")[1]


def address_scores() -> dict[str, float]:
    """Recall over gold ADDRESS spans of Presidio's generated sets (found when half of its
    characters are redacted, by an address or a place span) and precision of address spans
    (right when they overlap a labelled address or place)."""
    from mixline.curation.pii.detectors import Detector

    docs = []
    for name in ("presidio_generated_small.json", "presidio_generated_large.json"):
        docs += json.loads((realdata() / "pii" / name).read_text())
    found = Detector(entities=("STREET_ADDRESS", "LOCATION")).detect([d["full_text"] for d in docs])
    hit = gold_n = tp = pred_n = 0
    for doc, spans in zip(docs, found, strict=True):
        gold = [(g["start_position"], g["end_position"]) for g in doc["spans"] if g["entity_type"] == "ADDRESS"]
        cover = [(s.start, s.end) for s in spans]
        for a, b in gold:
            gold_n += 1
            hit += sum(max(0, min(b, y) - max(a, x)) for x, y in cover) * 2 >= b - a
        labelled = [(g["start_position"], g["end_position"]) for g in doc["spans"] if g["entity_type"] in ("ADDRESS", "LOCATION")]
        for s in spans:
            if s.entity_type == "STREET_ADDRESS":
                pred_n += 1
                tp += any(min(s.end, b) > max(s.start, a) for a, b in labelled)
    return {"gold": gold_n, "recall": hit / gold_n, "predicted": pred_n, "precision": tp / pred_n}


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    speed = []
    for label, (texts, gold) in (("Presidio generated (small+large)", presidio_sets()), ("WNUT-17 dev", wnut())):
        types = TYPES if label.startswith("Presidio") else ["PERSON", "LOCATION"]
        t_lex, p_lex = ours(texts, "lexicon")
        t_both, p_both = ours(texts, "both")
        t_pr, p_pr = presidio(texts)
        s_lex, s_both, s_pr = score(gold, p_lex, types), score(gold, p_both, types), score(gold, p_pr, types)
        for t in [*types, "ALL"]:
            if s_pr[t]["n"] == 0:
                continue
            rows.append({"data": label, "type": t, "gold spans": s_pr[t]["n"], "mixline F1": round(s_lex[t]["f1"], 3),
                         "mixline + spaCy F1": round(s_both[t]["f1"], 3), "Presidio F1": round(s_pr[t]["f1"], 3),
                         "F1 gain": f"{s_lex[t]['f1'] - s_pr[t]['f1']:+.3f}",
                         "mixline P/R": f"{s_lex[t]['p']:.2f}/{s_lex[t]['r']:.2f}", "Presidio P/R": f"{s_pr[t]['p']:.2f}/{s_pr[t]['r']:.2f}"})
        n = len(texts)
        speed.append({"data": label, "docs": n, "mixline docs/s": round(n / t_lex), "mixline + spaCy docs/s": round(n / t_both),
                      "Presidio docs/s": round(n / t_pr), "speed-up": round(t_pr / t_lex, 1), "speed-up (+ spaCy)": round(t_pr / t_both, 1)})
    print(f"## PII detection ({machine()})\n")
    print("Span-level scores (exact boundaries and type), one type mapping for both tools. mixline is its default "
          "detector set (patterns, and names and places from lexicons); mixline + spaCy adds the NER model's spans.\n")
    print(table(rows))
    print(f"\nThroughput on one process (OMP_NUM_THREADS=1 for Presidio), each tool's best of {RUNS} runs:\n")
    print(table(speed))
    print(f"\nSecrets recall on the detect-secrets baseline (hash match, or the line within one): {secrets_recall():.3f} (target >= 0.9)")
    addr = address_scores()
    print(f"\nStreet addresses on Presidio's generated sets: {addr['gold']} gold spans, recall {addr['recall']:.3f}, "
          f"{addr['predicted']} address spans, precision {addr['precision']:.3f} (targets 0.6 and 0.8)")
    from phone_set import score as phone_score

    print("\nPHONE on the labelled set (tests/fixtures/phone_labels.json):\n")
    print(table(phone_score(realdata())))


if __name__ == "__main__":
    main()
