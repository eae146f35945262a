"""Helpers for tests and benchmarks: synthetic videos with known ground-truth cameras."""
