"""Benchmark decontamination: n-gram overlap with eval sets, and banned source URLs."""
