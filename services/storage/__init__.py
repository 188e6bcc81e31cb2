"""ClickHouse storage: connection factory, settings and forward-only schema migrations.

Only the writer and search components open ClickHouse; every other service goes through the
search gRPC API.
"""
