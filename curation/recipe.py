"""Curation recipes: a TOML or YAML file that lists steps and their parameters."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixline.curation.base import Filter, GlobalStep, Rewriter, Step
from mixline.curation.decontam.ngram import Decontaminate
from mixline.curation.decontam.urls import BannedUrls
from mixline.curation.dedup.exact import ExactDedup
from mixline.curation.dedup.minhash import MinHashDedup
from mixline.curation.dedup.semantic import SemanticDedup
from mixline.curation.filters.classifier import ClassifierFilter
from mixline.curation.filters.code import CodeQuality
from mixline.curation.filters.conversation import ConversationQuality
from mixline.curation.filters.domain import DomainQuality
from mixline.curation.filters.gopher import GopherQuality, GopherRepetition
from mixline.curation.filters.language import LanguageId
from mixline.curation.filters.rules import Boilerplate, C4Quality, FineWebQuality, Length
from mixline.curation.filters.synthetic import SyntheticQuality
from mixline.curation.filters.toxicity import Toxicity
from mixline.curation.pii.memorisation import Memorisation
from mixline.curation.pii.scrub import PiiScrub
from mixline.store.recipes import read_table_file

from mixline.errors import ConfigError

STEP_TYPES: dict[str, type[Step]] = {
    cls.name: cls
    for cls in (Length, GopherQuality, GopherRepetition, C4Quality, FineWebQuality, Boilerplate,
                LanguageId, DomainQuality, CodeQuality, ConversationQuality, SyntheticQuality, Toxicity, Decontaminate, BannedUrls, PiiScrub, Memorisation, ExactDedup, MinHashDedup, SemanticDedup,
                ClassifierFilter)
}
KINDS = ("web", "domain", "conversation", "synthetic", "eval")
KEEP_RULES = ("human", "older", "longer", "shorter", "newer", "source_order")

DEFAULT_RECIPE_TEMPLATE = """\
# mixline's default curation recipe: one profile of rules per kind of data.
# A step with `kinds = [...]` or `where = "PREDICATE"` applies only to those samples; the
# others get no decision from it (`mixline why` lists which steps applied).
# Filters run first, in order; then dedup steps.
name = "default"
# Which copy of a duplicate cluster is kept, in order of precedence.
keep = ["human", "older", "longer"]
# source_order = ["medquad", "common-crawl"]   # used when keep includes "source_order"

# -- every kind ---------------------------------------------------------------------------
[[steps]]
type = "decontaminate"      # first, so `why` names contamination even in text a rule would drop
n = 13                      # against every sample ingested with --kind eval

[[steps]]
type = "length"
min_chars = 20

# -- every kind: a language, script and confidence for every sample (nothing is dropped) --
[[steps]]
type = "language"           # records lang (ISO 639-1/3, `und`, `zxx` for code), script, lang_score, lang_mix
# keep = ["en", "de"]       # keep only these languages

# -- web: Gopher and FineWeb rules per language, as FineWeb-2 applies them to web crawl ----
# English gets the rules as datatrove has them. Other languages get their own stop words and
# bounds, derived from reference text (`python -m mixline.curation.lang.derive`); a language
# with no profile gets only the rules that do not depend on language. Change a value here.
[[steps]]
type = "gopher_quality"
kinds = ["web"]
min_doc_words = 50
{gopher_languages}
[[steps]]
type = "gopher_repetition"
kinds = ["web"]

[[steps]]
type = "fineweb_quality"    # punctuated lines, short lines, list-like pages (word lists, menus, fragments)
kinds = ["web"]
{fineweb_languages}
# -- domain (medical, legal, math, code): numbers, units, citations and formulas allowed --
[[steps]]
type = "domain_quality"
kinds = ["domain"]
# Thresholds per `domain` (set at ingest with --domain) override the ones above.
[steps.domains.legal]       # statutes and contracts repeat clause headings and "(a)" lines
max_dup_line_frac = 0.7
[steps.domains.math]        # "48 / 2 = 24": operators are whitespace words of their own
min_content_word_ratio = 0.4
[steps.domains.code]        # braces, operators and long literals; code_quality does the rest
min_content_word_ratio = 0.25
max_word_chars = 400

[[steps]]
type = "code_quality"
where = "domain = 'code'"

# -- conversations: rules per turn -----------------------------------------------------
[[steps]]
type = "conversation_quality"
kinds = ["conversation"]

# -- synthetic: degeneration, boilerplate, copies of the prompt, and the imitated kind's rules
[[steps]]
type = "synthetic_quality"
kinds = ["synthetic"]

# -- every kind --------------------------------------------------------------------------
[[steps]]
type = "pii"                # scrub into new samples; raw parents never reach a mix
policy = "placeholder"      # or "pseudonym" / "drop", per entity type below
policies = { PERSON = "pseudonym" }
conversation_policies = { SECRET = "drop" }
names = "lexicon"           # person names and places: "lexicon" (fast), "spacy", "both", "none"
name_kinds = ["conversation", "synthetic"]   # kinds whose names and places are scrubbed

[[steps]]
type = "toxicity"           # after pii, so the scrubbed sample that reaches a mix carries the score
mode = "tag"                # kept with reason `toxic`; select on it with the sample_scores view
modes = { web = "drop", synthetic = "drop" }
languages = ["en"]          # the model is English: other languages are tagged `unscored`, never dropped
threshold = 0.9
thresholds = { conversation = 0.8, domain = 0.95 }   # anatomy and case law score high without being abuse

[[steps]]
type = "exact_dedup"

