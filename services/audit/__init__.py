"""Tamper-evident audit log: recording client, chaining component, verification."""
