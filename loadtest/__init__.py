"""Benchmarks of the streaming pipeline (`make loadtest`); not tests, and not part of the product."""
