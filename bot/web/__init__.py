"""The HTTP API of `coach serve`: /api/v1/<command>, /openapi.json, and the answers they give."""
