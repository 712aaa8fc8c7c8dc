"""`--where PREDICATE`: one convention for selecting samples everywhere in mixline."""

from __future__ import annotations

import re

import duckdb
from mixline.store.store import Store

from mixline.errors import PredicateError

_FORBIDDEN = re.compile(r";|--|/\*")


def validate_where(store: Store, predicate: str | None) -> str:
    """Return a predicate that is safe to splice after WHERE, or raise PredicateError.

    It must be one boolean SQL expression over the columns of `samples`. It is checked by
    planning `SELECT count(*) FROM samples WHERE (...)`, so an unknown column is named in
    the error together with the columns that exist.
    """
    if predicate is None or not predicate.strip():
        return "TRUE"
    if _FORBIDDEN.search(predicate):
        raise PredicateError(
            f"--where {predicate!r}: a predicate is one SQL expression; ';' and comments are not allowed"
        )
    try:
        store.execute(f"EXPLAIN SELECT count(*) FROM samples WHERE ({predicate})")
    except duckdb.BinderException as exc:
        cols = [r[0] for r in store.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'samples' ORDER BY ordinal_position").fetchall()]
        raise PredicateError(
            f"--where {predicate!r}: {_first_line(exc)}. Columns of samples: {', '.join(cols)}"
        ) from exc
    except (duckdb.ParserException, duckdb.CatalogException, duckdb.ConversionException) as exc:
        raise PredicateError(f"--where {predicate!r} is not a valid SQL predicate: {_first_line(exc)}") from exc
    return f"({predicate})"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
