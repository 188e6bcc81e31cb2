"""Dead-letter tools: inspect the dead-letter topics and replay their messages under an explicit policy."""
