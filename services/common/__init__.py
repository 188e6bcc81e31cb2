"""Plumbing and contracts shared by every platewatch service. No domain logic lives here."""
