"""Brokers behind one interface: the paper broker (the default) and Tradier (sandbox or production)."""
