"""The DuckDB-backed system of record: samples, provenance, decisions, mixes and models."""

from mixline.store.store import Run, Store, resolve_store_path

__all__ = ["Run", "Store", "resolve_store_path"]
