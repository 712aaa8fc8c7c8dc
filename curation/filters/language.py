"""Language identification with lingua, whose models ship inside its wheel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts

from mixline.errors import ConfigError


@dataclass(frozen=True)
class LanguageParams(StepParams):
    keep: tuple[str, ...] = ("en",)
    min_confidence: float = 0.5
    candidates: tuple[str, ...] = ("en", "de", "fr", "es", "it", "pt", "nl", "ru", "zh", "ja", "ko", "ar", "pl", "tr", "hi")
    max_chars: int = 2000


class LanguageId(Filter):
    """Keeps documents in the wanted languages; records each sample's language in `lang`."""

    name = "language"
    requires = ("lingua",)
    Params = LanguageParams

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        p: LanguageParams = self.params  # type: ignore[assignment]
        langs = []
        for code in {*p.candidates, *p.keep}:
            try:
                langs.append(Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())))
            except AttributeError as exc:
                raise ConfigError(f"step language: {code!r} is not an ISO 639-1 code lingua knows") from exc
        self._detector = LanguageDetectorBuilder.from_languages(*langs).build()

    def decide(self, batch: pa.Table) -> Verdicts:
        p: LanguageParams = self.params  # type: ignore[assignment]
        texts = [t[: p.max_chars] for t in batch.column("text").to_pylist()]
        results = self._detector.compute_language_confidence_values_in_parallel(texts)
        reasons: list[str | None] = []
        langs: list[str | None] = []
        scores = []
        for conf in results:
            best = conf[0] if conf else None
            code = best.language.iso_code_639_1.name.lower() if best else None
            value = best.value if best else 0.0
            langs.append(code if value >= p.min_confidence else None)
            scores.append(value)
            if code not in p.keep:
                reasons.append(f"lang_{code or 'unknown'}")
            elif value < p.min_confidence:
                reasons.append("low_confidence")
            else:
                reasons.append(None)
        import numpy as np

        return Verdicts.from_reasons(reasons, np.array(scores), {"lang": langs})
