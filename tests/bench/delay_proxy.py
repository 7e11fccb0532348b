#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that delays every chunk, for the benchmarks.

    python3 delay_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT \
        --delay-ms 25 --stats FILE

Each chunk read from one side is written to the other side DELAY ms after it
was read, in each direction (25 ms each way is a 50 ms round trip). Each
direction of each connection has a queue of (due time, chunk): the reader
keeps reading while the writer waits, so chunks in flight do not wait for
each other (throughput is not serialised) and order is kept per direction.
An end of file is passed on as a half close once the chunks before it are
written.

The stats file holds the number of connections accepted so far; it is
written (atomically, by rename) when the proxy listens (0) and on each new
connection, so a shell can wait for the file and read the count. The proxy
listens on 127.0.0.1 only. It runs until killed (SIGTERM, SIGINT).
"""

import argparse
import asyncio
import os
import signal
import socket
import sys

CHUNK = 64 * 1024


def host_port(text, what):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"{what}: expected HOST:PORT, got {text!r}")
    if host != "127.0.0.1":
        raise SystemExit(f"{what}: only 127.0.0.1 is allowed, got {host!r}")
    return host, int(port)


class Proxy:
    def __init__(self, target, delay, stats):
        self.target = target
        self.delay = delay
        self.stats = stats
        self.accepted = 0

    def write_stats(self):
        if not self.stats:
            return
        tmp = f"{self.stats}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{self.accepted}\n")
        os.replace(tmp, self.stats)

    async def handle(self, client_r, client_w):
        try:
            await self.forward(client_r, client_w)
        except asyncio.CancelledError:
            # The proxy is stopping with this connection open.
            client_w.close()

    async def forward(self, client_r, client_w):
        self.accepted += 1
        self.write_stats()
        nodelay(client_w)
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError as e:
            print(f"delay_proxy: connect {self.target}: {e}", file=sys.stderr)
            client_w.close()
            return
        nodelay(up_w)
        await asyncio.gather(
            self.pipe(client_r, up_w, client_w),
            self.pipe(up_r, client_w, up_w),
            return_exceptions=True,
        )
        for w in (client_w, up_w):
            w.close()

    async def pipe(self, reader, writer, reader_side):
        """Forwards what `reader` reads to `writer`, each chunk `delay`
        after it was read; half-closes `writer` at end of file."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def read():
            try:
                while True:
                    data = await reader.read(CHUNK)
                    if not data:
                        break
                    queue.put_nowait((loop.time() + self.delay, data))
            except OSError:
                pass
            queue.put_nowait((loop.time() + self.delay, None))

        async def write():
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    if data is None:
                        if writer.can_write_eof():
                            writer.write_eof()
                        return
                    writer.write(data)
                    await writer.drain()
                except OSError:
                    # The other side is gone: stop reading this one.
                    reader_side.close()
                    return

        reading = asyncio.ensure_future(read())
        try:
            await write()
        finally:
            if not reading.done():
                reading.cancel()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="127.0.0.1:PORT (0: any free port)")
    p.add_argument("--target", required=True, help="127.0.0.1:PORT")
    p.add_argument("--delay-ms", type=float, default=25.0, help="per direction (default 25)")
    p.add_argument("--stats", help="file for the count of accepted connections")
    p.add_argument("--port-file", help="file to write the listening port to")
    args = p.parse_args()
    listen = host_port(args.listen, "--listen")
    target = host_port(args.target, "--target")
    proxy = Proxy(target, args.delay_ms / 1000.0, args.stats)
    server = await asyncio.start_server(proxy.handle, *listen, reuse_address=True, backlog=256)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = f"{args.port_file}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    proxy.write_stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
