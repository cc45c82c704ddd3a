"""Replay a recording under each phase: fresh stacks on one virtual clock, a legacy control, A/A.

One pass over the recording feeds every event, in order, to one stack per phase (a `CacheFacade`
with an empty temporary L2, migration mode on, started in that phase), to a plain legacy control and
to a second legacy cache (the A/A check). Reads are classified by `harness.compare`; every event
becomes one row per phase in a columnar results file. Memory stays flat in the recording's length:
events stream from the file and rows stream to Parquet in batches.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.compare import Observation, Oracle, ReadFacts, classify
from harness.replay_ops import OPS
from harness.results import ResultsWriter
from harness.run_state import Diagnostics, PhaseStack, build_stack
from sigcache.keys import is_valid_signature, legacy_key, normalize_thinking_text, short_hash
from sigcache.legacy import SignatureCache
from sigcache.migration_config import MigrationConfig
from sigcache.phases import MigrationPhase
from sigcache.recording import RecordedEvent, RecordingHeader, read_recording
from sigcache.routing import CallDiagnostics

__all__ = ["ReplayOptions", "ReplayOutcome", "replay"]

ALL_PHASES = tuple(MigrationPhase)
_EPOCH = 1_700_000_000.0  # virtual start; only differences between event times matter
# Writes older than the longest TTL of any cache under test cannot be served legitimately, so the
# oracle forgets them: its memory follows the live window, not the recording's length. A cache
# that still serves one is reported `foreign` (never_written), which it is in effect.
_ORACLE_HORIZON = 2 * max(MigrationConfig().new_l2_ttl_seconds, SignatureCache.DEFAULT_TTL_SECONDS)
_PRUNE_EVERY = 20_000
# The collector's thresholds while a replay runs. With the default (700, 10, 10) the large
# recording's replay spent 1.9 s of 20 s CPU in 2,000 collections, 1.4 s of it in 15 full ones
# (~90 ms each, inside the timed call that triggered them); with these, 0.7 s and one full
# collection, the same peak RSS. Young cycles are still collected, every 10,000 allocations.
_REPLAY_GC_THRESHOLDS = (10_000, 10, 10)


class VirtualClock:
    """The replay clock: set to each event's recorded time before the event runs."""

    def __init__(self, now: float = _EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to replay: phases, the candidate new cache, where results go."""

    phases: Sequence[MigrationPhase] = ALL_PHASES
    new_cache_factory: Callable[..., Any] | None = None
    results_path: Path | None = None
    skip_bad_lines: bool = False
    progress: Callable[[int], None] | None = None  # called with the number of events done


@dataclass(slots=True)
class ReplayOutcome:
    """What a replay produced: the header, event count, results file, skipped lines."""

    header: RecordingHeader
    events: int
    results_path: Path
    skipped_lines: int = 0
    phases: list[str] = field(default_factory=list)
    # Per phase: the new cache's numeric stats at the end of its replay (PhaseStack).
    new_cache_stats: dict[str, dict[str, int | float]] = field(default_factory=dict)


class _MissReasons:
    """Why the legacy control misses a text it was given: expiry, prefix collision or eviction."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        # legacy key -> (normalised text last written there, when)
        self._slot_owner: dict[str, tuple[str, float]] = {}

    def note_write(self, text: object, t: float) -> None:
        if isinstance(text, str):
            normalized = normalize_thinking_text(text)
            if normalized:
                self._slot_owner[legacy_key(normalized)] = (normalized, t)

    def forget(self) -> None:
        self._slot_owner.clear()

    def prune(self, before: float) -> None:
        """Forget slots written before `before`: legacy has expired them anyway."""
        stale = [key for key, (_, t) in self._slot_owner.items() if t < before]
        for key in stale:
            del self._slot_owner[key]

    def reason(self, oracle: Oracle, text: object, owner: Any, now: float) -> str | None:
        if not isinstance(text, str):
            return None
        normalized = normalize_thinking_text(text)
        if not normalized:
            return None
        slot = self._slot_owner.get(legacy_key(normalized))
        if slot is not None and slot[0] != normalized:
            return "prefix_collision"
        times = [
            t
            for sig in oracle.signatures_for("main", text, owner)
            for t in oracle.write_times("main", text, owner, sig)
        ]
        if not times:
            return None
        return "expiry" if now - max(times) > self._ttl else "eviction"


LegacyCalls = Mapping[str, Callable[..., Any]]  # recorded op -> a legacy cache's bound method


def _legacy_calls(cache: SignatureCache) -> LegacyCalls:
    """Each recorded op's method on a plain legacy cache, bound once (as `call_legacy` calls)."""
    return {op: getattr(cache, spec.legacy_method) for op, spec in OPS.items()}


def _observe(cache: LegacyCalls, op: str, args: Mapping[str, Any]) -> Observation:
    """Call a plain legacy cache (the control, the A/A twin) and time it."""
    start = time.perf_counter()
    try:
        value = cache[op](**args)
    except Exception as exc:  # a control's errors are findings too (the A/A check reports them)
        return Observation(
            None, f"{type(exc).__name__}: {exc}", (time.perf_counter() - start) * 1e6
        )
    return Observation(_as_answer(value), None, (time.perf_counter() - start) * 1e6)


def _as_answer(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2:
        return (value[0], value[1])
    return value


def _record_write(oracle: Oracle, misses: _MissReasons, event: RecordedEvent) -> None:
    spec = OPS[event.op]
    key = event.args.get(spec.key_arg or "")
    signature = event.args.get("signature")
    if not isinstance(key, str) or not key or not is_valid_signature(signature):
        return
    assert isinstance(signature, str)
    args = event.args
    oracle.record_write(
        spec.store or "main",
        key,
        signature,
        args.get("owner_id"),
        event.t,
        model=args.get("model"),
        conversation=args.get("conversation_id"),
        scope=args.get("scope"),
    )
    if spec.store == "main":
        misses.note_write(key, event.t)


def _facts(
    oracle: Oracle,
    event: RecordedEvent,
    stack: Observation,
    control: Observation,
    miss_reason: str | None,
) -> ReadFacts:
    spec = OPS[event.op]
    args = event.args
    owner, model = args.get("owner_id"), args.get("model")
    if spec.key_arg is not None:
        key = args.get(spec.key_arg)
        return oracle.facts(
            spec.oracle_store or "main",
            str(key),
            owner,
            stack,
            control,
            miss_reason=miss_reason,
            model=model,
            scope=args.get("scope"),
        )
    return oracle.unkeyed_facts(
        spec.oracle_store or "main",
        owner,
        stack,
        control,
        model=model,
        conversation=args.get("conversation_id"),
        scope=args.get("scope"),
    )


def _classify(
    oracle: Oracle,
    event: RecordedEvent,
    stack: Observation,
    control: Observation,
    diag: CallDiagnostics | Diagnostics,
    facts: ReadFacts,
) -> tuple[str, str | None]:
    """Classify one read, given the oracle's facts about it (`_facts`). The oracle judges what
    the new cache answered; an answer the stack took from the legacy cache is legacy behaviour
    (permissive owners included), judged against the control, so a phase still reading legacy
    is not failed for what legacy always did."""
    if diag.source == "legacy":
        facts = replace(facts, stack_answer_legitimate=True, foreign_reason=None)
    cls, reason = classify(stack, control, facts)
    if cls == "legacy_only_hit" and reason is None and diag.shadow_error:
        reason = "new_cache_error"  # the adapter turned the new cache's failure into a miss
    if cls == "value_mismatch" and reason is None and diag.source == "legacy":
        reason = _legacy_crossing(oracle, event, stack)
    if cls == "match" and facts.control_crossed not in (None, "no_conversation"):
        # (A read naming no conversation is not a crossing in itself: only the new cache's
        # refusal of it is reported, as isolation.)
        reason = f"legacy_crossed_{facts.control_crossed}"
    return cls, reason


def _legacy_crossing(oracle: Oracle, event: RecordedEvent, stack: Observation) -> str | None:
    """`legacy_crossed_<what>` when the stack's legacy cache answered a last/recent read with
    a signature of another owner, family, scope or conversation (a finding: harness.compare)."""
    spec = OPS[event.op]
    if spec.key_arg is not None:
        return None
    args = event.args
    crossed = oracle.unkeyed_crossing(
        spec.oracle_store or "main",
        args.get("owner_id"),
        stack.value,
        model=args.get("model"),
        conversation=args.get("conversation_id"),
        scope=args.get("scope"),
    )
    return None if crossed in (None, "no_conversation") else f"legacy_crossed_{crossed}"


def _text_hash(event: RecordedEvent) -> str | None:
    spec = OPS[event.op]
    key = event.args.get(spec.key_arg or "")
    return short_hash(key) if isinstance(key, str) and key else None


def _run_event(
    event: RecordedEvent,
    stacks: Sequence[PhaseStack],
    control: LegacyCalls,
    aa: LegacyCalls,
    oracle: Oracle,
    misses: _MissReasons,
    writer: ResultsWriter,
    now: float,
) -> None:
    op, args = event.op, event.args
    spec = OPS[op]
    control_obs = _observe(control, op, args)
    aa_obs = _observe(aa, op, args)
    is_read = spec.kind == "read"
    if spec.kind == "write":
        _record_write(oracle, misses, event)
    elif op == "clear":
        misses.forget()
    miss_reason = None
    if is_read and spec.store == "main" and not control_obs.hit:
        miss_reason = misses.reason(oracle, args.get("thinking_text"), args.get("owner_id"), now)
    # Columns shared by every phase's row (results.EVENT_COLUMNS), computed once per event.
    recorded = _as_answer(event.result)
    under_legacy = event.phase == "LEGACY_ONLY"
    shared = (
        event.seq,
        event.t,
        op,
        spec.kind,
        spec.store,
        control_obs.hit,
        aa_obs.value == control_obs.value,
        control_obs.value == recorded if under_legacy else None,
        control_obs.latency_us,
        _text_hash(event),
    )
    # A read's class depends on the event, the stack's answer and its diagnostics only; stacks
    # answering alike (most do) share one classification, so each event classifies once or twice.
    classes: dict[object, tuple[str, str | None]] = {}
    # The oracle's facts depend on the stack's answer alone, not on where the stack found it:
    # stacks answering alike from different tiers share them.
    facts: dict[tuple[object, bool], ReadFacts] = {}
    rows = []
    for stack in stacks:
        error = None
        try:
            value = _as_answer(stack.call(op, args))
        except Exception as exc:  # the stack's errors are findings, never crashes of the replay
            value, error = None, f"{type(exc).__name__}: {exc}"
        diag = stack.call_diagnostics()
        cls = reason = None
        if is_read:
            # Answers are hashable: the oracle looks every answered signature up by value.
            found = classes.get((value, error, diag))
            if found is None:
                stack_obs = Observation(value, error, stack.latency_us)
                known = facts.get((value, error is None))
                if known is None:
                    known = _facts(oracle, event, stack_obs, control_obs, miss_reason)
                    facts[(value, error is None)] = known
                found = _classify(oracle, event, stack_obs, control_obs, diag, known)
                classes[(value, error, diag)] = found
            cls, reason = found
        rows.append(  # results.PHASE_COLUMNS
            (
                stack.name,
                cls,
                reason,
                error is None and value is not None,
                value == recorded if under_legacy else None,
                diag.source,
                diag.tier,
                diag.fallback,
                diag.read_repair,
                diag.shadow_error,
                error,
                stack.latency_us,
            )
        )
    writer.add_event(shared, rows)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds for the replay's duration (restored after)."""
    previous = gc.get_threshold()
    if previous[0] and previous[0] < _REPLAY_GC_THRESHOLDS[0]:  # 0: the collector is off
        gc.set_threshold(*_REPLAY_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def replay(recording: Path, options: ReplayOptions | None = None) -> ReplayOutcome:
    """Replay a recording under each requested phase; write per-event results to Parquet."""
    options = options or ReplayOptions()
    clock = VirtualClock()
    oracle = Oracle()
    control = SignatureCache(clock=clock)
    aa = SignatureCache(clock=clock)
    misses = _MissReasons(SignatureCache.DEFAULT_TTL_SECONDS)
    results_path = options.results_path or Path(tempfile.mkdtemp()) / "results.parquet"
    with ExitStack() as exits:
        exits.enter_context(_fewer_collections())
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="sigcache-replay-")))
        stacks = [
            exits.enter_context(build_stack(phase, workdir, clock, options.new_cache_factory))
            for phase in options.phases
        ]
        writer = exits.enter_context(ResultsWriter(results_path))
        control_calls, aa_calls = _legacy_calls(control), _legacy_calls(aa)
        header, reader = read_recording(recording, skip_bad_lines=options.skip_bad_lines)
        exits.callback(reader.close)
        count = 0
        for event in reader:
            clock.now = _EPOCH + event.t
            _run_event(event, stacks, control_calls, aa_calls, oracle, misses, writer, clock.now)
            count += 1
            if count % _PRUNE_EVERY == 0:
                oracle.prune(event.t - _ORACLE_HORIZON)
                misses.prune(event.t - SignatureCache.DEFAULT_TTL_SECONDS)
            if options.progress is not None and count % 1000 == 0:
                options.progress(count)
        skipped = reader.skipped_lines
        # Before the stacks close: what the new cache of each phase counted over the replay.
        stats = {stack.phase.name: stack.new_cache_stats() for stack in stacks}
    names = [p.name for p in options.phases]
    return ReplayOutcome(header, count, results_path, skipped, names, stats)
