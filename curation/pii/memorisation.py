"""Flags generated samples that reproduce user conversations or PII seen in the raw store.

A synthetic sample (synth_depth > 0) is dropped, with the reason recorded, when it contains
a verbatim span of at least `min_chars` characters (50 by default) of any conversation
sample, or a value whose keyed fingerprint matches PII detected earlier by the `pii` step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts
from mixline.curation.pii.detectors import Detector
from mixline.curation.pii.scrub import PiiScrub


@dataclass(frozen=True)
class MemorisationParams(StepParams):
    min_chars: int = 50
    source_where: str = "kind = 'conversation'"
    check_pii: bool = True


class Memorisation(Filter):
    """Verbatim conversation spans and known PII values in generated text."""

    name = "memorisation"
    version = 3
    Params = MemorisationParams
    columns = ("synth_depth",)

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._grams: dict[int, str] = {}
        self._prints: dict[str, str] = {}
        self._scrub: PiiScrub | None = None

    def prepare(self, ctx: Any) -> None:
        from mixline.store.select import validate_where

        p: MemorisationParams = self.params  # type: ignore[assignment]
        where = validate_where(ctx.store, p.source_where)
        rows = ctx.store.execute(f"SELECT sample_id, text FROM samples s WHERE {where} AND synth_depth = 0").fetchall()
        self.index([(sid, text) for sid, text in rows])
        if p.check_pii:
            self._prints = dict(ctx.store.execute("SELECT fingerprint, any_value(entity_type) FROM pii_fingerprints GROUP BY 1").fetchall())
            self._scrub = PiiScrub(names="none")
            self._scrub.prepare(ctx)
            self._detector = Detector()

    def index(self, docs: list[tuple[str, str]]) -> None:
        """Every window of min_chars characters (whitespace-normalised) of the source docs."""
        n = self.params.min_chars  # type: ignore[attr-defined]
        for sid, text in docs:
            t = " ".join(text.split())
            for i in range(0, max(0, len(t) - n + 1)):
                self._grams.setdefault(hash(t[i : i + n]), sid)

    def decide(self, batch: pa.Table) -> Verdicts:
        n = self.params.min_chars  # type: ignore[attr-defined]
        texts = batch.column("text").to_pylist()
        depths = batch.column("synth_depth").to_pylist()
        reasons: list[str | None] = [None] * len(texts)
        synth = [i for i, d in enumerate(depths) if d and d > 0]
        for i in synth:
            t = " ".join(texts[i].split())
            for j in range(0, max(0, len(t) - n + 1)):
                hit = self._grams.get(hash(t[j : j + n]))
                if hit is not None:
                    reasons[i] = f"memorised_span:{hit}"
                    break
        if self._prints and self._scrub is not None and synth:
            found = self._detector.detect([texts[i] for i in synth])
            for i, spans in zip(synth, found, strict=True):
                if reasons[i] is None:
                    for s in spans:
                        ent = self._prints.get(self._scrub.fingerprint(texts[i][s.start:s.end]))
                        if ent is not None:
                            reasons[i] = f"memorised_pii:{ent}"
                            break
        return Verdicts.from_reasons(reasons)
