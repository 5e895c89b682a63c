"""The HTTP API: a thin door over the domains. Not built yet."""
