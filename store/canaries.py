"""Canaries as the store keeps them: their secrets (read only by the audit and by masking),
the masking of every secret in text that is shown, and the canaries that reached a mix.
Planting is `mixline.pipelines.canaries`."""

from __future__ import annotations

import json
from typing import Any

from mixline.store.store import Store

SECRET_PREFIX = "canary:"
MASK = "[canary secret]"
# Canary copies and the samples derived from them (a copy's scrubbed child), with their canary.
CANARY_REACH = ("SELECT canary_id, sample_id FROM canary_copies UNION ALL SELECT cc.canary_id, e.child_id AS sample_id "
                "FROM edges e JOIN canary_copies cc ON cc.sample_id = e.parent_id")
CANARY_SAMPLES = f"SELECT sample_id FROM ({CANARY_REACH})"


def load_secrets(store: Store, canary_ids: list[str] | None = None) -> dict[str, dict[str, str]]:
    """canary id -> {prefix, secret, format}: for the audit and for masking, never for display."""
    rows = store.execute("SELECT name, value FROM store_secrets WHERE starts_with(name, ?)", [SECRET_PREFIX]).fetchall()
    out = {name[len(SECRET_PREFIX):]: json.loads(value) for name, value in rows}
    if canary_ids is not None:
        wanted = set(canary_ids)
        out = {k: v for k, v in out.items() if k in wanted}
    return out


def has_canaries(store: Store) -> bool:
    # A store from before canaries (opened read-only, not migrated) has none.
    return store.table_exists("canaries") and bool(store.scalar("SELECT count(*) > 0 FROM canaries"))


def mask(store: Store, texts: dict[str, str | None], *, any_canaries: bool | None = None) -> dict[str, str | None]:
    """Texts (by sample id) with every canary secret replaced by MASK: for anything shown.
    `any_canaries` is whether the store has any, where the caller already knows."""
    if not texts or not (has_canaries(store) if any_canaries is None else any_canaries):
        return texts
    found = [s["secret"] for s in load_secrets(store).values()]
    out = {}
    for sid, t in texts.items():
        if t is not None:
            for secret in found:
                if secret in t:
                    t = t.replace(secret, MASK)
        out[sid] = t
    return out


def mix_canaries(store: Store, mix_id: str) -> dict[str, Any]:
    """Canary copies among a mix's members (and samples derived from them, such as scrubbed
    children): how many canaries reached it, by format, and their copies weighted by repeats."""
    if not has_canaries(store):
        return {"canaries": 0, "copies": 0, "by_format": {}}
    rows = store.rows(f"""
        SELECT c.format, count(DISTINCT r.canary_id) AS canaries, sum(mm.repeats) AS copies
        FROM mix_members mm JOIN ({CANARY_REACH}) r USING (sample_id) JOIN canaries c USING (canary_id)
        WHERE mm.mix_id = ? AND mm.split = 'train' GROUP BY 1 ORDER BY 1""", [mix_id])
    return {"canaries": sum(int(r["canaries"]) for r in rows), "copies": sum(int(r["copies"]) for r in rows),
            "by_format": {r["format"]: {"canaries": int(r["canaries"]), "copies": int(r["copies"])} for r in rows}}


def canary_samples(store: Store, ids: list[str]) -> set[str]:
    """Which of these samples are canary copies or derived from one."""
    if not ids or not has_canaries(store):
        return set()
    return {r[0] for r in store.execute(f"""SELECT sample_id FROM ({CANARY_SAMPLES})
                                            WHERE sample_id IN (SELECT unnest(?::VARCHAR[]))""", [ids]).fetchall()}
