"""Hotlist service: manages hotlists over gRPC and matches every read against them."""
