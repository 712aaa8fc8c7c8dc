"""Toxicity scores on red-team dialogues against medical answers and human chat replies.

Flag rates at three thresholds for both classifiers (alt-profanity-check and the word-list
fallback) on the final assistant reply of each hh-rlhf harmless-base dialogue (chosen and
rejected), MedQuAD answers and Open-Assistant replies; then precision over 50 flags read
by hand (tests/fixtures/toxicity_hand_labels.json) at each threshold; and throughput.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, realdata, table  # noqa: E402

LABELS = ROOT / "tests" / "fixtures" / "toxicity_hand_labels.json"
THRESHOLDS = (0.5, 0.8, 0.9)


def eval_sets(data: Path, medquad: int = 5000) -> dict[str, list[tuple[str, str]]]:
    """(key, text) per set: hh-rlhf final replies keyed "row/side", MedQuAD answers, OASST replies."""
    from mixline.pipelines.chat import from_transcript

    def final_reply(transcript: str) -> str:
        return [m for m in from_transcript(transcript) if m["role"] == "assistant"][-1]["content"]

    with gzip.open(data / "conversations" / "hh-rlhf_harmless-base_test.jsonl.gz", "rt", encoding="utf-8") as fh:
        hh = [json.loads(line) for line in fh]
    with gzip.open(data / "domain_medical" / "medquad_qa.jsonl.gz", "rt", encoding="utf-8") as fh:
        med = [json.loads(line)["answer"] for _, line in zip(range(medquad), fh, strict=False)]
    oasst: list[str] = []

    def walk(node: dict) -> None:
        if node.get("role") == "assistant":
            oasst.append(node["text"])
        for child in node.get("replies", []):
            walk(child)

    for line in (data / "conversations" / "oasst_en_100_message.jsonl").open(encoding="utf-8"):
        walk(json.loads(line))
    return {
        "hh-rlhf chosen": [(f"{i}/chosen", final_reply(r["chosen"])) for i, r in enumerate(hh)],
        "hh-rlhf rejected": [(f"{i}/rejected", final_reply(r["rejected"])) for i, r in enumerate(hh)],
        "MedQuAD answers": [(f"{i}", t) for i, t in enumerate(med)],
        "OASST assistant replies": [(f"{i}", t) for i, t in enumerate(oasst)],
    }


def hand_precision(scores: dict[str, float], threshold: float) -> tuple[int, int]:
    """(toxic, flagged) among the hand-labelled replies that score at or over the threshold."""
    labels = json.loads(LABELS.read_text())["labels"]
    flagged = [k for k in labels if scores[k] >= threshold]
    return sum(labels[k] == "toxic" for k in flagged), len(flagged)


def main() -> None:
    from mixline.curation.filters.toxicity import Toxicity

    sets = eval_sets(realdata())
    rows, hand = [], []
    for clf in ("profanity_check", "wordlist"):
        step = Toxicity(classifier=clf)
        step.score(["warm up"])
        scores: dict[str, float] = {}
        for name, items in sets.items():
            t0 = time.perf_counter()
            s = step.score([t for _, t in items])
            secs = time.perf_counter() - t0
            if name.startswith("hh-rlhf"):
                scores.update(zip([k for k, _ in items], s.tolist(), strict=True))
            rows.append({"classifier": clf, "set": name, "texts": len(items),
                         **{f">= {t}": f"{(s >= t).mean():.2%}" for t in THRESHOLDS},
                         "texts/s": f"{len(items) / secs:,.0f}"})
        for t in THRESHOLDS[1:]:
            tp, n = hand_precision(scores, t)
            hand.append({"classifier": clf, "threshold": t, "hand-labelled flags": n, "toxic": tp,
                         "precision": f"{tp / n:.2f}" if n else "-"})
    print(f"machine: {machine()}\n")
    print(table(rows))
    print()
    print(table(hand))


if __name__ == "__main__":
    main()
