"""Benchmarks run against a throw-away ClickHouse database (`platewatch bench ...`)."""
