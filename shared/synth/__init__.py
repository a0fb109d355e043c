"""Synthetic sign-in logs and alerts: the samples, the tests, the benchmarks and the demo; never the product."""
