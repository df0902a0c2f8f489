"""Hard wall-clock deadlines for exchanges with servers the scanner does not trust.

A socket timeout bounds one read: a server that sends a byte before each timeout keeps an exchange
alive for ever (httpx's timeouts are per read too, and OpenSSL reads a handshake with many of them).
A `Deadline` is a point on time.monotonic(); when it passes, one watchdog thread shuts down every
socket attached to it, which ends whatever connect, TLS handshake or read is blocked on them however
the bytes keep arriving, and the caller reports the exchange as too slow.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

IDLE_EXIT_S = 30.0
"""The watchdog thread ends after this long without work (a new deadline starts it again)."""


class DeadlineExceeded(Exception):
    """An exchange was not over by its deadline (the message starts with "too slow")."""


class Alarm:
    """A callback the watchdog will run at a time, unless cancelled first."""

    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback: Callable[[], object] | None = callback

    def cancel(self) -> None:
        """Do not run the callback (a no-op once it ran)."""
        self._callback = None

    def _fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            with contextlib.suppress(Exception):  # a failing alarm must not stop the watchdog
                callback()


class _Watchdog:
    """One daemon thread running alarms at their time (a heap; cancelled alarms are dropped when due)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, callback: Callable[[], object]) -> Alarm:
        """Run `callback` in the watchdog thread at `when` (time.monotonic)."""
        alarm = Alarm(callback)
        with self._condition:
            heapq.heappush(self._heap, (when, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadline-watchdog", daemon=True)
                self._thread.start()
            self._condition.notify()
        return alarm

    def _next_due(self) -> Alarm | None:
        """Wait for the next due alarm; None when idle for IDLE_EXIT_S (the thread then ends)."""
        with self._condition:
            while True:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    return heapq.heappop(self._heap)[2]
                wait = self._heap[0][0] - now if self._heap else IDLE_EXIT_S
                if not self._condition.wait(wait) and not self._heap:
                    self._thread = None
                    return None

    def _run(self) -> None:
        while (alarm := self._next_due()) is not None:
            alarm._fire()


WATCHDOG = _Watchdog()
"""The process's watchdog: every deadline and connection life is enforced by this one thread."""


def shut_down(sock: socket.socket) -> None:
    """End every blocked call on `sock` (its peer sees the connection close); a closed socket is left alone."""
    if sock.fileno() == -1:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Deadline:
    """A hard end for an exchange: the sockets attached are shut down when it passes (use it as a context).

    `attach` keeps a duplicate of the socket until the context ends, so that a TLS layer wrapped around
    the original (which detaches it) is still cut; `watch` keeps only a weak reference, for the many
    short connections of an sslyze scan, which must close when their owner closes them.
    """

    def __init__(self, seconds: float, *, at: float | None = None, what: str = "the exchange") -> None:
        """A deadline `seconds` from now, or at `at` (time.monotonic) if that is sooner."""
        start = time.monotonic()
        own = start + max(0.0, seconds)
        self.at = own if at is None else min(own, at)
        self.seconds = max(0.0, self.at - start)
        """The time this exchange was given."""
        self.capped = self.at < own
        """The exchange got less than `seconds`: only what was left of a larger budget."""
        self.what = what
        self.reason: str | None = None
        """Why the deadline was brought forward by `expire`, if it was."""
        self._lock = threading.Lock()
        self._fired = False
        self._copies: list[socket.socket] = []
        self._watched: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._alarm: Alarm | None = None

    def __enter__(self) -> Deadline:
        """Arm the watchdog (see `arm`)."""
        self.arm()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Disarm the watchdog (see `disarm`)."""
        self.disarm()

    def arm(self) -> None:
        """Have the watchdog cut the attached sockets when the deadline passes."""
        self._alarm = WATCHDOG.call_at(self.at, self.expire)

    def disarm(self) -> None:
        """The exchange is over: no cut any more, and the duplicates are closed."""
        if self._alarm is not None:
            self._alarm.cancel()
        with self._lock:
            copies, self._copies = self._copies, []
        for copy in copies:
            copy.close()

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return 0.0 if self._fired else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        """The deadline has passed (or was brought forward by `expire`)."""
        return self._fired or time.monotonic() >= self.at

    @property
    def fired(self) -> bool:
        """The sockets were cut (the watchdog or `expire` ended the exchange)."""
        return self._fired

    def expire(self, reason: str | None = None) -> None:
        """End the exchange now: shut down every attached socket; later ones are shut down on arrival."""
        with self._lock:
            if self._fired:
                return
            self._fired = True
            self.reason = reason
            sockets = [*self._copies, *self._watched]
        for sock in sockets:
            shut_down(sock)

    def attach(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline (through a duplicate kept until the context ends)."""
        copy = sock.dup()
        with self._lock:
            self._copies.append(copy)
            fired = self._fired
        if fired:
            shut_down(copy)

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline if it is still open then (a weak reference: its owner closes it)."""
        with self._lock:
            self._watched.add(sock)
            fired = self._fired
        if fired:
            shut_down(sock)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx/httpcore `trace` extension: attach each connection's socket as soon as TCP is connected."""
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                self.attach(sock)

    def too_slow(self, doing: str | None = None) -> DeadlineExceeded:
        """The error to raise once the deadline cut the exchange."""
        if self.reason:
            return DeadlineExceeded(f"too slow: {self.reason}")
        budget = " (what was left of the portal's budget)" if self.capped else ""
        return DeadlineExceeded(f"too slow: {doing or self.what} not over within {self.seconds:.3g} s{budget}")
