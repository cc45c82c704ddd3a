"""Pure classification of one replayed read: the stack's caller-visible answer vs the control's.

The replayer feeds :func:`classify` two observations (the stack under test and the plain legacy
control) plus the :class:`ReadFacts` it derives from an :class:`Oracle` of every write. The oracle
makes ``foreign`` independent of legacy: an owner-blind new cache cannot pass as an improvement.

Precedence, first that applies (exactly one class per read):

1. ``error``           the stack raised (it has no answer, so nothing else can be judged);
2. ``foreign``         the stack answered with a signature never written for that key and owner;
3. ``match``           both answered the same (both hit with equal values);
4. ``isolation``       the control's hit crossed owner/family/conversation and the stack refused it
                       (missed, or answered the legitimate value instead);
5. ``value_mismatch``  both hit with different values and the control's answer was legitimate;
6. ``legacy_only_hit`` the control hit, the stack missed (a regression; reason says why if known);
7. ``new_only_hit``    the stack hit, the control missed (an improvement; reason says why if known);
8. ``both_miss``       neither answered.

A control that raised counts as a miss with reason ``control_error``: the A/A check reports it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from sigcache.keys import normalize_thinking_text

__all__ = [
    "CLASSES",
    "CRITICAL_CLASSES",
    "Answer",
    "Comparison",
    "Crossing",
    "Observation",
    "Oracle",
    "ReadFacts",
    "Store",
    "classify",
    "signature_of",
]

Answer = str | tuple[str, str] | None  # a signature, or (signature, text) for *_with_text reads
Crossing = Literal["owner", "family", "conversation"]
Store = Literal["main", "tool", "session"]

CLASSES: Final = (
    "match",
    "both_miss",
    "new_only_hit",
    "legacy_only_hit",
    "value_mismatch",
    "isolation",
    "foreign",
    "error",
)
CRITICAL_CLASSES: Final = frozenset({"value_mismatch", "foreign", "error"})


@dataclass(frozen=True, slots=True)
class Observation:
    """One side's answer to a read: a value (None = miss) or an error, and its latency."""

    value: Answer = None
    error: str | None = None  # exception type and message; the stack's never reaches a caller
    latency_us: float = 0.0

    @property
    def hit(self) -> bool:
        """True when the side answered with a value and did not raise."""
        return self.error is None and self.value is not None


@dataclass(frozen=True, slots=True)
class ReadFacts:
    """What the replayer knows about one read from the oracle, beyond the two answers."""

    # Was the stack's answer written for this key and owner? Only consulted when the stack hit;
    # no default on purpose, so a replayer cannot forget the oracle check.
    stack_answer_legitimate: bool
    control_crossed: Crossing | None = None  # the control's hit crossed this dimension
    foreign_reason: str | None = None  # e.g. "owner", "pairing", "never_written" (Oracle.explain)
    miss_reason: str | None = None  # why the side that missed did: eviction, expiry, ...


class Comparison(NamedTuple):
    """The class of one read and the reason, where known."""

    cls: str
    reason: str | None


def classify(stack: Observation, control: Observation, facts: ReadFacts) -> Comparison:
    """Classify one read: exactly one of CLASSES, by the precedence in the module docstring."""
    if stack.error is not None:
        return Comparison("error", stack.error)
    if stack.hit and not facts.stack_answer_legitimate:
        return Comparison("foreign", facts.foreign_reason or "never_written")
    control_reason = "control_error" if control.error is not None else None
    if stack.hit and control.hit:
        if stack.value == control.value:
            return Comparison("match", None)
        if facts.control_crossed is not None:
            return Comparison("isolation", facts.control_crossed)
        return Comparison("value_mismatch", None)
    if control.hit:
        if facts.control_crossed is not None:
            return Comparison("isolation", facts.control_crossed)
        return Comparison("legacy_only_hit", facts.miss_reason)
    if stack.hit:
        return Comparison("new_only_hit", control_reason or facts.miss_reason)
    return Comparison("both_miss", control_reason)


def signature_of(answer: Answer) -> str | None:
    """The signature inside an answer (the first element of a (signature, text) pair)."""
    return answer[0] if isinstance(answer, tuple) else answer


