"""Normalizer: turns per-frame raw reads into one read per vehicle pass, exactly once."""
