"""Pure classification of one replayed read: the stack's caller-visible answer vs the control's.

The replayer feeds :func:`classify` two observations (the stack under test and the plain legacy
control) plus the :class:`ReadFacts` it derives from an :class:`Oracle` of every write. The oracle
makes ``foreign`` independent of legacy: an owner-blind new cache cannot pass as an improvement.

Precedence, first that applies (exactly one class per read):

1. ``error``           the stack raised (it has no answer, so nothing else can be judged);
2. ``foreign``         the stack answered with a signature never written for that key and owner;
3. ``match``           both answered the same (both hit with equal values);
4. ``isolation``       the control's hit crossed owner/family/scope/conversation and the stack
                       refused it (missed, or answered the legitimate value instead); reason
                       ``owner``, ``family``, ``scope`` (another provider account),
                       ``conversation``, or ``no_conversation`` (a last/recent read naming no
                       conversation, which the new cache answers with nothing);
5. ``value_mismatch``  both hit with different values and the control's answer was legitimate;
                       reason ``legacy_truncated`` when the control's signature is a strict
                       prefix of the stack's or is itself cut short (legacy kept an aborted
                       stream's value, which the new cache refused to store: a legacy defect,
                       a finding the gate does not count as critical);
6. ``legacy_only_hit`` the control hit, the stack missed (a regression; reason says why if known;
                       ``legacy_truncated`` when the control's signature is cut short, or a
                       strict prefix of another signature written for the key: a value the new
                       cache refuses to store, a finding, not a regression);
7. ``new_only_hit``    the stack hit, the control missed (an improvement; reason says why if known);
8. ``both_miss``       neither answered.

A control that raised counts as a miss with reason ``control_error``: the A/A check reports it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from sigcache.keys import normalize_thinking_text
from sigcache.provenance import (
    is_truncated,
    model_family,
    scope_of,
    tool_id_forms,
    tool_id_lookup_forms,
)

__all__ = [
    "CLASSES",
    "CRITICAL_CLASSES",
    "FINDING_REASONS",
    "Answer",
    "Comparison",
    "Crossing",
    "Observation",
    "Oracle",
    "ReadFacts",
    "Store",
    "classify",
    "finding_name",
    "signature_of",
]

Answer = str | tuple[str, str] | None  # a signature, or (signature, text) for *_with_text reads
Crossing = Literal["owner", "family", "scope", "conversation", "no_conversation"]
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
# (class, reason) pairs that are legacy defects the replay surfaces, not failures of the new
# cache: the gate counts them apart from their class (harness.gate). `legacy_crossed_<what>`
# under value_mismatch: in a phase where the stack's own legacy cache answers a last/recent
# read, its answer crossed owners, families, scopes or conversations where the control's did
# not (legacy's look-ups ignore provenance, and read repair reorders its "last" entry).
FINDING_REASONS: Final = frozenset(
    {
        ("value_mismatch", "legacy_truncated"),
        ("legacy_only_hit", "legacy_truncated"),
        *(
            ("value_mismatch", f"legacy_crossed_{what}")
            for what in ("owner", "family", "scope", "conversation")
        ),
    }
)


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
    # The control's signature is a strict prefix of another one written for this key and owner:
    # an aborted stream's value (the new cache refuses it once it holds the whole one).
    control_cut: bool = False


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
        control_sig = signature_of(control.value)
        if _truncated(control_sig) or _strict_prefix(control_sig, signature_of(stack.value)):
            return Comparison("value_mismatch", "legacy_truncated")
        return Comparison("value_mismatch", None)
    if control.hit:
        if facts.control_crossed is not None:
            return Comparison("isolation", facts.control_crossed)
        if facts.control_cut or _truncated(signature_of(control.value)):
            return Comparison("legacy_only_hit", "legacy_truncated")
        return Comparison("legacy_only_hit", facts.miss_reason)
    if stack.hit:
        return Comparison("new_only_hit", control_reason or facts.miss_reason)
    return Comparison("both_miss", control_reason)


def finding_name(cls: str, reason: str | None) -> str | None:
    """The finding a classified read is, or None: ``isolation_<reason>`` for isolation (legacy's
    answer crossed and the stack refused it), the reason itself for `FINDING_REASONS`.

    Findings are legacy defects the replay surfaces; the gate never counts them as failures.
    """
    if cls == "isolation":
        return f"isolation_{reason or 'unknown'}"
    if reason is not None and (cls, reason) in FINDING_REASONS:
        return reason
    return None


def signature_of(answer: Answer) -> str | None:
    """The signature inside an answer (the first element of a (signature, text) pair)."""
    return answer[0] if isinstance(answer, tuple) else answer


def _truncated(signature: str | None) -> bool:
    return isinstance(signature, str) and is_truncated(signature)


def _strict_prefix(short: str | None, long: str | None) -> bool:
    return (
        short is not None and long is not None and len(short) < len(long) and long.startswith(short)
    )


def _stores(store: str) -> tuple[str, ...]:
    return ("main", "tool", "session") if store == "any" else (store,)


def _store_key(store: str, key: str) -> str:
    # The main store is keyed by the normalised text, as both caches key it; ids are taken as given.
    return normalize_thinking_text(key) if store == "main" else key


# (model family, conversation id, scope) of one write
Provenance = tuple[str | None, str | None, str | None]


def _crossed(read: str | None, written: set[str | None]) -> bool:
    """Whether every write carried a value of the dimension other than the read's."""
    return read is not None and bool(written) and None not in written and read not in written


