"""A wall-clock deadline on one HTTP exchange made with ``requests``: no drip of bytes outlasts it.

``requests``' timeout bounds each wait on the socket (the connect, every single read), not the
exchange: an answer dripped one byte a second never trips a 30 s read timeout, and neither do
headers sent that way. A :class:`Deadline` watches one exchange in the calling thread; when it
passes, a timer shuts down the sockets the exchange uses, so a blocked write or read returns at
once and ``requests`` raises. :class:`DeadlineAdapter`, the transport adapter of the archive
client, tells the running deadline which connection each request goes out on.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager

#: how often an expired deadline looks again for a socket that was still connecting when it fired
_RECHECK_S = 0.05
_current = threading.local()


class Deadline:
    """A wall-clock limit on one exchange (request, redirects, answer and body) in this thread.

    Use as a context manager around the request and the reading of its answer. After it passed,
    :attr:`expired` is true and whatever was read must not be trusted: a body cut short by the
    shutdown can look complete when the answer had no ``Content-Length``.

    :param seconds: how long the exchange may take
    """

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"a deadline must be positive seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self.expired = False
        self._at = time.monotonic() + self.seconds
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._timer: threading.Timer | None = None
        self._over = False
        self._outer: Deadline | None = None

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self._at - time.monotonic())

    def extend(self, seconds: float) -> None:
        """Give the exchange ``seconds`` more, e.g. for the part of a large body that has arrived."""
        with self._lock:
            self._at += seconds
            self.seconds += seconds

    def watch(self, connection: Any) -> None:
        """Shut ``connection``'s socket when the deadline passes (a urllib3 connection)."""
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def __enter__(self) -> Self:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        self._arm(self.remaining())
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._over = True
            if self._timer is not None:
                self._timer.cancel()
            self._connections.clear()
        _current.deadline = self._outer

    def _arm(self, delay: float) -> None:
        timer = threading.Timer(delay, self._fire)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._over:
                return
            left = self._at - time.monotonic()
            if left > 0:  # extended meanwhile
                self._arm(left)
                return
            self.expired = True
            connecting = [c for c in self._connections if not _shut(c)]
            if connecting:  # its socket does not exist yet: shut it as soon as it does
                self._arm(_RECHECK_S)


def current_deadline() -> Deadline | None:
    """The deadline running in this thread, if any."""
    return getattr(_current, "deadline", None)


def _shut(connection: Any) -> bool:
    """Shut down a connection's socket both ways; False when it has none yet (still connecting)."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed: nothing left to unblock
        pass
    return True


class _WatchedPool:
    """Connection pool mixin: hand each connection a request goes out on to the running deadline."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = current_deadline()
        if deadline is not None:
            deadline.watch(conn)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPPool(_WatchedPool, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(TCPKeepAliveAdapter):
    """The HTTP provider's keep-alive adapter, with connection pools that report to :class:`Deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Create the pool manager with pools a deadline can watch."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The manager for an HTTP(S) proxy, with watched pools (a SOCKS proxy keeps its own)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager
