"""The DuckDB-backed system of record: samples, provenance, decisions, mixes and models."""

from store.errors import (
    ConfigError,
    InputError,
    LineageError,
    MixlineError,
    NotFoundError,
    PredicateError,
    ReadOnlyError,
    StoreError,
    UnknownFormatError,
)
from store.store import Run, Store, resolve_store_path

__all__ = [
    "ConfigError",
    "InputError",
    "LineageError",
    "MixlineError",
    "NotFoundError",
    "PredicateError",
    "ReadOnlyError",
    "Run",
    "Store",
    "StoreError",
    "UnknownFormatError",
    "resolve_store_path",
]