class Oracle:
    """In-memory record of every write: (store, normalised key, owner) -> signatures and times.

    It also remembers, per written signature, the model family, conversation and scope of each
    write (issue 13), and for tool ids the rewritten forms the new cache finds them by, so a tool
    answer given for a rewritten id counts as written for it (`sigcache.provenance`).
    """

    def __init__(self) -> None:
        self._writes: dict[tuple[str, str, str | None], dict[str, list[float]]] = defaultdict(dict)
        # (store, signature) -> {(normalised key, owner): {(family, conversation), ...}}
        self._by_signature: dict[tuple[str, str], dict[tuple[str, str | None], set[Provenance]]] = (
            defaultdict(dict)
        )
        self._tool_forms: dict[tuple[str, str | None], set[str]] = defaultdict(set)

    def record_write(
        self,
        store: str,
        key: str,
        signature: str,
        owner: str | None,
        t: float,
        *,
        model: object = None,
        conversation: object = None,
        scope: object = None,
    ) -> None:
        """Note that `signature` was written for `key` by `owner` at time `t` (with its model,
        conversation and scope, when the call named them)."""
        skey = _store_key(store, key)
        self._writes[(store, skey, owner)].setdefault(signature, []).append(t)
        provenance = (
            model_family(model),
            conversation if isinstance(conversation, str) else None,
            scope_of(scope),
        )
        self._by_signature[(store, signature)].setdefault((skey, owner), set()).add(provenance)
        if store == "tool":
            for form in tool_id_forms(skey):
                self._tool_forms[(form, owner)].add(skey)

    def _keys_for(self, store: str, key: str, owner: str | None) -> list[str]:
        """The stored keys a read of `key` may legitimately be answered from."""
        skey = _store_key(store, key)
        if store != "tool":
            return [skey]
        found = [skey]
        for form in tool_id_lookup_forms(skey):
            found.extend(self._tool_forms.get((form, owner), ()))
        return found

    def written_for(self, store: str, key: str, owner: str | None, signature: str) -> bool:
        """True if `signature` was ever written for this key (or a form of this tool id) by
        this owner."""
        return any(
            signature in self._writes.get((store, k, owner), {})
            for k in self._keys_for(store, key, owner)
        )

    def write_times(
        self, store: str, key: str, owner: str | None, signature: str
    ) -> tuple[float, ...]:
        """The times `signature` was written for this key and owner, oldest first."""
        found = self._writes.get((store, _store_key(store, key), owner), {})
        return tuple(found.get(signature, ()))

    def writers_of(self, store: str, signature: str) -> frozenset[str | None]:
        """Every owner that wrote `signature` into `store`, under any key."""
        return frozenset(owner for _, owner in self._by_signature.get((store, signature), {}))

    def written_by(self, store: str, owner: str | None, signature: str) -> bool:
        """True if `owner` wrote `signature` into `store` under any key (last/recent reads)."""
        return owner in self.writers_of(store, signature)

    def provenance_of(
        self, store: str, signature: str, key: str | None = None
    ) -> tuple[set[str | None], set[str | None]]:
        """(families, conversations) `signature` was written under in `store` (for `key` only,
        if given)."""
        families, conversations, _ = self.provenance_sets(store, signature, key)
        return families, conversations

    def provenance_sets(
        self, store: str, signature: str, key: str | None = None
    ) -> tuple[set[str | None], set[str | None], set[str | None]]:
        """(families, conversations, scopes) `signature` was written under in `store` (for
        `key` only, if given)."""
        skey = None if key is None else _store_key(store, key)
        families: set[str | None] = set()
        conversations: set[str | None] = set()
        scopes: set[str | None] = set()
        for (k, _), provenances in self._by_signature.get((store, signature), {}).items():
            if skey is None or k == skey:
                for family, conversation, scope in provenances:
                    families.add(family)
                    conversations.add(conversation)
                    scopes.add(scope)
        return families, conversations, scopes

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
        places = self._by_signature.get((store, signature), {})
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
        model: object = None,
        scope: object = None,
    ) -> ReadFacts:
        """ReadFacts for a keyed read (main, tool or session store), both answers checked here.

        The control's answer crossed families when the read named a model and that signature
        was written for this key only under other model families (the new cache refuses it);
        likewise scopes (provider accounts). Conversations never filter keyed reads, so they
        never cross here.
        """
        foreign = self.explain(store, key, owner, stack.value) if stack.hit else None
        crossed = self.explain(store, key, owner, control.value) if control.hit else None
        crossing: Crossing | None = "owner" if crossed == "owner" else None
        signature = signature_of(control.value)
        if crossing is None and control.hit and signature is not None:
            families, _, scopes = self.provenance_sets(store, signature, key)
            if _crossed(model_family(model), families):
                crossing = "family"
            elif _crossed(scope_of(scope), scopes):
                crossing = "scope"
        cut = False
        if signature is not None and control.hit and not stack.hit and crossing is None:
            cut = any(
                len(other) > len(signature) and other.startswith(signature)
                for k in self._keys_for(store, key, owner)
                for other in self._writes.get((store, k, owner), {})
            )
        return ReadFacts(
            stack_answer_legitimate=foreign is None,
            control_crossed=crossing,
            foreign_reason=foreign,
            miss_reason=miss_reason,
            control_cut=cut,
        )

    def unkeyed_facts(
        self,
        store: str,
        owner: str | None,
        stack: Observation,
        control: Observation,
        *,
        model: object = None,
        conversation: object = None,
        scope: object = None,
    ) -> ReadFacts:
        """Facts for last/recent reads, which name no key (`store` "any": every store).

        The stack's answer is legitimate when the caller's owner wrote that signature. The
        control's answer crossed owners when anyone else wrote it too (legacy's look-ups ignore
        owners in the tool and session tiers); else model families when the read named a model
        and the signature was written only under others; else scopes, likewise; else
        conversations when the read named one and the signature was never written in it; else,
        when the read named none, ``no_conversation``: the new cache answers such a read with
        nothing by design.
        """
        stores = _stores(store)
        stack_sig = signature_of(stack.value) if stack.hit else None
        stack_writers = self._writers(stores, stack_sig) if stack_sig is not None else None
        foreign = stack_writers is not None and owner not in stack_writers
        crossing = None
        if control.hit:
            crossing = self.unkeyed_crossing(
                store, owner, control.value, model=model, conversation=conversation, scope=scope
            )
        return ReadFacts(
            stack_answer_legitimate=not foreign,
            control_crossed=crossing,
            foreign_reason=("owner" if stack_writers else "never_written") if foreign else None,
        )

    def unkeyed_crossing(
        self,
        store: str,
        owner: str | None,
        answer: Answer,
        *,
        model: object = None,
        conversation: object = None,
        scope: object = None,
    ) -> Crossing | None:
        """What a last/recent `answer` crossed for this read, in the order of `unkeyed_facts`
        (None: nothing, or no answer)."""
        signature = signature_of(answer)
        if signature is None:
            return None
        stores = _stores(store)
        if any(w != owner for w in self._writers(stores, signature)):
            return "owner"
        families: set[str | None] = set()
        conversations: set[str | None] = set()
        scopes: set[str | None] = set()
        for s in stores:
            found = self.provenance_sets(s, signature)
            families |= found[0]
            conversations |= found[1]
            scopes |= found[2]
        named = conversation if isinstance(conversation, str) and conversation else None
        if _crossed(model_family(model), families):
            return "family"
        if _crossed(scope_of(scope), scopes):
            return "scope"
        if named is None:
            return "no_conversation"
        if named not in conversations:
            return "conversation"
        return None

    def _writers(self, stores: tuple[str, ...], signature: str) -> frozenset[str | None]:
        return frozenset().union(*(self.writers_of(s, signature) for s in stores))

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
                places.pop((where[1], where[2]), None)
                if not places:
                    del self._by_signature[(where[0], signature)]
            if not signatures:
                del self._writes[where]
                if where[0] == "tool":
                    self._forget_forms(where[1], where[2])
        return dropped

    def _forget_forms(self, skey: str, owner: str | None) -> None:
        for form in tool_id_forms(skey):
            keys = self._tool_forms.get((form, owner))
            if keys is not None:
                keys.discard(skey)
                if not keys:
                    del self._tool_forms[(form, owner)]

    def __len__(self) -> int:
        """Number of distinct (store, key, owner, signature) writes recorded."""
        return sum(len(sigs) for sigs in self._writes.values())
