"""A latency-injecting TCP relay on loopback: lab portals as far away as real ones.

Real portals are 20-200 ms away, some stall, many are firewalled; on loopback a handshake costs
microseconds. `LatencyProxy` listens on loopback addresses and relays every connection to a loopback
upstream, delaying each chunk by half the round-trip time in each direction, with jitter and, now and
then, a stall (a lost segment waiting for its retransmission); a *silent* route accepts and never
answers. One asyncio event loop in a background thread serves every route::

    with LatencyProxy(Latency(rtt_s=0.1)) as proxy:
        proxy.add(("127.0.110.1", 8443), ("127.0.100.1", 8443))

Each direction has a delay queue: the reader stamps every chunk with its delivery time and goes on
reading, the writer sleeps until that time. Delivery times never decrease, so each direction keeps its
byte order whatever the jitter. The queue is bounded, so a slow reader pushes back through TCP.

The kernel completes the TCP handshake at once, so its round trip is charged to the first bytes:
nothing is delivered, either way, before the connection is one RTT old. What cannot be simulated in
user space: connect() still returns at once, and a port nobody listens on still refuses at once, so a
connect scan (nmap -sT) sees no latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from soc.lab.servers import LabError

CHUNK_BYTES = 65536
QUEUE_CHUNKS = 64
"""Chunks held per direction (at most 4 MiB); beyond that the reader waits and TCP pushes back."""
MAX_CONNECTIONS = 4096
"""Concurrent connections over every route; more are reset at once."""
MAX_CONNECTION_SECONDS = 900.0
"""Any relayed or silent connection is cut after this long."""
UPSTREAM_CONNECT_TIMEOUT = 5.0
LISTEN_BACKLOG = 512
CONTROL_TIMEOUT = 5.0
"""Upper bound, in seconds, on starting, binding a route and stopping."""
MAX_RTT_S = 10.0
MAX_STALL_S = 30.0
LATE_S = 0.02
"""A delivery later than this past its due time counts as late in `ProxyStats`."""


def require_loopback_literal(address: str, role: str) -> None:
    """ValueError unless `address` is an IP literal in 127.0.0.0/8 or ::1."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        message = f"the latency proxy takes loopback IP literals only; {role} {address[:80]!r} is not one"
        raise ValueError(message) from None
    if not parsed.is_loopback:
        raise ValueError(f"the latency proxy only uses loopback (127.0.0.0/8, ::1); {role} {address} is not")


@dataclass(frozen=True)
class Latency:
    """What a route does to the traffic it relays."""

    rtt_s: float = 0.1
    """Round-trip time added: half of it on each direction."""
    jitter_s: float = 0.0
    """Each chunk's one-way delay varies uniformly by up to ± this much (never below zero)."""
    stall_probability: float = 0.0
    """Chance that a chunk is held back `stall_s` longer (and with it everything behind it)."""
    stall_s: float = 0.0
    silent: bool = False
    """Accept, never forward, never answer (a firewalled or hung portal)."""
    charge_connect: bool = True
    """Deliver nothing before the connection is one RTT old (the handshake the kernel did locally)."""

    def __post_init__(self) -> None:
        """Refuse values that would make the relay unbounded or meaningless."""
        if not 0 <= self.rtt_s <= MAX_RTT_S:
            raise ValueError(f"rtt_s must be 0..{MAX_RTT_S:g}, got {self.rtt_s}")
        if not 0 <= self.jitter_s <= MAX_RTT_S:
            raise ValueError(f"jitter_s must be 0..{MAX_RTT_S:g}, got {self.jitter_s}")
        if not 0 <= self.stall_probability <= 1:
            raise ValueError(f"stall_probability must be 0..1, got {self.stall_probability}")
        if not 0 <= self.stall_s <= MAX_STALL_S:
            raise ValueError(f"stall_s must be 0..{MAX_STALL_S:g}, got {self.stall_s}")

    @property
    def one_way_s(self) -> float:
        """Delay of each direction."""
        return self.rtt_s / 2


@dataclass(frozen=True)
class Route:
    """Where a listener is and where its connections go."""

    listen: tuple[str, int]
    upstream: tuple[str, int]
    latency: Latency


@dataclass(frozen=True)
class ProxyStats:
    """What the proxy did so far; `lag` is how late a delivery was past its due time (event-loop load)."""

    connections: int
    refused: int
    bytes_relayed: int
    deliveries: int
    late: int
    mean_lag_s: float
    max_lag_s: float


