"""A short demonstration of the legacy cache (until the replay job exists)."""

from __future__ import annotations

from sigcache import signature_cache as sc


def main() -> int:
    """Write and read a few signatures through the module API and print the stats."""
    signature = "EqQBCkYIBRgCKkD" + "x" * 80
    sc.cache_signature("Let me think about the question.", signature, model="claude-sonnet-4-5")
    hit = sc.get_cached_signature("<think>Let me think about the question.</think>")
    miss = sc.get_cached_signature("A thought never seen.")
    stats = sc.get_cache_stats()
    print(f"hit after tag unwrapping: {hit is not None}; unseen text: {miss}")
    print(f"hits={stats['hits']} misses={stats['misses']} hit_rate={stats['hit_rate']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
