"""Seeded traffic generator: simulated conversations driving the real module API, recorded.

Clients behave as the callers of the replaced system do (origin-behaviour section 6): IDE clients
resend the whole history every turn (a main-cache read per past thinking block, then the session
and recent-signature fallbacks on a miss), Anthropic-format clients re-cache the signatures they
echo and recover tool signatures, a gateway writes `scid_` sessions. Time is virtual: think time
between turns, now and then a gap of hours (past the 3600 s TTL). Same seed and size, same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import heapq
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sigcache import signature_cache as api
from sigcache.recorder import Recorder, RecorderConfig

__all__ = ["DEFAULT_SIGNATURES", "SynthStats", "generate_recording", "run_generate"]

# The usable real signatures of shared/reference/real_signatures.jsonl (same filter, same order),
# shipped with the package so generation needs nothing outside it.
DEFAULT_SIGNATURES: Final = Path(__file__).resolve().parent / "data" / "signature_pool.jsonl.gz"
START: Final = 1_767_225_600.0  # 2026-01-01T00:00:00Z, so created_at is reproducible
_B64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_WORDS: Final = (
    *("the", "user", "wants", "me", "to", "check", "whether", "function", "file", "test", "error"),
    *("value", "return", "list", "call", "first", "then", "so", "because", "maybe", "need"),
    *("should", "look", "at", "this", "that", "code", "module", "import", "class", "config"),
    *("path", "string", "number", "loop", "index", "key", "cache", "signature", "request"),
    *("response", "think", "step", "plan", "fix", "bug", "edge", "case", "handle", "None"),
    *("empty", "ok", "let", "consider", "option", "approach", "better"),
)
_MODELS: Final = {
    "claude": ("claude-opus-4-5-thinking", "claude-sonnet-4-5", "claude-sonnet-4-6"),
    "gemini": ("gemini-3-pro-high", "gemini-2.5-flash"),
}
_OWNERS: Final = tuple(hashlib.md5(f"token-{i}".encode()).hexdigest() for i in range(3))
_TOOLS: Final = ("read_file", "run_terminal_cmd", "grep_search", "edit_file")
SWARM_AGENTS: Final = 300


class StopGeneration(Exception):
    """Raised inside the simulation once the requested number of events is reached."""


@dataclass(frozen=True, slots=True)
class SynthStats:
    """What a generation produced."""

    events: int
    distinct_texts: int
    conversations: int
    virtual_seconds: float
    bytes: int


@dataclass(slots=True)
class Conversation:
    """One simulated conversation of one client."""

    kind: str  # "ide" | "anthropic" | "gateway"
    worker: str
    owner: str | None
    family: str
    model: str
    session_id: str
    first_user: str
    turns_left: int
    wraps: bool  # reads send `<think>...</think>` around texts written bare
    drops_tool_signatures: bool
    base_signature: str  # the real signature this conversation's signatures vary
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (text, signature) history
    tools: list[str] = field(default_factory=list)  # tool ids in the history


class Traffic:
    """The simulation: a heap of client actions on a virtual clock, each a module-API call."""

    def __init__(self, rng: random.Random, signatures: dict[str, list[str]], limit: int) -> None:
        self.rng = rng
        self.signatures = signatures
        self.limit = limit
        self.now = START
        self.calls = 0
        self.worker = "synth:0:idle"
        self.texts: set[str] = set()
        self.conversations = 0
        self._heap: list[tuple[float, int, str, Conversation]] = []
        self._order = 0
        self._preambles = [self._words(self.rng.randint(520, 900)) for _ in range(3)]
        # Large recordings get one agent swarm: > 10,000 live blocks within an hour, so the
        # legacy LRU (capacity 10,000) evicts entries that are still read afterwards.
        self._swarm_at = limit // 2 if limit >= 50_000 else None
        self._swarmed = False

    def clock(self) -> float:
        """The virtual clock the cache and the recorder read."""
        return self.now

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One recorded module-API call; stops the simulation at the requested size."""
        if self.calls >= self.limit:
            raise StopGeneration
        self.calls += 1
        return fn(*args, **kwargs)

    def run(self, concurrency: int = 4) -> None:
        """Run conversations until the event limit is reached."""
        for _ in range(concurrency):
            self._schedule(self.now + self.rng.uniform(0, 30), "request", self._new_conversation())
        try:
            while self._heap:
                when, _, action, conv = heapq.heappop(self._heap)
                self.now = max(self.now, when)
                self.worker = conv.worker
                if action == "request":
                    self._request(conv)
                    self._schedule(self.now + self.rng.uniform(2, 40), "response", conv)
                else:
                    self._response(conv)
                    self._next_turn(conv)
        except StopGeneration:
            return

    def _schedule(self, when: float, action: str, conv: Conversation) -> None:
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, action, conv))

    def _next_turn(self, conv: Conversation) -> None:
        if self._swarm_at is not None and self.calls >= self._swarm_at:
            self._swarm_at, self._swarmed = None, True
            base = self.rng.choice(self.signatures["claude"])
            for _ in range(SWARM_AGENTS):
                agent = self._new_conversation(kind="agent", base=base)
                self._schedule(self.now + self.rng.uniform(0, 300), "request", agent)
        conv.turns_left -= 1
        if conv.turns_left <= 0 and conv.kind == "agent":
            return
        if conv.turns_left <= 0:
            self._schedule(self.now + self.rng.expovariate(1 / 20), "request",
                           self._new_conversation())  # fmt: skip
            return
        think = self.rng.lognormvariate(math.log(45), 0.8)
        if self.rng.random() < 0.04:  # the user comes back hours later: everything expired
            think = self.rng.uniform(3700, 6 * 3600)
        if conv.kind == "agent":  # agents never pause
            think = self.rng.uniform(10, 30)
        self._schedule(self.now + think, "request", conv)
        if self.rng.random() < 0.003:
            self.call(api.cleanup_expired)
        if self.rng.random() < 0.0002 and not self._swarmed:  # a clear must not hide the swarm
            self.call(api.clear)

    def _new_conversation(self, kind: str = "", base: str = "") -> Conversation:
        rng = self.rng
        self.conversations += 1
        kind = kind or rng.choices(("ide", "anthropic", "gateway"), (0.45, 0.4, 0.15))[0]
        family = "claude" if kind == "anthropic" or rng.random() < 0.7 else "gemini"
        first_user = f"task {self.conversations}: " + self._words(rng.randint(20, 200))
        messages = [{"role": "user", "content": first_user}]
        session = api.generate_session_fingerprint(messages)
        if kind == "gateway":
            session = "scid_" + "".join(rng.choices("0123456789abcdef", k=32))
        owner = None
        if kind == "ide" and rng.random() < 0.85:
            owner = _OWNERS[0] if rng.random() < 0.7 else rng.choice(_OWNERS[1:])
        turns = {"ide": (3, 30), "anthropic": (2, 14), "gateway": (2, 10), "agent": (40, 60)}[kind]
        return Conversation(
            kind=kind, worker=f"synth:{1000 + self.conversations % 4}:worker-{rng.randint(1, 8)}",
            owner=owner, family=family, model=rng.choice(_MODELS[family]), session_id=session,
            first_user=first_user, turns_left=rng.randint(*turns), wraps=rng.random() < 0.4,
            drops_tool_signatures=rng.random() < 0.2,
            base_signature=base or rng.choice(self.signatures[family]),
        )  # fmt: skip

    # -- requests: what the proxy looks up when the history comes back -------------------------

    def _request(self, conv: Conversation) -> None:
        if conv.kind == "agent":  # an agent resends only its latest block
            if conv.blocks:
                self.call(api.get_cached_signature, conv.blocks[-1][0])
        elif conv.kind == "ide":
            self._ide_request(conv)
        elif conv.kind == "anthropic":
            self._anthropic_request(conv)
        elif conv.blocks:  # gateway: only the latest assistant message's <think> text
            self.call(api.get_cached_signature, f"<think>{conv.blocks[-1][0]}</think>")
            if self.rng.random() < 0.3:
                self.call(api.get_session_signature_with_text, conv.session_id)
            if self.rng.random() < 0.1:
                self.call(api.get_recent_signature_with_text, 300, None, None)

    def _ide_request(self, conv: Conversation) -> None:
        messages = [{"role": "user", "content": conv.first_user}]
        for text, _ in conv.blocks:
            sent = f"<think>\n{text}\n</think>" if conv.wraps else text
            if self.call(api.get_cached_signature, sent, conv.owner) is not None:
                continue
            for level in api.generate_multi_level_fingerprint(messages).values():
                if self.call(api.get_session_signature, level) is not None:
                    break
            else:
                self.call(api.get_recent_signature, 300, "cursor", conv.owner)
            messages.append({"role": "assistant", "content": text[:80]})

    def _anthropic_request(self, conv: Conversation) -> None:
        for text, signature in conv.blocks:
            if self.call(api.get_cached_signature, text) is None and len(signature) >= 10:
                self.call(api.cache_signature, text, signature)
                self.call(api.cache_session_signature, conv.session_id, signature, text)
        if not conv.drops_tool_signatures:
            return
        for tool_id in conv.tools:
            if (
                self.call(api.get_session_signature, conv.session_id) is None
                and self.call(api.get_tool_signature, tool_id) is None
            ):
                self.call(api.get_last_signature)

    # -- responses: what the proxy caches while the new answer streams through -----------------

    def _response(self, conv: Conversation) -> None:
        rng = self.rng
        text = self._thinking()
        signature = self._signature(conv.base_signature)
        conv.blocks.append((text, signature))
        if conv.kind == "gateway":
            self.call(api.cache_session_signature, conv.session_id, signature, "")
            if rng.random() < 0.5:  # the IDE sanitizer path
                self.call(api.cache_signature, text, signature)
            return
        if conv.family == "gemini" and rng.random() < 0.3:  # signature before any thought text
            self.call(api.cache_session_signature, conv.session_id, signature)
        if conv.kind == "anthropic" and rng.random() < 0.03:  # the stream lost its signature
            found = self.call(api.get_last_signature)
            signature = found if isinstance(found, str) else signature
        self.call(api.cache_signature, text, signature, conv.model, conv.owner)
        if conv.kind == "ide":
            self.call(api.cache_session_signature, conv.session_id, signature, text)
        if rng.random() < 0.35:
            tool_id = self._tool_id(conv)
            conv.tools.append(tool_id)
            self.call(api.cache_tool_signature, tool_id, signature)

    def _tool_id(self, conv: Conversation) -> str:
        if conv.kind == "anthropic":
            return "toolu_01" + "".join(self.rng.choices(_B64[:62], k=22))
        name = self.rng.choice(_TOOLS)
        args = json.dumps({"path": f"src/mod{self.rng.randint(1, 60)}.py"}, sort_keys=True)
        return "call_" + hashlib.md5((name + args).encode()).hexdigest()[:24]

    # -- content ---------------------------------------------------------------------------------

    def _words(self, length: int) -> str:
        out = " ".join(self.rng.choices(_WORDS, k=length // 4 + 1))
        return out[:length].strip() or "x"

    def _thinking(self) -> str:
        length = int(min(6000, max(30, self.rng.lognormvariate(math.log(250), 0.8))))
        text = self._words(length)
        if self.rng.random() < 0.12:  # a long shared preamble: legacy prefix collisions
            text = self.rng.choice(self._preambles) + " " + text
        self.texts.add(text)
        return text

    def _signature(self, base: str) -> str:
        rng = self.rng
        # A fresh signature per block, sharing most bytes with a real one of the same model (real
        # ones share their header); it also lets gzip shrink the history resent every turn.
        cut = rng.randint(min(40, len(base) - 24), len(base) - 24)
        signature = base[:cut] + "".join(rng.choices(_B64[:62], k=24)) + base[cut + 24 :]
        if rng.random() < 0.02:
            return self._invalid(signature)
        return signature

    def _invalid(self, signature: str) -> str:
        kind = self.rng.randrange(4)
        if kind == 0:
            return signature[: self.rng.randint(8, 49)]  # too short
        if kind == 1:
            return "skip_thought_signature_validator"
        if kind == 2:  # a character outside the alphabet (log redaction, whitespace)
            at = self.rng.randrange(len(signature))
            return signature[:at] + self.rng.choice(" …!\n") + signature[at + 1 :]
        return signature[: self.rng.randint(50, len(signature) - 1)]  # truncated at capture


def load_signatures(path: Path) -> dict[str, list[str]]:
    """Real Claude and Gemini signatures of a usable size, in file order."""
    pools: dict[str, list[str]] = {"claude": [], "gemini": []}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            signature = row.get("signature")
            if not isinstance(signature, str):
                continue
            if row.get("provider") == "anthropic" and 200 <= len(signature) <= 3000:
                pools["claude"].append(signature)
            elif row.get("provider") == "gemini" and 100 <= len(signature) <= 6200:
                pools["gemini"].append(signature)
    if not pools["claude"] or not pools["gemini"]:
        raise ValueError(f"{path}: needs real Claude and Gemini signatures")
    return pools


def generate_recording(
    out: str | Path,
    *,
    events: int = 5_000,
    seed: int = 1,
    signatures_path: str | Path | None = None,
    created_at: str | None = None,
    concurrency: int = 4,
) -> SynthStats:
    """Write a recording of `events` module-API calls (overwrites `out`); same seed, same bytes."""
    out = Path(out)
    traffic = Traffic(random.Random(seed), load_signatures(Path(signatures_path or
                      DEFAULT_SIGNATURES)), events)  # fmt: skip
    config = RecorderConfig(
        source=f"harness.synth seed={seed} events={events}", record_latency=False,
        block_when_full=True, flush_interval=None, compresslevel=9, max_bytes=1 << 40,
    )  # fmt: skip
    out.unlink(missing_ok=True)
    api.reset_signature_cache(clock=traffic.clock)
    recorder = Recorder(out, config, clock=traffic.clock, worker=lambda: traffic.worker,
                        created_at=created_at)  # fmt: skip
    api.add_observer(recorder)
    try:
        traffic.run(concurrency)
    finally:
        recorder.close(timeout=None)
        api.reset_signature_cache()
    return SynthStats(events=recorder.stats().recorded, distinct_texts=len(traffic.texts),
                      conversations=traffic.conversations, virtual_seconds=traffic.now - START,
                      bytes=out.stat().st_size)  # fmt: skip


def run_generate(argv: Sequence[str] | None = None) -> int:
    """`generate --out PATH [--events N] [--seed S] [--signatures FILE] [--created-at ISO]`."""
    parser = argparse.ArgumentParser(prog="sigcache-harness generate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--signatures", type=Path, default=None)
    parser.add_argument("--created-at", default=None)
    args = parser.parse_args(argv)
    stats = generate_recording(
        args.out, events=args.events, seed=args.seed, signatures_path=args.signatures,
        created_at=args.created_at,
    )  # fmt: skip
    print(f"wrote {args.out}: {stats}")
    return 0
