"""Seeded traffic generator: simulated conversations driving the real module API, recorded.

Clients behave as the callers of the replaced system do (origin-behaviour section 6): IDE clients
resend the whole history every turn (a main-cache read per past thinking block, then the session
and recent-signature fallbacks on a miss), Anthropic-format clients re-cache the signatures they
echo and recover tool signatures, a gateway writes `scid_` sessions. Time is virtual: think time
between turns, now and then a gap of hours (past the 3600 s TTL). Same seed and size, same bytes.

Profiles: `provenance` (the default) adds what callers that know a signature's provenance pass
(model, scope, conversation id) and what damages provenance in real traffic: model-family
switches, account moves, rewritten tool ids, aborted streams (`harness.synth_provenance`).
`origin` is the replaced system's callers alone, byte for byte what the generator wrote before.
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

from harness import synth_provenance as prov
from sigcache import signature_cache as api
from sigcache.keys import is_valid_signature
from sigcache.provenance import TOOL_ID_MAX_LENGTH
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

    def describe(self) -> str:
        """One line for a person: counts, the virtual time span and the file's size."""
        return (
            f"{self.events:,} events, {self.distinct_texts:,} distinct texts, "
            f"{self.conversations:,} conversations over {self.virtual_seconds / 3600:.1f} "
            f"virtual hours, {self.bytes / 1e6:.2f} MB"
        )


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
    # Provenance (profile "provenance" only; harness.synth_provenance).
    aware: bool = False  # its call sites pass model, scope and conversation id
    conversation_id: str | None = None
    scope: str | None = None  # the provider account the proxy pinned it to
    switch_turn: int | None = None  # the turn at which the user switches model family
    turn: int = 0
    long_tool_ids: bool = False  # a CLI client: Gemini tool ids carry `__thought__<sig>`
    # (text, cut signature, model) of an aborted stream, which the retried request re-sends
    resend_cut: tuple[str, str, str] | None = None

    def kw(self, *, model: bool = True) -> dict[str, Any]:
        """The provenance keywords its call sites pass (none from an unaware caller)."""
        if not self.aware:
            return {}
        found: dict[str, Any] = {"model": self.model} if model else {}
        if self.scope is not None:
            found["scope"] = self.scope
        if self.conversation_id is not None:
            found["conversation_id"] = self.conversation_id
        return found


