"""Benchmarks for the integration platform (run them as scripts, see each module)."""
