"""Inference service: finds licence plates in frames and reads them (PP-OCRv4 det + rec)."""
