"""The web console: a thin door over the domains. Not built yet."""
