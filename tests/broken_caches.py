"""Deliberately broken new caches, built through `--new-cache MODULE:FACTORY` in the tests.

Each wraps the real layered cache and breaks one promise, so a replay must report the right class
at the right events.
"""

from __future__ import annotations

import time
from typing import Any

from sigcache.facade import default_new_cache_factory


class _Wrapper:
    """Delegates everything to the real cache; subclasses override one behaviour."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)


class DropsEveryTenthWrite(_Wrapper):
    """Acknowledges every write but silently loses every tenth main-store write."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.writes = 0

    def set(
        self, thinking_text: str, signature: str, model: Any = None, owner_id: Any = None, **kw: Any
    ) -> bool:
        self.writes += 1
        if self.writes % 10 == 0:
            return True
        return bool(self._inner.set(thinking_text, signature, model, owner_id, **kw))


class OwnerBlind(_Wrapper):
    """Stores and reads every entry as if it had no owner: a cross-owner leak."""

    def set(
        self, thinking_text: str, signature: str, model: Any = None, owner_id: Any = None, **kw: Any
    ) -> bool:
        return bool(self._inner.set(thinking_text, signature, model, None, **kw))

    def get(self, thinking_text: str, owner_id: Any = None) -> Any:
        return self._inner.get(thinking_text, None)


class FirstWriteWins(_Wrapper):
    """Ignores overwrites: a text keeps its first signature (a stale answer)."""

    def set(
        self, thinking_text: str, signature: str, model: Any = None, owner_id: Any = None, **kw: Any
    ) -> bool:
        if self._inner.get(thinking_text, owner_id) is not None:
            return True
        return bool(self._inner.set(thinking_text, signature, model, owner_id, **kw))


class RaisesOnRead(_Wrapper):
    """Every main-store read raises."""

    def get(self, thinking_text: str, owner_id: Any = None) -> Any:
        raise RuntimeError("broken read")


class SlowReads(_Wrapper):
    """Answers every main-store read correctly, 2 ms late (a synchronous network hop, say)."""

    DELAY_S = 0.002

    def get(self, thinking_text: str, owner_id: Any = None, **kw: Any) -> Any:
        time.sleep(self.DELAY_S)
        return self._inner.get(thinking_text, owner_id, **kw)


def _factory(cls: type[_Wrapper]) -> Any:
    def build(db_path: str, *, config: Any, clock: Any) -> Any:
        return cls(default_new_cache_factory(db_path, config=config, clock=clock))

    return build


drops_every_tenth = _factory(DropsEveryTenthWrite)
owner_blind = _factory(OwnerBlind)
first_write_wins = _factory(FirstWriteWins)
raises_on_read = _factory(RaisesOnRead)
slow_reads = _factory(SlowReads)
