"""The local, read-only web UI over a store."""
