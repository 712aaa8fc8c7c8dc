"""Recorded classifiers by reference: an id (or unique prefix), NAME (the newest version) or NAME@vN.

The store only resolves references; what a classifier is and does lives in `curation.classifier`.
"""

from __future__ import annotations

from typing import Any

from mixline.store.store import Store

from mixline.errors import ConfigError, NotFoundError

_COLUMNS = "classifier_id, name, version, method, labels, params, mix_id, weight_hash, metrics, run_id, created_at"


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`med`, `med@v2` or `med@2` as (name, version or None for the newest)."""
    name, _, ver = ref.partition("@")
    if not ver:
        return name, None
    ver = ver.removeprefix("v")
    if not ver.isdigit():
        raise ConfigError(f"classifier {ref!r}: write NAME or NAME@vN, e.g. med@v2")
    return name, int(ver)


def lookup(store: Store, ref: str, version: int | None = None, *, weights: bool = False) -> dict[str, Any]:
    """The `classifiers` row a reference names; NotFoundError lists the names there are."""
    cols = _COLUMNS + (", weights" if weights else "")
    if ref.startswith("clf-"):
        rows = store.rows(f"SELECT {cols} FROM classifiers WHERE classifier_id = ? OR classifier_id LIKE ? ORDER BY version",
                          [ref, ref + "%"])
        if len(rows) > 1 and not any(r["classifier_id"] == ref for r in rows):
            raise ConfigError(f"classifier id prefix {ref!r} matches {len(rows)} classifiers; give more of it")
        rows = [r for r in rows if r["classifier_id"] == ref] or rows
    else:
        name, v = parse_ref(ref)
        v = version if version is not None else v
        rows = store.rows(f"SELECT {cols} FROM classifiers WHERE name = ? AND (? IS NULL OR version = ?) "
                          "ORDER BY version DESC LIMIT 1", [name, v, v])
    if not rows:
        names = [r[0] for r in store.execute("SELECT DISTINCT name FROM classifiers ORDER BY 1").fetchall()]
        raise NotFoundError(f"no classifier {ref!r}{f' version {version}' if version else ''} in the store; "
                            + (f"it has {', '.join(names)}" if names else
                               "train one with `mixline classifier train NAME --positive PRED --negative PRED`"))
    return rows[0]
