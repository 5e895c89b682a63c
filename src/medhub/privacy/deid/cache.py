"""The one rule of de-identification's caches (compiled with the FHIR hot path, see `medhub._native`).

The values de-identification works out (a shifted date, a cleaned text, a pseudonym, a rewritten
reference) recur per patient and per code, so each is kept in a plain dict. A dict is bounded by
entries and emptied whole when full: no eviction bookkeeping on the hot path, and what is needed
again is worked out again.
"""

from __future__ import annotations

from typing import Final, TypeVar

CACHE_ENTRIES: Final = 65536  # per cache

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V) -> V:
    """Keep `value` under `key` in `cache` (emptied first where it is full) and return it."""
    if len(cache) >= CACHE_ENTRIES:
        cache.clear()
    cache[key] = value
    return value
