"""Benchmarks that print tables and ratios (never pass/fail): `python -m bench.engine`, `python
-m bench.http`."""
