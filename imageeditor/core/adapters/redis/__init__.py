"""Redis adapters (production mode): the connection, event bus, status cache and rate limiter."""