def _store_key(store: str, key: str) -> str:
    # The main store is keyed by the normalised text, as both caches key it; ids are taken as given.
    return normalize_thinking_text(key) if store == "main" else key


class Oracle:
    """In-memory record of every write: (store, normalised key, owner) -> signatures and times."""

    def __init__(self) -> None:
        self._writes: dict[tuple[str, str, str | None], dict[str, list[float]]] = defaultdict(dict)
        self._by_signature: dict[tuple[str, str], set[tuple[str, str | None]]] = defaultdict(set)

    def record_write(
        self, store: str, key: str, signature: str, owner: str | None, t: float
    ) -> None:
        """Note that `signature` was written for `key` by `owner` at time `t`."""
        skey = _store_key(store, key)
        self._writes[(store, skey, owner)].setdefault(signature, []).append(t)
        self._by_signature[(store, signature)].add((skey, owner))

    def written_for(self, store: str, key: str, owner: str | None, signature: str) -> bool:
        """True if `signature` was ever written for this key by this owner."""
        found = self._writes.get((store, _store_key(store, key), owner), {})
        return signature in found

    def write_times(
        self, store: str, key: str, owner: str | None, signature: str
    ) -> tuple[float, ...]:
        """The times `signature` was written for this key and owner, oldest first."""
        found = self._writes.get((store, _store_key(store, key), owner), {})
        return tuple(found.get(signature, ()))

    def writers_of(self, store: str, signature: str) -> frozenset[str | None]:
        """Every owner that wrote `signature` into `store`, under any key."""
        return frozenset(owner for _, owner in self._by_signature.get((store, signature), ()))

    def written_by(self, store: str, owner: str | None, signature: str) -> bool:
        """True if `owner` wrote `signature` into `store` under any key (last/recent reads)."""
        return owner in self.writers_of(store, signature)

    def signatures_for(self, store: str, key: str, owner: str | None) -> frozenset[str]:
        """Every signature written for this key by this owner."""
        return frozenset(self._writes.get((store, _store_key(store, key), owner), {}))

    def explain(self, store: str, key: str, owner: str | None, answer: Answer) -> str | None:
        """None if `answer` is legitimate for key and owner, else why not (a `foreign` reason).

        ``owner``: written for this key by another owner (a leak across owners); ``pairing``:
        written by this owner for another key (a wrong pairing); ``never_written`` otherwise.
        """
        signature = signature_of(answer)
        if signature is None or self.written_for(store, key, owner, signature):
            return None
        skey = _store_key(store, key)
        places = self._by_signature.get((store, signature), set())
        if any(k == skey for k, _ in places):
            return "owner"
        if any(o == owner for _, o in places):
            return "pairing"
        return "never_written"

    def facts(
        self,
        store: str,
        key: str,
        owner: str | None,
        stack: Observation,
        control: Observation,
        *,
        miss_reason: str | None = None,
    ) -> ReadFacts:
        """ReadFacts for a keyed read (main, tool or session store), both answers checked here."""
        foreign = self.explain(store, key, owner, stack.value) if stack.hit else None
        crossed = self.explain(store, key, owner, control.value) if control.hit else None
        return ReadFacts(
            stack_answer_legitimate=foreign is None,
            control_crossed="owner" if crossed == "owner" else None,
            foreign_reason=foreign,
            miss_reason=miss_reason,
        )

    def prune(self, before: float) -> int:
        """Forget writes made before `before` (no cache may still serve them); returns how many.

        Keeps the oracle's memory bounded by the live window, not the recording's length.
        """
        dropped = 0
        for where in list(self._writes):
            signatures = self._writes[where]
            for signature in list(signatures):
                times = [t for t in signatures[signature] if t >= before]
                if times:
                    signatures[signature] = times
                    continue
                dropped += 1
                del signatures[signature]
                places = self._by_signature[(where[0], signature)]
                places.discard((where[1], where[2]))
                if not places:
                    del self._by_signature[(where[0], signature)]
            if not signatures:
                del self._writes[where]
        return dropped

    def __len__(self) -> int:
        """Number of distinct (store, key, owner, signature) writes recorded."""
        return sum(len(sigs) for sigs in self._writes.values())