class LatencyProxy:
    """Latency-injecting relays on loopback, all served by one event loop in a background thread."""

    def __init__(self, latency: Latency | None = None, seed: int | None = None) -> None:
        """`latency` is the default of routes added without one; `seed` makes jitter and stalls repeatable."""
        self.latency = latency or Latency()
        self.routes: list[Route] = []
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.reset_stats()

    def __enter__(self) -> LatencyProxy:
        """Start the event loop (see `start`)."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop every route (see `stop`)."""
        self.stop()

    def start(self) -> None:
        """Run the event loop in a daemon thread; routes are added afterwards."""
        if self._thread is not None:
            raise LabError("the latency proxy is already running")
        loop = asyncio.new_event_loop()
        self._loop, self._closing = loop, False
        self._thread = threading.Thread(target=self._run, args=(loop,), name="lab-latency", daemon=True)
        self._thread.start()

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def add(self, listen: tuple[str, int], upstream: tuple[str, int], latency: Latency | None = None) -> int:
        """Listen on `listen` (port 0: ephemeral) and relay to `upstream`; the bound port.

        Both must be loopback IP literals (ValueError otherwise); LabError if the address is taken.
        """
        require_loopback_literal(listen[0], "listen address")
        require_loopback_literal(upstream[0], "upstream address")
        if self._loop is None:
            raise LabError("start the latency proxy before adding routes")
        route = Route(listen, upstream, latency or self.latency)
        future = asyncio.run_coroutine_threadsafe(self._listen(route), self._loop)
        try:
            port = future.result(CONTROL_TIMEOUT)
        except OSError as err:
            raise LabError(f"cannot listen on {listen[0]}:{listen[1]}: {err.strerror or err}") from err
        self.routes.append(Route((listen[0], port), upstream, route.latency))
        return port

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        deliveries = self._deliveries
        return ProxyStats(self._connections, self._refused, self._bytes, deliveries, self._late,
                          self._lag_total / deliveries if deliveries else 0.0, self._lag_max)

    def reset_stats(self) -> None:
        """Start counting afresh (between two measured runs)."""
        self._connections = self._refused = self._bytes = self._deliveries = self._late = 0
        self._lag_total = self._lag_max = 0.0

    def stop(self) -> None:
        """Close every listener, cut every connection and join the thread (each bounded by CONTROL_TIMEOUT)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(CONTROL_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CONTROL_TIMEOUT)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None
        self._servers, self.routes = [], []

    async def _listen(self, route: Route) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(route, reader, writer)

        server = await asyncio.start_server(serve, route.listen[0], route.listen[1], backlog=LISTEN_BACKLOG,
                                            reuse_address=True, limit=CHUNK_BYTES)
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _shutdown(self) -> None:
        self._closing = True
        for server in self._servers:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._closing or len(self._tasks) >= MAX_CONNECTIONS:
            self._refused += 1
            _reset(writer)
            return
        self._tasks.add(task)
        self._connections += 1
        clean = False
        try:
            async with asyncio.timeout(MAX_CONNECTION_SECONDS):
                if route.latency.silent:
                    while await reader.read(CHUNK_BYTES):
                        pass  # discard: a silent portal never answers
                    clean = True
                else:
                    clean = await self._relay(route, reader, writer)
        except (OSError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            await _close(writer, clean)

    async def _relay(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Relay one connection both ways; True when both directions ended cleanly."""
        loop = asyncio.get_running_loop()
        latency = route.latency
        not_before = loop.time() + (latency.rtt_s if latency.charge_connect else 0.0)
        try:
            async with asyncio.timeout(UPSTREAM_CONNECT_TIMEOUT):
                up_reader, up_writer = await asyncio.open_connection(*route.upstream, limit=CHUNK_BYTES)
        except (OSError, TimeoutError):
            # The upstream refused or hung: the client learns it (a reset) when the answer would have come.
            await asyncio.sleep(max(0.0, not_before + latency.one_way_s - loop.time()))
            return False

        def reset() -> None:
            _reset(writer)
            _reset(up_writer)

        directions = [asyncio.create_task(self._direction(reader, up_writer, latency, not_before, reset)),
                      asyncio.create_task(self._direction(up_reader, writer, latency, not_before, reset))]
        clean = False
        try:
            clean = all(await asyncio.gather(*directions))
        finally:
            for task in directions:
                task.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            await _close(up_writer, clean)
        return clean

    async def _direction(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: Latency,
                         not_before: float, reset: Callable[[], None]) -> bool:
        """Read one direction into its delay queue while its writer delivers; True if it ended with EOF."""
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(QUEUE_CHUNKS)
        deliverer = asyncio.create_task(self._deliver(queue, writer, reset))
        try:
            due = 0.0
            while True:
                data: bytes | None
                try:
                    data = await reader.read(CHUNK_BYTES)
                except OSError:
                    data = None  # a reset: passed on, in order, when it would have arrived
                due = max(due, self._due(latency, not_before))
                await queue.put((due, data))
                if not data:
                    break
            return await deliverer
        finally:
            deliverer.cancel()

    def _due(self, latency: Latency, not_before: float) -> float:
        """When a chunk read now must be delivered."""
        delay = latency.one_way_s
        if latency.jitter_s:
            delay = max(0.0, delay + self._rng.uniform(-latency.jitter_s, latency.jitter_s))
        if latency.stall_probability and self._rng.random() < latency.stall_probability:
            delay += latency.stall_s
        return max(asyncio.get_running_loop().time(), not_before) + delay

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes | None]], writer: asyncio.StreamWriter,
                       reset: Callable[[], None]) -> bool:
        """Write each chunk at its due time; after a failure keep draining so the reader never blocks."""
        loop = asyncio.get_running_loop()
        ok = True
        while True:
            due, data = await queue.get()
            if ok:
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._record_lag(loop.time() - due)
            if not data:
                if ok and data is None:
                    reset()
                elif ok and writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return ok and data is not None
            if not ok:
                continue
            try:
                writer.write(data)
                await writer.drain()
                self._bytes += len(data)
            except OSError:
                ok = False
                reset()

    def _record_lag(self, lag: float) -> None:
        lag = max(0.0, lag)
        self._deliveries += 1
        self._lag_total += lag
        self._lag_max = max(self._lag_max, lag)
        if lag > LATE_S:
            self._late += 1


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a refusing or crashing peer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _close(writer: asyncio.StreamWriter, clean: bool) -> None:
    """Close gracefully (flushing what is buffered) after a clean end, else reset."""
    if not clean:
        _reset(writer)
        return
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(CONTROL_TIMEOUT):
            await writer.wait_closed()
