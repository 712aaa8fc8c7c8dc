"""The `pii` curation step: scrub detected PII into a new sample linked to its raw parent.

Policies per entity type (and stricter ones for conversations): a typed placeholder
(`<EMAIL>`), a consistent pseudonym from a keyed hash (`<PERSON_3fa2b1c9>`, the same
value always maps to the same pseudonym within a store, and cannot be reversed without
the key), or dropping the sample. Conversations are scrubbed message by message, keeping
roles. Redaction rows hold the entity type, detector and offsets in the scrubbed text,
never the value; keyed fingerprints of values let the memorisation check spot a value
that a model later reproduces.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from mixline.curation.base import Rewrite, Rewriter, Rewrites, StepParams
from mixline.curation.chat import render
from mixline.curation.pii.detectors import ENTITY_TYPES, Detector, Span
from mixline.store.ids import canonical_json

from mixline.errors import ConfigError

POLICIES = ("placeholder", "pseudonym", "drop", "keep")
KEY_NAME = "pii_pseudonym_key"


@dataclass(frozen=True)
class PiiParams(StepParams):
    entities: tuple[str, ...] = ENTITY_TYPES
    policy: str = "placeholder"
    policies: dict[str, str] = field(default_factory=lambda: {"PERSON": "pseudonym"})
    conversation_policies: dict[str, str] = field(default_factory=lambda: {"SECRET": "drop"})
    drop_conversation_on_secret: bool = True
    # Which detector finds person names and places: lexicon, spacy, both or none.
    names: str = "lexicon"
    # Users type their own and others' names into conversations, and models repeat them;
    # those kinds get names and places detected by default. Web and domain corpora are
    # full of public names and eponyms ("Parkinson's disease") that would be flagged by
    # the thousand, so they get the pattern detectors unless listed here.
    name_kinds: tuple[str, ...] = ("conversation", "synthetic")
    allow: tuple[str, ...] = ("example.com", "example.org", "example.net")


def store_key(store: Any) -> bytes:
    """The store's pseudonym key, created on first use. It never leaves the store."""
    # min(): if two writers of a DuckLake store ever both made one, every reader picks the same.
    row = store.execute("SELECT min(value) FROM store_secrets WHERE name = ?", [KEY_NAME]).fetchone()
    if row and row[0]:
        return bytes.fromhex(row[0])
    key = secrets.token_bytes(32)
    store.append_rows("store_secrets", [{"name": KEY_NAME, "value": key.hex()}])
    return key


