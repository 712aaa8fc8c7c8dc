"""Scoring the secret detectors against a detect-secrets baseline file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mixline.curation.pii.detectors import Detector


def secrets_recall(root: Path) -> tuple[float, float]:
    """Recall on `root/baseline.file`: (exact, within one line).

    A secret counts as found when a detected span hashes to the baseline's
    `hashed_secret` (SHA-1 of the value), or starts on its line; the second figure
    also accepts the line before or after, since some baseline entries are off by one.
    """
    base = json.loads((root / "baseline.file").read_text())
    det = Detector(entities=("SECRET", "URL_CREDENTIALS"), names="none")
    exact = near = total = 0
    for name, items in base["results"].items():
        text = (root / name).read_text(errors="replace")
        spans = det.detect([text])[0]
        hashes = {hashlib.sha1(text[s.start:s.end].encode()).hexdigest() for s in spans}
        lines = {text.count("\n", 0, s.start) + 1 for s in spans}
        for it in items:
            total += 1
            line = it["line_number"]
            exact += it["hashed_secret"] in hashes or line in lines
            near += it["hashed_secret"] in hashes or bool(lines & {line - 1, line, line + 1})
    return exact / total, near / total
