"""PhaseRouter: the routing machinery of the phase proxy (writes, reads, fallback, repair, stats).

Writes go to the route's caches, authoritative first; reads ask the primary and, on a miss, the
fallback, writing a fallback hit back into the cache that missed (read repair). The
non-authoritative side never reaches the caller: its exceptions and False results are counted
and logged. Routes are recomputed when the flags change, never per call. A fallback answer that
would cross model families or scopes is withheld and counted (issue 13; README "Provenance").
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from sigcache.interface import SignatureCacheProtocol
from sigcache.keys import is_valid_signature, normalize_thinking_text
from sigcache.migration_stats import CacheSide, MigrationStats, ReadOutcome
from sigcache.phases import MigrationFeatureFlags, PhaseFlags
from sigcache.provenance import mismatch, want
from sigcache.routing import (
    ABSENT,
    LEGACY_HIT,
    NO_DIAG,
    REPAIRS,
    CallDiagnostics,
    Route,
    ShadowLog,
    legacy_tally,
    route_for,
)
from sigcache.shadow import ShadowWrite, ShadowWriter

__all__ = ["NO_KWARGS", "NewCacheProvider", "PhaseRouter", "Sampler", "provenance_kwargs"]

Cache = SignatureCacheProtocol
# new_cache(build) -> the new cache, built first when `build`; None while unavailable or unbuilt.
NewCacheProvider = Callable[[bool], Cache | None]


Kwargs = Mapping[str, Any]
NO_KWARGS: Kwargs = MappingProxyType({})


def provenance_kwargs(model: object, scope: object, conversation_id: object) -> Kwargs:
    """The provenance keywords a caller gave (issue 13), for the new cache; none: `NO_KWARGS`.

    Only given ones are passed on, so a new cache built before issue 13 (a candidate) still
    serves every call that names no provenance.
    """
    if model is None and scope is None and conversation_id is None:
        return NO_KWARGS
    given = {"model": model, "scope": scope, "conversation_id": conversation_id}
    return {name: value for name, value in given.items() if value is not None}


# The store each repairable read looks in, for the legacy owner check.
_PEEK_STORES = {
    "get": "main",
    "get_tool_signature": "tool",
    "get_session_signature": "session",
    "get_session_signature_with_text": "session",
}
# Key-less reads: legacy names the entry behind its answer (`answer_provenance`) instead.
_UNKEYED = frozenset(
    {
        "get_last_signature",
        "get_last_signature_with_text",
        "get_recent_signature",
        "get_recent_signature_with_text",
    }
)
# New-cache refusals that settle a read: the entry exists and belongs elsewhere. A last/recent
# read naming no conversation ("conversation") still falls back to legacy, as the phase table says.
_SETTLED = frozenset({"family", "scope"})
# (found, stored owner, stored model) of a legacy entry.
LegacyEntry = tuple[bool, str | None, str | None]


class Sampler(Protocol):
    """Live consistency sampling as the router sees it (`sigcache.sampling.LiveSampler`)."""

    rate: float
    draw: Callable[[], float]  # a read is sampled when draw() < rate

    def submit(
        self,
        op: str,
        args: tuple[Any, ...],
        primary: CacheSide,
        value: Any,
        other: Any,
        kwargs: Kwargs = NO_KWARGS,
    ) -> None:
        """Queue one read: the primary's answer and the other's (ABSENT: not consulted)."""


class PhaseRouter:
    """Routes calls to the legacy and new caches as the flags say; counts each call once."""

    def __init__(
        self,
        legacy: Cache,
        new_cache: NewCacheProvider,
        flags: MigrationFeatureFlags,
        *,
        stats: MigrationStats | None = None,
        read_repair: bool = True,
        failure_policy: str = "log",
    ) -> None:
        self.legacy = legacy
        self._provide = new_cache
        self.flags = flags
        self.stats = stats or MigrationStats()
        self.read_repair = read_repair
        self.diagnose = True  # record per-call diagnostics (the facade: only while observed)
        self.sampler: Sampler | None = None  # live consistency sampling, where both are read
        self._shadow_log = ShadowLog(failure_policy != "ignore")
        self._local = threading.local()
        self._tally = legacy_tally(legacy)
        self._active = True  # False while the facade bypasses this router (mode off)
        # (new cache, (takes validated=, takes validated= and written_at=))
        self._validated: tuple[object, tuple[bool, bool]] = (None, (False, False))
        self._route = route_for(flags.effective)
        self.fast_legacy = False  # main get/set go straight to legacy, counted by its counters
        self.shadow: ShadowWriter | None = None  # DUAL_WRITE's new-cache writes, deferred
        self._defer = False  # see _refresh_defer
        self._shadow_clock: Callable[[], float] = time.time
        flags.subscribe(self._flags_changed)

    # -- routes -----------------------------------------------------------------------------

    def _flags_changed(self, flags: PhaseFlags) -> None:
        self.drain_shadow()  # queued writes land under the phase they were made in
        self._apply(route_for(flags), self._active)

    def set_active(self, active: bool) -> None:
        """Tell the router whether traffic reaches it (the facade's migration mode)."""
        self.drain_shadow()
        self._apply(self._route, active)

    # -- deferred shadow writes (sigcache.shadow) ---------------------------------------------

    def defer_shadow_writes(self, clock: Callable[[], float] | None) -> None:
        """Apply DUAL_WRITE's new-cache writes off the caller's path (`clock`: write times); None:
        inline again, after applying what is queued."""
        if clock is None:
            if self.shadow is not None:
                self.shadow.close()
                self.shadow = None
            return
        self._shadow_clock = clock
        if self.shadow is None:
            self.shadow = ShadowWriter(self._apply_shadow)

    def drain_shadow(self) -> None:
        """Apply every deferred write now, in this thread (before anything reads the new cache)."""
        shadow = self.shadow
        if shadow is not None:
            shadow.drain()

    def _new(self, build: bool) -> Cache | None:
        """The new cache, with every deferred write applied to it first."""
        shadow = self.shadow
        if shadow is not None:
            shadow.drain()
        return self._provide(build)

    def _apply_shadow(self, write: ShadowWrite) -> None:
        """One deferred write, counted as the inline write would have been (never raises)."""
        op, args, kwargs, written_at = write
        ok = False
        cache = self._provide(True)
        if cache is not None:
            try:
                ok = getattr(cache, op)(*args, validated=True, written_at=written_at, **kwargs)
                ok = ok is True
            except Exception as exc:  # a shadow failure is counted, never raised
                self._shadow_log.failure(CacheSide.NEW, op, type(exc).__name__)
        if not ok:
            self._shadow_log.failure(CacheSide.NEW, op, "write refused")
        self.stats.record_write({CacheSide.LEGACY: True, CacheSide.NEW: ok}, CacheSide.LEGACY, 0)

    def _apply(self, route: Route, active: bool) -> None:
        fast = route.legacy_only and self._tally is not None
        self.stats.derive_from(self._tally, on=fast and active)
        self._route, self._active, self.fast_legacy = route, active, fast
        self._refresh_defer()

    def _refresh_defer(self) -> None:
        """Whether a write's new-cache half may be deferred now: the route writes legacy, then
        the new cache, and the new cache's `set` took `validated` and `written_at` last time
        it was asked (its first write goes inline and asks)."""
        dual = self._route.write.targets == (CacheSide.LEGACY, CacheSide.NEW)
        self._defer = dual and self._validated[1][1]

    @property
    def route(self) -> Route:
        """The route in force."""
        return self._route

    def last_diagnostics(self) -> CallDiagnostics:
        """Diagnostics of this thread's last routed call (recorded while `diagnose` is on)."""
        diag: CallDiagnostics = getattr(self._local, "diag", NO_DIAG)
        return diag

    def _diag(self, diag: CallDiagnostics) -> None:
        if self.diagnose:
            self._local.diag = diag

    def _cache(self, side: CacheSide, build: bool = True) -> Cache | None:
        return self.legacy if side is CacheSide.LEGACY else self._new(build)

    def _attempt(
        self, side: CacheSide, op: str, args: tuple[Any, ...], kwargs: Kwargs = NO_KWARGS
    ) -> tuple[Any, bool]:
        """(result, raised) of `op(*args)` on one cache; an unavailable cache counts as raised.

        The provenance `kwargs` go to the new cache only: legacy ignores them anyway.
        """
        cache = self._cache(side)
        if cache is None:
            return None, True
        try:
            if kwargs and side is CacheSide.NEW:
                return getattr(cache, op)(*args, **kwargs), False
            return getattr(cache, op)(*args), False
        except Exception as exc:  # the caller never sees a cache's exception
            self._shadow_log.failure(side, op, type(exc).__name__)
            return None, True

    # -- writes -----------------------------------------------------------------------------

    def _write(
        self, op: str, args: tuple[Any, ...], signature: object, kwargs: Kwargs = NO_KWARGS
    ) -> bool:
        """Write to the route's caches; validation is left to the authoritative cache."""
        targets = self._route.write.targets
        if not targets:
            self._diag(NO_DIAG)
            return False
        first = targets[0]
        value, _ = self._attempt(first, op, args, kwargs)
        result = value is True
        shadow_writer = self.shadow
        if result and shadow_writer is not None and self._defer:
            # DUAL_WRITE's new-cache write, deferred (sigcache.shadow): counted when applied,
            # as one write to both caches. `_defer` holds once the cache took `written_at`.
            shadow_writer.submit((op, args, kwargs, self._shadow_clock()))
            if self.diagnose:
                self._local.diag = CallDiagnostics(first.value)
            return True
        if not result and not _valid(op, args, signature):
            return self._reject()  # the cache refused bad input: nothing was attempted, really
        attempted = {first: result}
        skipped = shadow = False
        for side in targets[1:]:
            if not result:
                skipped = True  # not attempted: never a failure
                continue
            ok = self._secondary(side, op, args, kwargs) is True
            attempted[side] = ok
            if not ok:
                shadow = True
                self._shadow_log.failure(side, op, "write refused")
        self.stats.record_write(attempted, first, int(skipped))
        if self.diagnose:
            self._local.diag = CallDiagnostics(first.value if result else None, shadow_error=shadow)
        return result

    def _secondary(
        self, side: CacheSide, op: str, args: tuple[Any, ...], kwargs: Kwargs = NO_KWARGS
    ) -> Any:
        """The second write, telling a new cache that can skip validation that it may."""
        if side is CacheSide.NEW:
            cache = self._new(True)
            if cache is not None and self._takes(cache)[0]:
                try:
                    return getattr(cache, op)(*args, validated=True, **kwargs)
                except Exception as exc:  # a shadow failure is counted, never raised
                    self._shadow_log.failure(side, op, type(exc).__name__)
                    return None
        return self._attempt(side, op, args, kwargs)[0]

    def _takes(self, cache: Cache | None = None) -> tuple[bool, bool]:
        """Whether the new cache's `set` takes (`validated`, `validated` and `written_at`),
        checked once per cache.

        A deferred write needs both: it was validated by legacy and happened earlier.
        """
        if cache is None:
            cache = self._provide(False)  # not `_new`: asking must not apply deferred writes
        known, takes = self._validated
        if cache is None or cache is known:
            return takes
        try:
            params = set(inspect.signature(cache.set).parameters)
        except (TypeError, ValueError):
            params = set()
        takes = ("validated" in params, {"validated", "written_at"} <= params)
        self._validated = (cache, takes)
        self._refresh_defer()
        return takes

    def _reject(self) -> bool:
        self.stats.record_rejected_write()
        self._diag(NO_DIAG)
        return False

    # -- reads ------------------------------------------------------------------------------

    def _tier(self, side: CacheSide) -> str | None:
        if side is CacheSide.LEGACY:
            return "legacy"
        read_tier = getattr(self._new(False), "read_tier", None)
        tier = read_tier() if callable(read_tier) else None
        return tier if isinstance(tier, str) else "new"

    def _read(
        self,
        op: str,
        args: tuple[Any, ...],
        owner_id: object = None,
        kwargs: Kwargs = NO_KWARGS,
    ) -> Any:
        route = self._route
        primary, fallback = route.read.primary, route.read.fallback
        if primary is None:
            self._diag(NO_DIAG)
            return None
        value, raised = self._attempt(primary, op, args, kwargs)
        if value is None and fallback is not None:
            return self._read_fallback(primary, fallback, op, args, owner_id, int(raised), kwargs)
        self.stats.record_primary(primary, value is not None, int(raised))
        if self.diagnose:
            if value is None:
                self._local.diag = CallDiagnostics(shadow_error=raised)
            elif primary is CacheSide.LEGACY and not raised:
                self._local.diag = LEGACY_HIT
            else:
                self._local.diag = CallDiagnostics(primary.value, self._tier(primary))
        sampler = self.sampler
        if sampler is not None and route.both_read and sampler.draw() < sampler.rate:
            sampler.submit(op, args, primary, value, ABSENT, kwargs)
        return value

    def _read_fallback(
        self,
        primary: CacheSide,
        fallback: CacheSide,
        op: str,
        args: tuple[Any, ...],
        owner_id: object,
        errors: int,
        kwargs: Kwargs = NO_KWARGS,
    ) -> Any:
        """After a primary miss: ask the fallback, repair the primary, count the read once.

        In NEW_PREFERRED (issue 13) a new-cache refusal for family or scope settles the read
        (legacy is not asked), and a legacy answer from another model family's entry is withheld;
        read repair never copies such an answer into the new cache (`_legacy_source`).
        """
        newer = primary is CacheSide.NEW
        if newer and not errors and ("model" in kwargs or "scope" in kwargs):
            refusal = self._new_refusal()
            if refusal in _SETTLED:
                return self._withhold(op, args, (primary, None), f"new_{refusal}", 0, kwargs)
        value, fallback_raised = self._attempt(fallback, op, args, kwargs)
        errors += fallback_raised
        hit = value is not None
        entry: LegacyEntry | None = None
        if hit and newer and kwargs.get("model") is not None:
            entry = self._legacy_entry(op, args)
            if entry is not None and _other_family(kwargs["model"], entry[2]):
                sides = (primary, fallback)
                return self._withhold(op, args, sides, "legacy_family", errors, kwargs, value)
        # The tier before the repair: repairing may read the answering cache again (L1 then).
        tier = self._tier(fallback) if hit and self.diagnose else None
        repaired = repair_failed = skipped = False
        repair = REPAIRS.get(op)
        if hit and repair is not None and self.read_repair:
            if newer and entry is None:
                entry = self._legacy_entry(op, args)
            source = self._legacy_source(entry, owner_id, kwargs) if newer else (True, None)
            if not source[0]:
                # Legacy matches owners and model families permissively: its answer may be
                # another owner's or family's entry, which the strict cache must never hold
                # under the caller's key.
                skipped = True
            else:
                repaired = self._repair(primary, fallback, op, repair, args, value, source[1])
                repair_failed = not repaired
        outcome = ReadOutcome(
            primary, False, fallback, hit, repaired, repair_failed, skipped, errors
        )
        self.stats.record_read(outcome)
        if self.diagnose:
            self._local.diag = CallDiagnostics(
                fallback.value if hit else None,
                tier,
                fallback=hit,
                read_repair=repaired,
                shadow_error=bool(errors) or repair_failed,
            )
        sampler = self.sampler
        if sampler is not None and not errors and sampler.draw() < sampler.rate:
            sampler.submit(op, args, primary, None, value, kwargs)
        return value

    def _withhold(
        self,
        op: str,
        args: tuple[Any, ...],
        sides: tuple[CacheSide, CacheSide | None],
        refusal: str,
        errors: int,
        kwargs: Kwargs,
        answer: Any = ABSENT,
    ) -> None:
        """Count a read whose fallback answer is withheld (`sides`: primary, fallback if asked)."""
        primary, asked = sides
        outcome = ReadOutcome(primary, False, asked, errors=errors, refusal=refusal)
        self.stats.record_read(outcome)
        self._diag(CallDiagnostics(shadow_error=bool(errors)) if errors else NO_DIAG)
        sampler = self.sampler
        if sampler is not None and not errors and sampler.draw() < sampler.rate:
            # Legacy's answer (asked by the sampler when `answer` is ABSENT) meets the same
            # provenance check there and is classified as the isolation it is.
            sampler.submit(op, args, primary, None, answer, kwargs)

    def _new_refusal(self) -> str | None:
        """Why the new cache refused this thread's last read on provenance; None: a plain miss."""
        refusal = getattr(self._new(False), "read_refusal", None)
        try:
            reason = refusal() if callable(refusal) else None
        except Exception:  # a diagnostic never breaks a read: treat it as a plain miss
            return None
        return reason if isinstance(reason, str) else None

    def _legacy_entry(self, op: str, args: tuple[Any, ...]) -> LegacyEntry | None:
        """(found, owner, model) of the legacy entry behind a fallback answer; None: unknown."""
        try:
            store = _PEEK_STORES.get(op)
            if store is not None:
                peek = getattr(self.legacy, "peek_provenance", None)
                if callable(peek):
                    found: LegacyEntry = peek(store, args[0])
                    return found
                peek_owner = getattr(self.legacy, "peek_owner", None)
                if callable(peek_owner):
                    present, owner = peek_owner(store, args[0])
                    return present, owner, None
            elif op in _UNKEYED:
                answered = getattr(self.legacy, "answer_provenance", None)
                if callable(answered):
                    behind = answered()
                    return (False, None, None) if behind is None else (True, *behind)
        except Exception as exc:  # an unknown entry only withholds nothing, never raises
            self._shadow_log.failure(CacheSide.LEGACY, f"{op} peek", type(exc).__name__)
        return None

    def _legacy_source(
        self, entry: LegacyEntry | None, owner_id: object, kwargs: Kwargs
    ) -> tuple[bool, str | None]:
        """(repairable, model) of legacy's entry for this read.

        Repairable when it was written by exactly the caller's owner and, if the caller named a
        model, not under another model family; the model is what legacy stored, so the copy in
        the new cache keeps its provenance (issue 13).
        """
        if entry is None:
            return bool(owner_id), None  # unknown cache: only owned callers, as before
        found, stored, model = entry
        if not found or (stored or None) != (owner_id or None):
            return False, None
        if _other_family(kwargs.get("model"), model):
            return False, None
        return True, model if isinstance(model, str) else None

    def _repair(
        self,
        missed: CacheSide,
        answered: CacheSide,
        op: str,
        repair: Callable[[Cache, Cache, tuple[Any, ...], Any, str | None], bool],
        args: tuple[Any, ...],
        value: object,
        model: str | None = None,
    ) -> bool:
        target, source = self._cache(missed), self._cache(answered)
        if target is None or source is None:
            return False
        try:
            return repair(target, source, args, value, model) is True
        except Exception as exc:  # a failed repair is a counted observation, not an error
            self._shadow_log.failure(missed, f"{op} read repair", type(exc).__name__)
            return False

    def _each(self, op: str, args: tuple[Any, ...] = ()) -> Any:
        """Run on every cache that exists; return the authoritative one's result."""
        order = self._route.each
        results: list[Any] = []
        for side in order:
            if self._cache(side, build=False) is None:
                continue
            value, _ = self._attempt(side, op, args)
            results.append(value if value is not None else 0)
        self._diag(CallDiagnostics(source=order[0].value if order else None))
        return results[0] if results else 0


def _other_family(wanted: object, held: object) -> bool:
    """Whether an entry's model is of another family than the read's (both named)."""
    return mismatch(want(wanted), held, None) == "family"


def _valid(op: str, args: tuple[Any, ...], signature: object) -> bool:
    """The adapter's own input check, run only after a refusal (to tell refusal from failure)."""
    key = args[0]
    if not isinstance(key, str) or not is_valid_signature(signature):
        return False
    if op == "set":
        return bool(normalize_thinking_text(key))
    if op == "cache_session_signature" and not isinstance(args[2], str | None):
        return False
    return bool(key)
