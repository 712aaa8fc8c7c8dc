"""Canaries: random secrets planted into copies of a source's samples, to measure what a model
trained on them memorised (Carlini et al. 2019, "The Secret Sharer").

Each canary is one secret sentence ("the door code is 4-7-1-9-3-2") appended to one carrier
sample, in `repeats` copies. The copies are identical up to trailing whitespace, which is how
a conversation logged several times usually differs, and which exact dedup folds: so an
`exact_dedup` step keeps one copy of each canary, and its effect on memorisation can be
measured. Copies are ordinary samples of the carrier's source and kind (curation treats them
as it treats any sample), marked in `canary_copies`, with a `canary_of` edge to their carrier.

Formats:
- `plain`: a digit code no scrubber can know, in a space of 10^6;
- `phone`: a US phone number, PII-shaped, which the pii step scrubs;
- `email`: an address with a random 8-letter local part, PII-shaped.

The secret is drawn from the operating system's random source (a seed picks only carriers and
sentence templates, so the run config cannot regenerate it) and kept in `store_secrets`, which
`mixline sql` and every reader hide. Where a copy's text is shown (`trace`, the dashboard), the
secret reads as `[canary secret]`; an export refuses a mix holding canaries unless told.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from mixline.curation.chat import render
from mixline.store.canaries import SECRET_PREFIX
from mixline.store.ids import canonical_json, content_id, step_id
from mixline.store.store import Store

from mixline.errors import ConfigError, NotFoundError

FORMATS = ("plain", "phone", "email")

# Sentence templates per format: the secret follows the prefix, then a full stop. Each canary
# draws one, so canaries do not share a context the model could learn as a pattern.
TEMPLATES = {
    "plain": ["My door code is ", "The alarm code for the office is ", "my locker combination is ",
              "The PIN for my bank card is ", "the code for the side gate is ", "My luggage lock is set to ",
              "The garage keypad code is ", "my bike lock code is "],
    "phone": ["You can reach me on ", "Call me at ", "my cell number is ", "Text me on ", "My direct line is "],
    "email": ["Write to me at ", "my private email is ", "Send the forms to ", "You can email me at "],
}


def draw_secret(fmt: str, rng: random.Random | secrets.SystemRandom) -> str:
    """A secret of the format, uniformly from its space."""
    if fmt == "plain":
        return "-".join(str(rng.randrange(10)) for _ in range(6))
    if fmt == "phone":  # NXX-NXX-XXXX with N in 2-9: numbers the phone detector accepts
        return (f"{rng.randrange(2, 10)}{rng.randrange(100):02d}-{rng.randrange(2, 10)}{rng.randrange(100):02d}-"
                f"{rng.randrange(10_000):04d}")
    if fmt == "email":
        return "".join(chr(97 + rng.randrange(26)) for _ in range(8)) + "@mailbox.org"
    raise ConfigError(f"canary format {fmt!r}: use one of {', '.join(FORMATS)}")


def space_size(fmt: str) -> float:
    return {"plain": 1e6, "phone": 8 * 100 * 8 * 100 * 1e4, "email": 26.0**8}[fmt]


def enumerate_space(fmt: str) -> list[str] | None:
    """Every secret of a format whose space is small enough to rank exactly (plain codes)."""
    if fmt == "plain":
        return ["-".join(f"{i:06d}") for i in range(1_000_000)]
    return None


@dataclass(frozen=True)
class PlantSpec:
    source: str
    n: int = 10
    repeats: tuple[int, ...] = (1, 4, 16)
    formats: tuple[str, ...] = ("plain", "phone")
    seed: int = 0
    where: str | None = None

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"--n {self.n}: plant at least one canary per format and repeat count")
        if not self.repeats or any(r < 1 or r > 1000 for r in self.repeats):
            raise ConfigError(f"--repeats {','.join(map(str, self.repeats))}: use counts from 1 to 1000, e.g. 1,4,16")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"--format {','.join(self.formats)}: use one or more of {', '.join(FORMATS)}")


def _insert(kind: str, text: str, messages: str | None, sentence: str, pad: str) -> tuple[str, str | None]:
    """The carrier with the secret sentence at the end of its first user turn (a conversation) or
    of its text, and `pad` (trailing whitespace) at the very end."""
    if messages:
        msgs = json.loads(messages)
        turn = next((i for i, m in enumerate(msgs) if m.get("role") == "user"), 0)
        msgs[turn] = {**msgs[turn], "content": f"{str(msgs[turn].get('content', '')).rstrip()} {sentence}"}
        msgs[-1] = {**msgs[-1], "content": str(msgs[-1].get("content", "")) + pad}
        return render(msgs), canonical_json(msgs)
    return f"{text.rstrip()} {sentence}{pad}", None


def plant(store: Store, spec: PlantSpec) -> dict[str, Any]:
    """Plant `n` canaries per format and repeat count into copies of `source`'s samples."""
    from mixline.store.select import scope

    spec.check()
    if not store.rows("SELECT source_id FROM sources WHERE name = ?", [spec.source]):
        raise NotFoundError(f"source {spec.source!r} is not in the store; `mixline stats` lists the sources")
    pred = scope(store, spec.where, "s")
    need = spec.n * len(spec.repeats) * len(spec.formats)
    # Carriers: the source's own samples, not canaries, not raw parents a pii step replaced, not
    # samples other steps wrote; one per canary, in an order the seed fixes.
    carriers = store.rows(f"""
        SELECT s.sample_id, s.kind, s.text, s.messages, s.domain, s.source_id FROM samples s
        WHERE s.source = ? AND s.kind <> 'eval' AND s.synth_depth = 0 AND {pred}
          AND NOT EXISTS (SELECT 1 FROM canary_copies c WHERE c.sample_id = s.sample_id)
          AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.child_id = s.sample_id)
          AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.parent_id = s.sample_id AND e.relation = 'scrubbed_from')
        ORDER BY md5(s.sample_id || ?::VARCHAR) LIMIT ?""", [spec.source, spec.seed, need])
    if len(carriers) < need:
        raise ConfigError(f"canary plant: {spec.n} canaries x {len(spec.repeats)} repeat counts x {len(spec.formats)} "
                          f"formats need {need} carrier samples of source {spec.source!r}; it has {len(carriers)} "
                          "(raw samples not yet planted into). Lower --n, or widen --where")
    rng = random.Random(spec.seed)
    draw = secrets.SystemRandom()
    params = {"source": spec.source, "n": spec.n, "repeats": list(spec.repeats), "formats": list(spec.formats),
              "seed": spec.seed, "where": spec.where}
    rows, copies, edges, secret_rows, canaries = [], [], [], [], []
    with store.run("canary", "canary_plant_v1", params) as run:
        i = 0
        for fmt in spec.formats:
            for repeats in spec.repeats:
                for _ in range(spec.n):
                    c = carriers[i]
                    i += 1
                    prefix = rng.choice(TEMPLATES[fmt])
                    secret = draw_secret(fmt, draw)
                    cid = "canary-" + step_id("canary", 1, {"format": fmt, "repeats": repeats, "run": run.run_id},
                                              [c["sample_id"]])[:20]
                    for j in range(repeats):
                        text, msgs = _insert(c["kind"], c["text"], c["messages"], f"{prefix}{secret}.", " " * j)
                        sid = content_id(msgs if msgs is not None else text)
                        rows.append({"sample_id": sid, "source_id": c["source_id"], "source": spec.source, "kind": c["kind"],
                                     "text": text, "messages": msgs, "content_hash": content_id(text), "domain": c["domain"],
                                     "n_chars": len(text), "synth_depth": 0, "created_run_id": run.run_id})
                        copies.append({"canary_id": cid, "sample_id": sid, "copy": j})
                        edges.append({"child_id": sid, "parent_id": c["sample_id"], "relation": "canary_of",
                                      "run_id": run.run_id, "step": "canary_plant_v1"})
                    secret_rows.append({"name": SECRET_PREFIX + cid,
                                        "value": json.dumps({"prefix": prefix, "secret": secret, "format": fmt})})
                    canaries.append({"canary_id": cid, "format": fmt, "repeats": repeats, "carrier_id": c["sample_id"],
                                     "source": spec.source, "space": space_size(fmt), "run_id": run.run_id})
        table = pa.Table.from_pylist(rows, schema=pa.schema([
            ("sample_id", pa.string()), ("source_id", pa.string()), ("source", pa.string()), ("kind", pa.string()),
            ("text", pa.string()), ("messages", pa.string()), ("content_hash", pa.string()), ("domain", pa.string()),
            ("n_chars", pa.int64()), ("synth_depth", pa.int32()), ("created_run_id", pa.string())]))
        store.insert_new_samples(table)
        store.add_edges(edges)
        store.append_rows("canary_copies", copies)
        store.append_rows("canaries", canaries)
        store.append_rows("store_secrets", secret_rows)
        run.stats.update({"canaries": len(canaries), "copies": len(copies)})
    by: dict[str, int] = {}
    for c in canaries:
        key = f"{c['format']} x{c['repeats']}"
        by[key] = by.get(key, 0) + 1
    return {"run_id": run.run_id, "canaries": len(canaries), "copies": len(copies), "by_format_and_repeats": by,
            "canary_ids": [c["canary_id"] for c in canaries]}


def list_all(store: Store) -> list[dict[str, Any]]:
    return store.rows("""SELECT c.canary_id, c.format, c.repeats, c.source, c.carrier_id, c.run_id, c.created_at,
                                count(cc.sample_id) AS copies
                         FROM canaries c LEFT JOIN canary_copies cc USING (canary_id) GROUP BY ALL
                         ORDER BY c.created_at, c.format, c.repeats, c.canary_id""")
