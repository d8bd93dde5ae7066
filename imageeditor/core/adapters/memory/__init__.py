"""In-process adapters (embedded mode): event bus, status cache and rate limiter."""
