"""Curation steps: filters, dedup, decontamination, PII and drift, every decision recorded."""
