"""The deadline primitive (collectors/deadline.py) on socket pairs: a trickled read is cut when the deadline
passes, however the bytes keep coming; a finished exchange is never cut afterwards."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from collectors.deadline import WATCHDOG, Deadline


@pytest.fixture
def trickled() -> Iterator[socket.socket]:
    """The reading end of a socket pair whose other end sends one byte every 0.05 s (for up to 5 s)."""
    reader, writer = socket.socketpair()
    stop = threading.Event()

    def trickle() -> None:
        for _ in range(100):
            if stop.wait(0.05):
                return
            try:
                writer.send(b"x")
            except OSError:
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    yield reader
    stop.set()
    thread.join(timeout=1)
    reader.close()
    writer.close()


def read_until_cut(sock: socket.socket) -> float:
    """Read (each recv may wait 2 s, far longer than the bytes take) until the socket is cut; seconds taken."""
    sock.settimeout(2)
    started = time.monotonic()
    while time.monotonic() - started < 5:
        try:
            if not sock.recv(1):
                break
        except OSError:
            break
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["attach", "watch"])
def test_a_trickled_read_is_cut_at_the_deadline(trickled: socket.socket, how: str) -> None:
    with Deadline(0.4, what="the test read") as limit:
        getattr(limit, how)(trickled)
        elapsed = read_until_cut(trickled)
    assert limit.fired and limit.expired
    assert 0.35 < elapsed < 1.0
    assert str(limit.too_slow()) == "too slow: the test read not over within 0.4 s"


def test_an_exchange_over_in_time_is_not_cut_later(trickled: socket.socket) -> None:
    with Deadline(0.2) as limit:
        limit.attach(trickled)
    time.sleep(0.4)
    assert not limit.fired
    trickled.settimeout(1)
    assert trickled.recv(1) == b"x"  # still open: the disarmed deadline cut nothing


def test_expire_cuts_now_with_its_reason_and_later_sockets_on_arrival(trickled: socket.socket) -> None:
    limit = Deadline(60)
    limit.expire("the server kept a connection open")
    started = time.monotonic()
    limit.watch(trickled)
    assert read_until_cut(trickled) < 0.5 and time.monotonic() - started < 0.5
    assert str(limit.too_slow()) == "too slow: the server kept a connection open"


def test_a_deadline_capped_by_a_budget_says_so() -> None:
    limit = Deadline(15, at=time.monotonic() + 2, what="GET http://x/")
    assert limit.capped and limit.seconds <= 2
    assert "what was left of the portal's budget" in str(limit.too_slow())


def test_a_watch_on_a_socket_its_owner_closed_is_harmless() -> None:
    reader, writer = socket.socketpair()
    with Deadline(0.1) as limit:
        limit.watch(reader)
        reader.close()
        time.sleep(0.3)
    writer.close()
    assert limit.fired


def test_alarms_run_in_order_and_a_cancelled_one_never() -> None:
    ran: list[str] = []
    now = time.monotonic()
    WATCHDOG.call_at(now + 0.2, lambda: ran.append("second"))
    WATCHDOG.call_at(now + 0.1, lambda: ran.append("first"))
    WATCHDOG.call_at(now + 0.15, lambda: ran.append("cancelled")).cancel()
    WATCHDOG.call_at(now + 0.05, lambda: 1 / 0)  # a failing alarm does not stop the others
    time.sleep(0.5)
    assert ran == ["first", "second"]
