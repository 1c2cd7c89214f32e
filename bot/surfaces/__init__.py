"""Surfaces: each turns platform input into an invocation and renders a Reply its own way."""
