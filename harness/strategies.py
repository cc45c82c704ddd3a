"""Hypothesis strategies for recordings: valid calls, events and whole recordings (format v1).

Results are never drawn: each drawn call list is played through a legacy ``SignatureCache`` on a
virtual clock, so every recorded result is what legacy answered (as in a recording made under
LEGACY_ONLY). The reader accepts what :func:`write_recording` writes, and the replayer runs it with
no errors and no A/A differences. Texts draw from a small pool, so reads hit, rewrites happen and
some texts share a 500-character prefix (legacy key collisions); time gaps sometimes pass the TTL.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from hypothesis import strategies as st

from harness.fixtures import START, SettableClock
from harness.replay_ops import call_legacy
from sigcache.keys import DEFAULT_KEY_PREFIX_LENGTH
from sigcache.legacy import SignatureCache
from sigcache.recording import RecordedEvent, RecordingHeader, RecordingWriter

__all__ = [
    "HEADER",
    "calls",
    "event_lists",
    "owners",
    "recorded_events",
    "recordings",
    "signatures",
    "texts",
    "write_recording",
]

Call = tuple[float, str, dict[str, Any]]  # (seconds since the previous call, op, args)

HEADER: Final = RecordingHeader(created_at="2026-01-01T00:00:00+00:00", source="hypothesis")
_B64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PREAMBLE: Final = ("shared system preamble " * 30)[:DEFAULT_KEY_PREFIX_LENGTH]
_TTL: Final = SignatureCache.DEFAULT_TTL_SECONDS
_TOOL_IDS: Final = ("toolu_01", "toolu_02")
_SESSION_IDS: Final = ("s1", "s2")
_counter = itertools.count()


def signatures() -> st.SearchStrategy[str]:
    """Valid signatures: 50-120 base64 characters."""
    return st.text(alphabet=_B64, min_size=50, max_size=120)


def owners() -> st.SearchStrategy[str | None]:
    """No owner or one of two, so reads cross owners now and then."""
    return st.sampled_from([None, "alice", "bob"])


def texts() -> st.SearchStrategy[str]:
    """Short thinking texts; some share the legacy key's 500-character prefix."""
    body = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=40).map(str.strip)
    plain = body.filter(bool)
    return st.one_of(plain, plain.map(lambda s: _PREAMBLE + s))


def _wrapped(text: str) -> st.SearchStrategy[str]:
    # Reads may send the text wrapped as clients do; normalisation must find the same entry.
    return st.sampled_from([text, f"<think>{text}</think>", f"  {text}\n"])


@st.composite
def _call(draw: st.DrawFn, pool: Sequence[str], sigs: Sequence[str]) -> tuple[str, dict[str, Any]]:
    text, sig, owner = draw(st.sampled_from(pool)), draw(st.sampled_from(sigs)), draw(owners())
    tool, session = draw(st.sampled_from(_TOOL_IDS)), draw(st.sampled_from(_SESSION_IDS))
    window = {"time_window_seconds": draw(st.sampled_from([60, 300])), "client_type": None}
    op = draw(st.sampled_from(_OPS))
    args: dict[str, dict[str, Any]] = {
        "cache_signature": {
            "thinking_text": text,
            "signature": sig,
            "model": None,
            "owner_id": owner,
        },
        "get_cached_signature": {"thinking_text": draw(_wrapped(text)), "owner_id": owner},
        "cache_tool_signature": {"tool_id": tool, "signature": sig, "owner_id": owner},
        "get_tool_signature": {"tool_id": tool, "owner_id": owner},
        "cache_session_signature": {
            "session_id": session,
            "signature": sig,
            "thinking_text": text,
            "owner_id": owner,
        },
        "get_session_signature": {"session_id": session, "owner_id": owner},
        "get_session_signature_with_text": {"session_id": session, "owner_id": owner},
        "get_recent_signature": {**window, "owner_id": owner},
        "get_recent_signature_with_text": {**window, "owner_id": owner},
        "invalidate": {"thinking_text": text},
    }
    return op, args.get(op, {})


# Writes and main-store reads dominate, as in real traffic; admin ops are rare.
_OPS: Final = (
    *("cache_signature",) * 4, *("get_cached_signature",) * 4, "cache_tool_signature",
    "get_tool_signature", "cache_session_signature", "get_session_signature",
    "get_session_signature_with_text", "get_last_signature", "get_last_signature_with_text",
    "get_recent_signature", "get_recent_signature_with_text", "invalidate", "clear",
    "cleanup_expired",
)  # fmt: skip


def _gaps() -> st.SearchStrategy[float]:
    """Seconds between calls: mostly short, sometimes past the legacy TTL."""
    short = st.integers(0, 30_000).map(lambda ms: ms / 1000)
    return st.one_of(short, short, short, st.just(_TTL + 1.0))


def calls(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[list[Call]]:
    """Call lists (gap, op, args) over a small pool of texts and signatures."""

    @st.composite
    def build(draw: st.DrawFn) -> list[Call]:
        pool = draw(st.lists(texts(), min_size=1, max_size=5, unique=True))
        sigs = draw(st.lists(signatures(), min_size=1, max_size=3, unique=True))
        size = draw(st.integers(min_size, max_size))
        return [(draw(_gaps()), *draw(_call(pool, sigs))) for _ in range(size)]

    return build()


def play(sequence: Sequence[Call]) -> list[RecordedEvent]:
    """Events of a call list, with the results a fresh legacy cache returns (virtual time)."""
    clock = SettableClock()
    legacy = SignatureCache(clock=clock)
    events, t = [], 0.0
    for seq, (gap, op, args) in enumerate(sequence):
        t = round(t + gap, 3)
        clock.set(START + t)  # exactly the time the replayer will set for this event
        result = call_legacy(legacy, op, args)
        events.append(RecordedEvent(seq, t, op, args, result, "hypothesis", "LEGACY_ONLY", 1.0))
    return events


def event_lists(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[list[RecordedEvent]]:
    """Whole recordings' events, results as legacy answered them."""
    return calls(min_size, max_size).map(play)


def recorded_events() -> st.SearchStrategy[RecordedEvent]:
    """One valid event (taken from a generated recording, so its result is legacy's answer)."""
    return event_lists(1, 10).flatmap(st.sampled_from)


def write_recording(
    path: str | Path, events: Sequence[RecordedEvent], header: RecordingHeader = HEADER
) -> Path:
    """Write events as a recording (gzip when the name ends in .gz); returns the path."""
    with RecordingWriter(path, header) as writer:
        for event in events:
            writer.write(event)
    return Path(path)


def recordings(
    directory: str | Path, min_size: int = 1, max_size: int = 40
) -> st.SearchStrategy[Path]:
    """Recording files under `directory` (plain or gzip), each a fresh name."""

    def write(events: list[RecordedEvent], gz: bool) -> Path:
        name = f"recording-{next(_counter)}.jsonl" + (".gz" if gz else "")
        return write_recording(Path(directory) / name, events)

    return st.builds(write, event_lists(min_size, max_size), st.booleans())
