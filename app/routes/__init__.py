"""The HTTP routes, one small router per concern: api (/api/*), openai (/v1/*), ops (health,
metrics), pages (/)."""
