"""Toxicity: a score per sample from a classifier that ships its model through pip.

The classifier is `alt-profanity-check` (a linear SVM over TF-IDF, trained on labelled
toxic comments; its model is in the wheel, so nothing is downloaded). Where it is not
installed, a short word list stands in, and the run's config says which one scored.

A document is scored per segment (paragraphs, cut to about `segment_chars`), and its score is
the highest segment's: one abusive paragraph in a long page is what matters, and a long page
would otherwise dilute it. A conversation is scored over the turns in `turns` (by default the
assistant's: red-team prompts are offensive by design, and what a model learns to say is in
the replies).

Every score is recorded on the decision row and readable by predicates through the
`sample_scores` view, for example in a mix recipe:
`sample_id IN (SELECT sample_id FROM sample_scores WHERE step = 'toxicity' AND score < 0.5)`.
In `tag` mode a sample over its threshold is kept with the reason `toxic`, so a red-team set
can be curated, kept on purpose and selected (or left out) by its tag.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
from mixline.curation.base import Filter, StepParams, Verdicts

from mixline.errors import ConfigError

CLASSIFIERS = ("auto", "profanity_check", "wordlist")
MODES = ("drop", "tag")
TURNS = ("assistant", "user", "all")
# The fallback's words, matched as whole words with common inflections ("fucking", "shitty").
WORDS = ("fuck", "shit", "bitch", "cunt", "asshole", "bastard", "pussy", "whore", "slut", "motherfucker",
         "bullshit", "dumbass", "jackass", "wanker", "twat", "retard", "faggot", "nigger", "nigga", "kike",
         "tranny", "kill yourself", "kys")
_WORD_RE = re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in WORDS) + r")(?:s|es|ed|er|ers|ing|in|y|ty|head|heads)?(?![a-z])",
                      re.IGNORECASE)


@dataclass(frozen=True)
class ToxicityParams(StepParams):
    classifier: str = "auto"
    # "drop" removes samples over their threshold; "tag" keeps them, with reason `toxic`.
    mode: str = "drop"
    threshold: float = 0.9
    # Per kind, over the two above: {"conversation": "tag"} and {"web": 0.8}.
    modes: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    # Which turns of a conversation are scored.
    turns: str = "assistant"
    segment_chars: int = 1000
    # The languages the classifier was made for: a sample in any other (known) language is not
    # scored, gets the reason `unscored`, and is never dropped. Both classifiers are English.
    languages: tuple[str, ...] = ("en",)


@cache
def _profanity_model() -> Any:
    from profanity_check import predict_prob

    return predict_prob


def wordlist_score(text: str) -> float:
    """1 - 0.1 ** hits: one listed word scores 0.9 (C4 dropped a page for any word on its list), two 0.99."""
    return 1.0 - 0.1 ** len(_WORD_RE.findall(text))


def segments(text: str, size: int) -> list[str]:
    """Paragraphs of a text, each cut into pieces of at most about `size` characters."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n", text):
        para = para.strip()
        while len(para) > size:
            cut = para.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            out.append(para[:cut])
            para = para[cut:].strip()
        if para:
            out.append(para)
    return out or [""]


class Toxicity(Filter):
    """A toxicity score for every sample; drops over the threshold, or tags, per kind."""

    name = "toxicity"
    Params = ToxicityParams
    columns = ("messages", "lang")

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: ToxicityParams = self.params  # type: ignore[assignment]
        if p.classifier not in CLASSIFIERS:
            raise ConfigError(f"step toxicity: classifier = {p.classifier!r}; use one of {', '.join(CLASSIFIERS)}")
        if p.turns not in TURNS:
            raise ConfigError(f"step toxicity: turns = {p.turns!r}; use one of {', '.join(TURNS)}")
        for kind, mode in {"(all)": p.mode, **p.modes}.items():
            if mode not in MODES:
                raise ConfigError(f"step toxicity: mode for {kind} is {mode!r}; use one of {', '.join(MODES)}")
        for kind, t in {"(all)": p.threshold, **p.thresholds}.items():
            if not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
                raise ConfigError(f"step toxicity: threshold for {kind} is {t!r}; use a number from 0 to 1")
        installed = importlib.util.find_spec("profanity_check") is not None
        if p.classifier == "profanity_check" and not installed:
            raise ConfigError("step toxicity: classifier = 'profanity_check' needs the package alt-profanity-check; "
                              "pip install alt-profanity-check, or use classifier = 'wordlist'")
        self.scorer = "profanity_check" if p.classifier == "profanity_check" or (p.classifier == "auto" and installed) \
            else "wordlist"

    def config(self) -> dict[str, Any]:
        # The classifier that actually scored, so a run's config says what its scores mean.
        return {**super().config(), "classifier": self.scorer}

    def score(self, texts: list[str]) -> np.ndarray:
        """The highest segment score of each text."""
        p: ToxicityParams = self.params  # type: ignore[assignment]
        segs = [segments(t, p.segment_chars) for t in texts]
        flat = [s for ss in segs for s in ss]
        if self.scorer == "profanity_check":
            flat_scores = np.asarray(_profanity_model()(flat), dtype=np.float64) if flat else np.zeros(0)
        else:
            flat_scores = np.array([wordlist_score(s) for s in flat], dtype=np.float64)
        out = np.zeros(len(texts))
        pos = 0
        for i, ss in enumerate(segs):
            out[i] = float(flat_scores[pos:pos + len(ss)].max()) if ss else 0.0
            pos += len(ss)
        return out

    def scored_text(self, text: str, messages: str | None) -> str:
        """What is scored: the whole text, or a conversation's chosen turns, one per paragraph."""
        p: ToxicityParams = self.params  # type: ignore[assignment]
        if not messages:
            return text
        msgs = json.loads(messages)
        roles = {"assistant": ("assistant",), "user": ("user",), "all": ("user", "assistant", "system")}[p.turns]
        return "\n\n".join(str(m.get("content") or "") for m in msgs if m.get("role") in roles)

    def decide(self, batch: pa.Table) -> Verdicts:
        p: ToxicityParams = self.params  # type: ignore[assignment]
        texts = batch.column("text").to_pylist()
        msgs = batch.column("messages").to_pylist() if "messages" in batch.column_names else [None] * len(texts)
        kinds = batch.column("kind").to_pylist() if "kind" in batch.column_names else [None] * len(texts)
        langs = batch.column("lang").to_pylist() if "lang" in batch.column_names else [None] * len(texts)
        # No language known (no language step has run): scored, as before languages were recorded.
        fits = [lang is None or lang in p.languages for lang in langs]
        idx = [i for i, ok in enumerate(fits) if ok]
        scored = self.score([self.scored_text(texts[i], msgs[i]) for i in idx])
        scores = np.full(len(texts), np.nan)
        scores[idx] = scored
        keep = np.ones(len(texts), dtype=bool)
        reasons: list[str | None] = [None if ok else "unscored" for ok in fits]
        for i, s in zip(idx, scored.tolist(), strict=True):
            kind = kinds[i] or ""
            if s >= p.thresholds.get(kind, p.threshold):
                reasons[i] = "toxic"
                keep[i] = p.modes.get(kind, p.mode) == "tag"
        return Verdicts(keep, reasons, np.round(scores, 4))
