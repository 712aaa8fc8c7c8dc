"""Pipelines: ingest, mixes, training loops, and the `mixline` CLI."""
