"""Search: the gRPC API over stored reads; the only way other services reach ClickHouse."""
