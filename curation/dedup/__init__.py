"""Exact, near (MinHash LSH) and semantic (embedding) dedup, with recorded clusters."""