class PiiScrub(Rewriter):
    """Detects PII and writes a scrubbed child sample (`scrubbed_from` its parent)."""

    name = "pii"
    version = 3
    Params = PiiParams
    relation = "scrubbed_from"
    columns = ("messages", "lang")

    def __init__(self, params: StepParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p: PiiParams = self.params  # type: ignore[assignment]
        for table in (p.policies, p.conversation_policies):
            for ent, pol in table.items():
                if ent not in ENTITY_TYPES or pol not in POLICIES:
                    raise ConfigError(f"step pii: policy {ent} = {pol!r}; entity must be one of {', '.join(ENTITY_TYPES)} "
                                      f"and policy one of {', '.join(POLICIES)}")
        if p.policy not in POLICIES:
            raise ConfigError(f"step pii: policy {p.policy!r} is not one of {', '.join(POLICIES)}")
        self.detector = Detector(p.entities, names=p.names, allow=p.allow)
        self.patterns_only = Detector(p.entities, names="none", allow=p.allow)
        self.key = b"\0" * 32
        self.fingerprints: list[tuple[str, str]] = []

    def prepare(self, ctx: Any) -> None:
        self.key = store_key(ctx.store)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["policies"] = dict(sorted(cfg["policies"].items()))
        cfg["conversation_policies"] = dict(sorted(cfg["conversation_policies"].items()))
        return cfg

    def fingerprint(self, value: str) -> str:
        return hmac.new(self.key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def _policy(self, entity: str, conversation: bool) -> str:
        p: PiiParams = self.params  # type: ignore[assignment]
        if conversation and entity in p.conversation_policies:
            return p.conversation_policies[entity]
        return p.policies.get(entity, p.policy)

    def _replace(self, text: str, spans: list[Span], conversation: bool) -> tuple[str, list[tuple[Span, str]], str | None]:
        """Scrubbed text, new spans (offsets in it) with their policy, or a drop reason."""
        out: list[str] = []
        new: list[tuple[Span, str]] = []
        pos = 0
        for s in spans:
            policy = self._policy(s.entity_type, conversation)
            value = text[s.start:s.end]
            self.fingerprints.append((self.fingerprint(value), s.entity_type))
            if policy == "drop":
                return text, [], f"pii_drop:{s.entity_type}"
            if policy == "keep":
                continue
            rep = f"<{s.entity_type}>" if policy == "placeholder" else f"<{s.entity_type}_{self.fingerprint(value)[:8]}>"
            out.append(text[pos:s.start])
            start = sum(map(len, out))
            out.append(rep)
            new.append((Span(start, start + len(rep), s.entity_type, s.detector), policy))
            pos = s.end
        out.append(text[pos:])
        return "".join(out), new, None

    def rewrite(self, batch: pa.Table) -> Rewrites:
        p: PiiParams = self.params  # type: ignore[assignment]
        texts = batch.column("text").to_pylist()
        kinds = batch.column("kind").to_pylist()
        messages = batch.column("messages").to_pylist() if "messages" in batch.column_names else [None] * len(texts)
        rows: list[Rewrite | str | None] = []
        docs = [i for i, m in enumerate(messages) if m is None]
        with_ner = [i for i in docs if kinds[i] in p.name_kinds]
        without = [i for i in docs if kinds[i] not in p.name_kinds]
        found: dict[int, list[Span]] = {}
        langs = batch.column("lang").to_pylist() if "lang" in batch.column_names else [None] * len(texts)
        for idx, det in ((with_ner, self.detector), (without, self.patterns_only)):
            for i, hits in zip(idx, det.detect([texts[i] for i in idx], [langs[i] for i in idx]), strict=True):
                found[i] = hits
        doc_iter = iter(found[i] for i in docs)
        for text, kind, msgs in zip(texts, kinds, messages, strict=True):
            conversation = kind == "conversation" or msgs is not None
            if msgs is None:
                scrubbed, changed, drop = self._replace(text, next(doc_iter), conversation)
                if drop:
                    rows.append(drop)
                elif changed:
                    rows.append(Rewrite(scrubbed, None, changed, _reason(changed)))
                else:
                    rows.append(None)
                continue
            rows.append(self._rewrite_conversation(json.loads(msgs), p.drop_conversation_on_secret))
        return Rewrites(rows)

    def _rewrite_conversation(self, msgs: list[dict[str, Any]], drop_on_secret: bool) -> Rewrite | str | None:
        found = self.detector.detect([m["content"] for m in msgs])
        if drop_on_secret and any(s.entity_type == "SECRET" for spans in found for s in spans):
            return "pii_drop:conversation_with_SECRET"
        new_msgs = []
        changed: list[tuple[Span, str]] = []
        for m, spans in zip(msgs, found, strict=True):
            content, new, drop = self._replace(m["content"], spans, True)
            if drop:
                return drop
            new_msgs.append({**m, "content": content})
            changed += new
        if not changed:
            return None

        text = render(new_msgs)
        # Offsets in the rendered text: find each placeholder in order.
        located: list[tuple[Span, str]] = []
        pos = 0
        for s, policy in changed:
            token = f"<{s.entity_type}"
            at = text.find(token, pos)
            end = text.find(">", at) + 1
            located.append((Span(at, end, s.entity_type, s.detector), policy))
            pos = end
        return Rewrite(text, canonical_json(new_msgs), located, _reason(located))


def _reason(spans: list[tuple[Span, str]]) -> str:
    counts = Counter(s.entity_type for s, _ in spans)
    return "pii:" + ",".join(f"{k}={v}" for k, v in sorted(counts.items()))


def read_scrubbed(store: Any, sample_id: str) -> dict[str, Any]:
    """The opt-in read of a withheld sample's text: scanned now, every PII span replaced by its type.

    For a sample no pii step has kept (a rule dropped it first, the pii step dropped it, or it is a
    raw parent), `mixline trace --scan-pii` calls this. It detects PII as the default recipe's pii
    step would (names too, for the kinds that step scans for names), shows every span as `<TYPE>`
    whatever that step's policy (a `drop` policy would show nothing), and records the read as a run
    of kind `read` naming the sample and what was found, never the values. Nothing else changes: no
    decision is written, so the sample's status and mixes stay as they were.
    """
    from mixline.curation.recipe import Recipe

    spec = next(s for s in Recipe.default().steps if s["type"] == "pii")
    params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k not in ("type", "kinds", "where")}
    params.update(policy="placeholder", policies={}, conversation_policies={}, drop_conversation_on_secret=False)
    step = PiiScrub(None, **params)
    row = store.execute("SELECT text, messages, kind FROM samples WHERE sample_id = ?", [sample_id]).fetchone()
    if row is None:
        raise ConfigError(f"sample {sample_id} is not in the store")
    text, messages, kind = row
    out = step.rewrite(pa.table({"text": [text], "kind": [kind], "messages": [messages]},
                                schema=pa.schema([("text", pa.string()), ("kind", pa.string()), ("messages", pa.string())])))
    found = out.rows[0]
    counts: Counter[str] = Counter()
    if isinstance(found, Rewrite):
        counts.update(s.entity_type for s, _ in found.spans)
        text, messages = found.text, found.messages
    config = {"sample_id": sample_id, "pii": step.config()}
    with store.run("read", "pii_read_v1", config) as run:
        run.stats.update({"sample_id": sample_id, "pii_found": dict(sorted(counts.items())),
                          "shown": "scrubbed" if counts else "raw (no PII found)"})
    return {"run_id": run.run_id, "text": text, "messages": messages, "pii_found": dict(sorted(counts.items()))}
