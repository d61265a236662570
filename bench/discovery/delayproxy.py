"""A TCP proxy that adds a fixed one-way delay to every chunk, in both directions.

Kernel netem is not available on the benchmark machine, so this stands in for
a WAN link in front of libvirtd's TCP listener:

    python delayproxy.py --target 127.0.0.1:16509 --one-way-ms 0.5

prints ``PORT <n>`` once it listens, then forwards every connection to the
target. Each chunk read from one side is written to the other side
``--one-way-ms`` after it arrived; chunks keep their order (a per-direction
FIFO), so the proxy behaves like a link with a fixed latency and no loss. The
TCP connect is answered locally, and the upstream connection is opened one
round trip later, so a client's first message also pays a round trip.

The event loop runs on ``select()``: epoll and poll round their timeout up to
a whole millisecond, which would turn a 0.5 ms delay into 1-2 ms; select takes
microseconds. (select is limited to 1,024 descriptors, plenty for a pool of
64 connections.)

On SIGUSR1 the proxy prints one JSON line of statistics since the previous
SIGUSR1 (connections, chunks, bytes, how late chunks left compared with their
due time, the proxy's CPU seconds) and resets them: a saturated proxy shows up
as lateness instead of silently inflating the round trip. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import selectors
import signal
import socket
import sys


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.chunks = 0
        self.bytes = 0
        self.late: list[float] = []

    def dump(self) -> str:
        late = sorted(self.late)
        usage = resource.getrusage(resource.RUSAGE_SELF)

        def pct(p: float) -> float | None:
            return late[min(len(late) - 1, int(p * len(late)))] * 1e3 if late else None

        return json.dumps({
            "connections": self.connections,
            "chunks": self.chunks,
            "bytes": self.bytes,
            "late_mean_ms": sum(late) / len(late) * 1e3 if late else None,
            "late_p50_ms": pct(0.50),
            "late_p99_ms": pct(0.99),
            "late_max_ms": late[-1] * 1e3 if late else None,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        })


class Half(asyncio.Protocol):
    """One side of a proxied connection: what it reads goes to ``peer`` after the delay."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, stats: Stats) -> None:
        self.loop = loop
        self.delay = delay
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.peer: Half | None = None
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.stats.chunks += 1
        self.stats.bytes += len(data)
        if self.delay <= 0:
            self.peer.transport.write(data)  # type: ignore[union-attr]
            return
        due = self.loop.time() + self.delay
        self.queue.append((due, data))
        if self.timer is None:
            self.timer = self.loop.call_at(due, self.flush)

    def flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        out = self.peer.transport  # type: ignore[union-attr]
        while self.queue and self.queue[0][0] <= now:
            due, data = self.queue.popleft()
            self.stats.late.append(now - due)
            out.write(data)
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)
        elif self.closing:
            out.close()

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        # Deliver what is still in flight, then close the other side.
        self.closing = True
        if self.peer is not None and self.peer.transport is not None and not self.queue:
            self.peer.transport.close()


async def serve(listen_host: str, listen_port: int, target_host: str, target_port: int,
                delay: float, stats: Stats) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()

    class Downstream(Half):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            stats.connections += 1
            transport.pause_reading()  # type: ignore[attr-defined]
            self.task = loop.create_task(self.connect())

        async def connect(self) -> None:
            if delay > 0:
                await asyncio.sleep(2 * delay)  # the handshake's round trip
            try:
                _, up = await loop.create_connection(
                    lambda: Half(loop, delay, stats), target_host, target_port)
            except OSError:
                self.transport.close()  # type: ignore[union-attr]
                return
            up.peer, self.peer = self, up
            if self.closing:
                up.transport.close()  # type: ignore[union-attr]
                return
            self.transport.resume_reading()  # type: ignore[union-attr]

    return await loop.create_server(lambda: Downstream(loop, delay, stats), listen_host,
                                    listen_port, family=socket.AF_INET, backlog=1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0",
                        help="HOST:PORT (default: any free port)")
    parser.add_argument("--target", default="127.0.0.1:16509", help="HOST:PORT of libvirtd")
    parser.add_argument("--one-way-ms", type=float, default=0.5,
                        help="delay added to each chunk in each direction (default 0.5 ms)")
    args = parser.parse_args(argv)
    lhost, lport = args.listen.rsplit(":", 1)
    thost, tport = args.target.rsplit(":", 1)
    stats = Stats()
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        serve(lhost, int(lport), thost, int(tport), args.one_way_ms / 1e3, stats))
    port = server.sockets[0].getsockname()[1]

    def report() -> None:
        print(stats.dump(), flush=True)
        stats.reset()

    loop.add_signal_handler(signal.SIGUSR1, report)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print(f"PORT {port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
