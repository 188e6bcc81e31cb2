"""The writer: consumes reads and alerts from Kafka and stores them in ClickHouse, exactly once."""
