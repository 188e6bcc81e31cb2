"""Transparency report: what an agency did with the system in a period, for the public."""
