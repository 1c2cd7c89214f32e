"""Chart PNGs and plain-text formatting of domain models."""
