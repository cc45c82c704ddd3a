"""The Redis L2's hot reads (GET, MGET) on pooled connections, without redis-py's client layer.

Why (2026-11, redis-py 8.1, a 3 KB value, localhost): `Redis.get()` took ~110 µs, of which
~55 µs was the client layer around the command: per call the pool takes its lock, polls the
socket (`can_read`, a select system call), records observability counters and dispatches
events, and the retry wrapper builds closures; packing, `sendall` and parsing the reply took
the rest. An L2 hit of the layered cache adds its own work to whatever the GET costs
(normalise, SHA-256, decode, L1 promotion: ~10 µs hot, 25-40 µs with the caches cold after the
socket wait), so on the client layer it measured 1.4-1.5x a bare `Redis.get()`. Here a read
borrows a connection kept connected in a small free list and sends a packed command on it.

Semantics are redis-py's own for one attempt: the connection connects lazily, `socket_timeout`
bounds each reply, any error disconnects it (the next use reconnects). A connection-level error
also disconnects every idle one (after a server restart they are all dead). Connections are
taken from the client's pool once and never handed back, so they count against its
`max_connections`; the free list grows to the number of threads reading at once. After a fork
the child starts with an empty list (the pool reopens its own); `close()` disconnects them all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sigcache import forksafe

__all__ = ["DirectReads"]


class DirectReads:
    """GET and MGET on connections borrowed from a redis-py pool (see the module docstring)."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._idle: list[Any] = []  # connected (or lazily reconnecting) redis.Connection objects
        forksafe.register(self)

    def after_fork_in_child(self) -> None:
        """The parent's connections stay the parent's: start empty."""
        self._lock = threading.Lock()
        self._idle = []

    def get(self, name: bytes) -> bytes | None:
        """GET one key; raises redis-py's exceptions."""
        packed = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(name), name)
        reply: bytes | None = self._run(packed)
        return reply

    def mget(self, names: Sequence[bytes]) -> list[bytes | None]:
        """MGET many keys (one round trip); raises redis-py's exceptions."""
        parts = [b"*%d\r\n$4\r\nMGET\r\n" % (len(names) + 1)]
        parts += [b"$%d\r\n%b\r\n" % (len(name), name) for name in names]
        reply: list[bytes | None] = self._run(b"".join(parts))
        return reply

    def _run(self, packed: bytes) -> Any:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._pool.get_connection()  # borrowed for good (see the module docstring)
        try:
            conn.send_packed_command((packed,), check_health=False)
            reply = conn.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()
            self._give_back(conn)
            self.disconnect_idle()
            raise
        except BaseException:
            # A reply may be half read (an interrupt, a parse error): never reuse the socket.
            conn.disconnect()
            self._give_back(conn)
            raise
        self._give_back(conn)
        return reply

    def _give_back(self, conn: Any) -> None:
        with self._lock:
            self._idle.append(conn)

    def disconnect_idle(self) -> None:
        """Disconnect every idle connection (each reconnects on its next use)."""
        # Under the lock: a connection another thread has popped is never closed under it.
        with self._lock:
            for conn in self._idle:
                conn.disconnect()

    def close(self) -> None:
        """Disconnect and forget every idle connection (the pool disconnects borrowed ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()
