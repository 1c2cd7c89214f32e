"""Market data and broker clients, the offline simulator, routing and caching."""
