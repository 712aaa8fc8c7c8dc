"""The `language` step: a language, script and confidence for every sample (see `mixline.curation.lang`).

By default it drops nothing: it annotates `samples.lang` (ISO 639-1, or 639-3; `und` when unknown,
`zxx` for code), `samples.script` (ISO 15924), `samples.lang_score` and `samples.lang_mix` (other
languages' share of characters in a mixed document, and `zxx` for code in prose), and the steps
after it in the same run read the language (Gopher and FineWeb rules per language, toxicity
only where its model fits, phone numbers in the language's national formats). Set `keep` to
keep only some languages (dropped ones get the reason `lang_XX`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts

from mixline.errors import ConfigError


@dataclass(frozen=True)
class LanguageParams(StepParams):
    keep: tuple[str, ...] = ()  # empty: every language is kept (the step annotates)
    min_confidence: float = 0.0  # with `keep`: below it, dropped as low_confidence
    max_chars: int = 1000  # the head of the text that is identified
    min_letters: int = 10  # fewer letters than this: `und`
    detect_code: bool = True  # mostly source code: `zxx`
    min_share: float = 0.1  # another language's share of a mixed document that is recorded


class LanguageId(Filter):
    """Identifies every sample's language and script; keeps the `keep` languages when given."""

    name = "language"
    version = 2
    requires = ("lingua",)
    Params = LanguageParams

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        from mixline.curation.lang.identify import Identifier

        p: LanguageParams = self.params  # type: ignore[assignment]
        for code in p.keep:
            if not (isinstance(code, str) and code.isalpha() and code.islower() and 2 <= len(code) <= 3):
                raise ConfigError(f"step language: keep = {code!r}; use ISO 639-1 codes such as 'en' or 'de' (or 639-3, 'und')")
        if not 0 <= p.min_confidence <= 1:
            raise ConfigError(f"step language: min_confidence = {p.min_confidence}; give a value in [0, 1]")
        self.identifier = Identifier(max_chars=p.max_chars, min_letters=p.min_letters, detect_code=p.detect_code,
                                     min_share=p.min_share)

    def decide(self, batch: pa.Table) -> Verdicts:
        p: LanguageParams = self.params  # type: ignore[assignment]
        found = self.identifier.identify(batch.column("text").to_pylist())
        reasons: list[str | None] = []
        for r in found:
            if p.keep and r.lang not in p.keep:
                reasons.append(f"lang_{r.lang}")
            elif p.keep and r.score < p.min_confidence:
                reasons.append("low_confidence")
            else:
                reasons.append(None)
        return Verdicts.from_reasons(reasons, np.array([r.score for r in found], dtype=np.float64), {
            "lang": [r.lang for r in found], "script": [r.script for r in found],
            "lang_score": [r.score for r in found],
            "lang_mix": [json.dumps(r.mix, sort_keys=True) if r.mix else None for r in found]})
