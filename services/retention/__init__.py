"""Retention enforcement per agency and data class, legal holds, and the retention report."""