[[steps]]
type = "minhash_dedup"
shingle_size = 5
num_perm = 112
bands = 14
rows = 8
"""


def _toml(v: Any) -> str:
    if v is None:
        raise ValueError("no null in TOML")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


def language_tables(keys: tuple[str, ...]) -> str:
    """The built-in per-language values as `[steps.languages]` TOML, one line per language.
    TOML has no null: a rule that is off for a language is listed in its `off`."""
    from mixline.curation.lang.rules import builtin

    lines = ["[steps.languages]"]
    for lang, v in sorted(builtin(keys).items()):
        items = [f"{k} = {_toml(v[k])}" for k in keys if k in v and v[k] is not None]
        off = [k for k in keys if k in v and v[k] is None]
        if off:
            items.append(f"off = {_toml(off)}")
        lines.append(f"{lang} = {{ {', '.join(items)} }}")
    return "\n".join(lines) + "\n"


def _default_recipe() -> str:
    from mixline.curation.lang.rules import FINEWEB_KEYS, GOPHER_KEYS

    return (DEFAULT_RECIPE_TEMPLATE.replace("{gopher_languages}", language_tables(GOPHER_KEYS))
            .replace("{fineweb_languages}", language_tables(FINEWEB_KEYS)))


DEFAULT_RECIPE = _default_recipe()


@dataclass
class Recipe:
    name: str
    steps: list[dict[str, Any]]
    keep: tuple[str, ...] = ("human", "older", "longer")
    source_order: tuple[str, ...] = ()
    batch_size: int = 5000
    origin: str = "built-in default"
    _built: list[Step] = field(default_factory=list, repr=False)

    @classmethod
    def default(cls) -> Recipe:
        return cls.parse(tomllib.loads(DEFAULT_RECIPE), "built-in default")

    @classmethod
    def from_file(cls, path: str | Path) -> Recipe:
        return cls.parse(read_table_file(path, "recipe"), str(path))

    @classmethod
    def parse(cls, data: Any, origin: str) -> Recipe:
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
            raise ConfigError(f"recipe {origin}: needs a non-empty `steps` list ([[steps]] tables in TOML)")
        keep = tuple(data.get("keep", cls.keep))
        for k in keep:
            if k not in KEEP_RULES:
                raise ConfigError(f"recipe {origin}: keep rule {k!r} is not one of {', '.join(KEEP_RULES)}")
        steps = []
        for i, s in enumerate(data["steps"]):
            if not isinstance(s, dict) or s.get("type") not in STEP_TYPES:
                raise ConfigError(f"recipe {origin}: steps[{i}] needs `type`, one of {', '.join(sorted(STEP_TYPES))}")
            steps.append(dict(s))
        return cls(str(data.get("name", Path(origin).stem)), steps, keep, tuple(data.get("source_order", ())),
                   int(data.get("batch_size", 5000)), origin)

    def build(self) -> list[Step]:
        """Step objects, with every parameter checked; filters must come before global steps."""
        if self._built:
            return self._built
        built: list[Step] = []
        seen_global = False
        for i, spec in enumerate(self.steps):
            params: dict[str, Any] = {k: (tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v)
                                      for k, v in spec.items() if k not in ("type", "kinds", "where")}
            kinds, where = spec.get("kinds"), spec.get("where")
            if kinds is not None and (not isinstance(kinds, list) or not all(k in KINDS for k in kinds) or not kinds):
                raise ConfigError(f"recipe {self.origin}: steps[{i}] ({spec['type']}): `kinds` must be a non-empty list "
                                  f"of {', '.join(KINDS)}; got {kinds!r}")
            if where is not None and not isinstance(where, str):
                raise ConfigError(f"recipe {self.origin}: steps[{i}] ({spec['type']}): `where` must be a predicate string")
            cls: Any = STEP_TYPES[spec["type"]]
            # A type may build a different class for some parameters (classifier with keep_top).
            cls = getattr(cls, "variant", lambda _p, c=cls: c)(params)
            try:
                step = cls(None, **params).scoped(tuple(kinds) if kinds else None, where)
            except ConfigError as exc:
                raise ConfigError(f"recipe {self.origin}: steps[{i}]: {exc}") from exc
            if isinstance(step, GlobalStep):
                seen_global = True
            elif isinstance(step, Filter | Rewriter) and seen_global:
                raise ConfigError(f"recipe {self.origin}: steps[{i}] ({step.name}) is a filter after a dedup step; "
                                  "list filters first, dedup steps last")
            built.append(step)
        self._built = built
        return built

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "keep": list(self.keep), "source_order": list(self.source_order),
                "steps": [s.config() for s in self.build()]}

    def order_sql(self) -> str:
        """ORDER BY clause ranking samples for keep decisions (first is preferred)."""
        parts = []
        for rule in self.keep:
            if rule == "human":
                parts.append("s.synth_depth ASC")
            elif rule == "older":
                parts.append("r.started_at ASC NULLS LAST")
            elif rule == "newer":
                parts.append("r.started_at DESC NULLS LAST")
            elif rule == "longer":
                parts.append("s.n_chars DESC")
            elif rule == "shorter":
                parts.append("s.n_chars ASC")
            elif rule == "source_order" and self.source_order:
                cases = " ".join(f"WHEN '{src.replace(chr(39), chr(39) * 2)}' THEN {i}" for i, src in enumerate(self.source_order))
                parts.append(f"CASE s.source {cases} ELSE {len(self.source_order)} END ASC")
        parts.append("s.sample_id ASC")
        return ", ".join(parts)
