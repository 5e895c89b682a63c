"""Model registry, runtimes, batching and the inference API.

Not built yet: no issue has asked for it.
"""