class Traffic:
    """The simulation: a heap of client actions on a virtual clock, each a module-API call."""

    def __init__(
        self,
        rng: random.Random,
        signatures: dict[str, list[str]],
        limit: int,
        *,
        profile: str = "origin",
        prov_rng: random.Random | None = None,
    ) -> None:
        self.rng = rng
        # Provenance draws come from their own stream: the origin profile's draws, hence its
        # bytes, stay exactly what they were before provenance existed.
        self.provenance = profile == "provenance"
        self.prov = prov_rng or random.Random(0)
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
        conv = Conversation(
            kind=kind, worker=f"synth:{1000 + self.conversations % 4}:worker-{rng.randint(1, 8)}",
            owner=owner, family=family, model=rng.choice(_MODELS[family]), session_id=session,
            first_user=first_user, turns_left=rng.randint(*turns), wraps=rng.random() < 0.4,
            drops_tool_signatures=rng.random() < 0.2,
            base_signature=base or rng.choice(self.signatures[family]),
        )  # fmt: skip
        if self.provenance:
            self._add_provenance(conv)
        return conv

    def _add_provenance(self, conv: Conversation) -> None:
        p = self.prov
        conv.aware = p.random() < prov.AWARE_RATE
        if conv.kind == "gateway":  # the gateway's session is "scid_" + the conversation id
            conv.conversation_id = conv.session_id.removeprefix("scid_")
        elif p.random() < prov.CONVERSATION_ID_RATE[conv.kind]:
            conv.conversation_id = prov.conversation_id(p)
        if p.random() < prov.SCOPE_RATE:
            conv.scope = p.choice(prov.scopes_for(conv.owner))
        if conv.kind == "agent":  # a swarm shares one Claude signature base: Claude models
            if conv.family != "claude":
                conv.family, conv.model = "claude", p.choice(_MODELS["claude"])
            return
        if conv.kind == "anthropic" and p.random() < prov.ANTHROPIC_GEMINI_RATE:
            self._set_family(conv, "gemini")
        if p.random() < prov.FAMILY_SWITCH_RATE and conv.turns_left >= 3:
            conv.switch_turn = p.randint(2, conv.turns_left)
        conv.long_tool_ids = conv.kind == "ide" and p.random() < prov.LONG_TOOL_ID_RATE

    def _set_family(self, conv: Conversation, family: str) -> None:
        conv.family = family
        conv.model = self.prov.choice(_MODELS[family])
        conv.base_signature = self.prov.choice(self.signatures[family])

    def _next_request(self, conv: Conversation) -> None:
        """What changes between two requests of a conversation, before the proxy sees it."""
        p = self.prov
        conv.turn += 1
        if conv.resend_cut is not None:  # the retried request's stream re-caches the cut block
            text, cut, model = conv.resend_cut
            conv.resend_cut = None
            self.call(api.cache_signature, text, cut, model, conv.owner, **conv.kw(model=False))
        if conv.turn == conv.switch_turn:  # the user picks a model of the other family
            self._set_family(conv, "gemini" if conv.family == "claude" else "claude")
        if conv.scope is not None and p.random() < prov.SCOPE_ROTATION_RATE:
            others = [s for s in prov.scopes_for(conv.owner) if s != conv.scope]
            conv.scope = p.choice(others)  # a rate limit moved it to another account

    # -- requests: what the proxy looks up when the history comes back -------------------------

    def _request(self, conv: Conversation) -> None:
        if self.provenance:
            self._next_request(conv)
        kw = conv.kw()
        if conv.kind == "agent":  # an agent resends only its latest block
            if conv.blocks:
                self.call(api.get_cached_signature, conv.blocks[-1][0], **kw)
        elif conv.kind == "ide":
            self._ide_request(conv)
        elif conv.kind == "anthropic":
            self._anthropic_request(conv)
        elif conv.blocks:  # gateway: only the latest assistant message's <think> text
            self.call(api.get_cached_signature, f"<think>{conv.blocks[-1][0]}</think>", **kw)
            if self.rng.random() < 0.3:
                self.call(api.get_session_signature_with_text, conv.session_id, **kw)
            if self.rng.random() < 0.1:
                self.call(api.get_recent_signature_with_text, 300, None, None, **kw)

    def _ide_request(self, conv: Conversation) -> None:
        kw = conv.kw()
        messages = [{"role": "user", "content": conv.first_user}]
        for text, _ in conv.blocks:
            sent = f"<think>\n{text}\n</think>" if conv.wraps else text
            if self.call(api.get_cached_signature, sent, conv.owner, **kw) is not None:
                continue
            for level in api.generate_multi_level_fingerprint(messages).values():
                if self.call(api.get_session_signature, level, **kw) is not None:
                    break
            else:
                self.call(api.get_recent_signature, 300, "cursor", conv.owner, **kw)
            messages.append({"role": "assistant", "content": text[:80]})
        if self.provenance and conv.tools and self.prov.random() < prov.TOOL_READ_RATE:
            # The tool result of the latest call comes back: recover that call's signature.
            self.call(api.get_tool_signature, self._sent_tool_id(conv.tools[-1]), **kw)

    def _sent_tool_id(self, tool_id: str) -> str:
        """The id as the client sends it back: rewritten now and then, cut when too long."""
        if len(tool_id) > TOOL_ID_MAX_LENGTH or self.prov.random() < prov.REWRITE_RATE:
            return prov.rewrite_tool_id(self.prov, tool_id)
        return tool_id

    def _anthropic_request(self, conv: Conversation) -> None:
        kw = conv.kw()
        model = conv.model if conv.aware else None
        for text, signature in conv.blocks:
            if self.call(api.get_cached_signature, text, **kw) is None and len(signature) >= 10:
                self.call(api.cache_signature, text, signature, model, None,
                          **conv.kw(model=False))  # fmt: skip
                self.call(api.cache_session_signature, conv.session_id, signature, text, **kw)
        if not conv.drops_tool_signatures:
            return
        for tool_id in conv.tools:
            sent = self._sent_tool_id(tool_id) if self.provenance else tool_id
            if (
                self.call(api.get_session_signature, conv.session_id, **kw) is None
                and self.call(api.get_tool_signature, sent, **kw) is None
            ):
                self.call(api.get_last_signature, **kw)

    # -- responses: what the proxy caches while the new answer streams through -----------------

    def _response(self, conv: Conversation) -> None:
        rng = self.rng
        kw, more = conv.kw(), conv.kw(model=False)
        model = conv.model if conv.aware else None
        text = self._thinking()
        signature = self._signature(conv.base_signature)
        conv.blocks.append((text, signature))
        if conv.kind == "gateway":
            self.call(api.cache_session_signature, conv.session_id, signature, "", **kw)
            if rng.random() < 0.5:  # the IDE sanitizer path
                self.call(api.cache_signature, text, signature, model, None, **more)
            return
        if conv.family == "gemini" and rng.random() < 0.3:  # signature before any thought text
            self.call(api.cache_session_signature, conv.session_id, signature, **kw)
        if conv.kind == "anthropic" and rng.random() < 0.03:  # the stream lost its signature
            found = self.call(api.get_last_signature, **kw)
            signature = found if isinstance(found, str) else signature
        self._cache_block(conv, text, signature)
        if conv.kind == "ide":
            self.call(api.cache_session_signature, conv.session_id, signature, text, **kw)
        if rng.random() < 0.35:
            tool_id = self._tool_id(conv, signature)
            conv.tools.append(tool_id)
            self.call(api.cache_tool_signature, tool_id, signature, **kw)

    def _cache_block(self, conv: Conversation, text: str, signature: str) -> None:
        """The streaming writer's main write; now and then the stream aborted (provenance)."""
        more = conv.kw(model=False)
        aborted = (
            self.provenance
            and self.prov.random() < prov.ABORTED_STREAM_RATE
            and is_valid_signature(signature)
        )
        if not aborted:
            self.call(api.cache_signature, text, signature, conv.model, conv.owner, **more)
            return
        cut = prov.cut_signature(self.prov, signature)
        if self.prov.random() < 0.5:  # cached at the abort, then the resumed stream's whole one
            self.call(api.cache_signature, text, cut, conv.model, conv.owner, **more)
            self.call(api.cache_signature, text, signature, conv.model, conv.owner, **more)
        else:  # the whole one now; the retried request re-sends the cut block (_next_request)
            self.call(api.cache_signature, text, signature, conv.model, conv.owner, **more)
            conv.resend_cut = (text, cut, conv.model)

    def _tool_id(self, conv: Conversation, signature: str) -> str:
        # Claude upstreams name calls `toolu_01...`; for Gemini the proxy makes `call_<24 hex>`
        # (generate_tool_call_id), and CLI clients get it with `__thought__<sig>` appended.
        if conv.kind == "anthropic" and (conv.family == "claude" or not self.provenance):
            return "toolu_01" + "".join(self.rng.choices(_B64[:62], k=22))
        name = self.rng.choice(_TOOLS)
        args = json.dumps({"path": f"src/mod{self.rng.randint(1, 60)}.py"}, sort_keys=True)
        tool_id = "call_" + hashlib.md5((name + args).encode()).hexdigest()[:24]
        if conv.long_tool_ids and conv.family == "gemini":
            return prov.encoded_tool_id(tool_id, signature)
        return tool_id

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
    profile: str = "provenance",
) -> SynthStats:
    """Write a recording of `events` module-API calls (overwrites `out`); same seed, same bytes.

    `profile`: "provenance" (callers pass model, scope and conversation id, and the traffic
    crosses families, accounts and conversations) or "origin" (the replaced system's callers).
    """
    if profile not in prov.PROFILES:
        raise ValueError(f"unknown profile {profile!r} (known: {', '.join(prov.PROFILES)})")
    out = Path(out)
    pools = load_signatures(Path(signatures_path or DEFAULT_SIGNATURES))
    traffic = Traffic(random.Random(seed), pools, events, profile=profile,
                      prov_rng=random.Random(f"provenance:{seed}"))  # fmt: skip
    # The origin profile's source line is what it always was: its bytes are unchanged.
    source = f"harness.synth seed={seed} events={events}"
    if profile != "origin":
        source += f" profile={profile}"
    config = RecorderConfig(
        source=source, record_latency=False,
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
    """`generate --out PATH [--events N] [--seed S] [--profile P] [--signatures FILE]
    [--created-at ISO]`."""
    parser = argparse.ArgumentParser(prog="sigcache-harness generate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--signatures", type=Path, default=None)
    parser.add_argument("--created-at", default=None)
    parser.add_argument("--profile", choices=prov.PROFILES, default="provenance")
    args = parser.parse_args(argv)
    stats = generate_recording(
        args.out, events=args.events, seed=args.seed, signatures_path=args.signatures,
        created_at=args.created_at, profile=args.profile,
    )  # fmt: skip
    print(f"wrote {args.out}: {stats.describe()}")
    return 0
