"""Resolve what a user typed (a full id, a unique id prefix, or a name) to one mix or model id."""

from __future__ import annotations

from mixline.store.store import Store

from mixline.errors import ConfigError, NotFoundError

_TABLES = {"mix": ("mixes", "mix_id"), "model": ("models", "model_id")}


def resolve_ref(store: Store, what: str, ref: str) -> str | None:
    """The id `ref` names, or None when nothing matches.

    A full id wins; then a name (the newest thing with that name, since re-building a recipe under
    the same name is the normal workflow); then an id prefix, which must be unique.
    """
    table, col = _TABLES[what]
    row = store.execute(f"SELECT {col} FROM {table} WHERE {col} = ?", [ref]).fetchone()
    if row:
        return str(row[0])
    row = store.execute(f"SELECT {col} FROM {table} WHERE name = ? ORDER BY created_at DESC LIMIT 1", [ref]).fetchone()
    if row:
        return str(row[0])
    if len(ref) < 4:
        return None
    hits = [str(r[0]) for r in store.execute(
        f"SELECT {col} FROM {table} WHERE starts_with({col}, ?) ORDER BY {col} LIMIT 3", [ref]).fetchall()]
    if len(hits) > 1:
        raise ConfigError(f"{what} prefix {ref!r} is ambiguous ({', '.join(hits[:2])}, ...); give more characters")
    return hits[0] if hits else None


def require_ref(store: Store, what: str, ref: str) -> str:
    """Like resolve_ref, but a miss is a NotFoundError that says how to list what exists."""
    hit = resolve_ref(store, what, ref)
    if hit is None:
        table, col = _TABLES[what]
        raise NotFoundError(f"no {what} {ref!r}; list them with `mixline sql \"SELECT {col}, name FROM {table}\"`")
    return hit
