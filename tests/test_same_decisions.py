"""The default recipe decides exactly as the commit that wrote the golden digests: every
decision, drop reason, score, language, scrubbed text and dedup cluster on a fixed mixed real
corpus (tests/decisions_corpus.py). Speed work must leave them equal; a deliberate change
bumps the step's version and rewrites the digests."""

from __future__ import annotations

import json
from pathlib import Path

from decisions_corpus import DIGESTS, compute


def test_default_recipe_decides_as_the_golden_commit(realdata: Path, tmp_path: Path) -> None:
    want = json.loads(DIGESTS.read_text())
    got = compute(realdata, tmp_path)
    assert got["counts"] == want["counts"], "a step decided on a different number of samples"
    changed = [step for step, h in want["decisions"].items() if got["decisions"].get(step) != h]
    assert not changed, (f"decisions differ from {want['written_by']} in {changed}; if deliberate, bump the step's "
                         "version and run tests/decisions_corpus.py --write")
    for part in ("languages", "scrubbed", "clusters"):
        assert got[part] == want[part], f"{part} differ from {want['written_by']}"
