"""Tests of sigcache.legacy_store: the newest entry is tracked exactly as a max would find it."""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import given
from hypothesis import strategies as st

from sigcache.legacy_stats import CacheEntry
from sigcache.legacy_store import NewestStore

KEYS = st.sampled_from("abcdefgh")
# Few distinct times, stepping back too: ties and a clock that is not monotonic.
TIMES = st.sampled_from([0.0, 1.0, 1.0, 2.0, 3.0, -1.0])
OPS = st.one_of(
    st.tuples(st.just("put"), KEYS, TIMES),  # pop + append, as the legacy stores write
    st.tuples(st.just("assign"), KEYS, TIMES),  # plain assignment (keeps an existing key's place)
    st.tuples(st.just("read"), KEYS, st.none()),  # move_to_end on a hit
    st.tuples(st.just("del"), KEYS, st.none()),
    st.tuples(st.just("pop"), KEYS, st.none()),
    st.tuples(st.just("evict"), st.none(), st.none()),  # popitem(last=False)
    st.tuples(st.just("popitem"), st.none(), st.none()),
    st.tuples(st.just("clear"), st.none(), st.none()),
    st.tuples(st.just("update"), KEYS, TIMES),
    st.tuples(st.just("setdefault"), KEYS, TIMES),
)


def _entry(stamp: float, name: str) -> CacheEntry:
    return CacheEntry(signature=name, thinking_text="", thinking_text_preview="", timestamp=stamp)


def _apply(
    store: OrderedDict[str, CacheEntry], op: tuple[str, object, object], entry: CacheEntry | None
) -> None:
    name, key, _ = op
    if name == "put" and isinstance(key, str) and entry:
        store.pop(key, None)
        store[key] = entry
    elif name == "assign" and isinstance(key, str) and entry:
        store[key] = entry
    elif name == "update" and isinstance(key, str) and entry:
        store.update({key: entry})
    elif name == "setdefault" and isinstance(key, str) and entry:
        store.setdefault(key, entry)
    elif name == "read" and key in store:
        store.move_to_end(str(key))
    elif name == "del" and key in store:
        del store[str(key)]
    elif name == "pop":
        store.pop(str(key), None)
    elif name in ("evict", "popitem") and store:
        store.popitem(last=name == "popitem")
    elif name == "clear":
        store.clear()


@given(st.lists(OPS, max_size=60))
def test_newest_is_the_first_entry_with_the_latest_timestamp(
    ops: list[tuple[str, object, object]],
) -> None:
    store, plain = NewestStore(), OrderedDict[str, CacheEntry]()
    for n, op in enumerate(ops):
        stamp = op[2]
        entry = _entry(stamp, f"e{n}") if isinstance(stamp, float) else None  # one per op
        _apply(store, op, entry)
        _apply(plain, op, entry)
        assert list(store.items()) == list(plain.items())
        expected = max(plain.values(), key=lambda e: e.timestamp, default=None)
        assert store.newest() is expected
