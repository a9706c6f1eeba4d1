#!/usr/bin/env python3
"""Interop client on Python `websockets`: runs a fixed script against an echo server.

Usage: tests/peers/.venv/bin/python tests/peers/py_client.py URL [--server-close]

URL is a loopback ws:// URL of an echo server (e.g. one of wsflow's echo-server
examples). Every check uses its own connection and a 10 s time limit; one line
per check, then `N passed, M failed`; exit status 0 only if all checks passed.
--server-close adds a check of the peers' "close:CODE:REASON" command (a
server-initiated close), which tests/peers/py_server.py and node_server.js support.
"""
import asyncio
import os
import random
import re
import sys
import time

os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", "1000000")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

LOOPBACK_URL = re.compile(r"ws://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(/.*)?$")
CHECK_TIMEOUT = 10.0
MAX_SIZE = 2 ** 24


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    return "%s(%d)" % (kind, len(m.encode() if isinstance(m, str) else m))


async def echo_one(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    expect(type(got) is type(msg), "sent %s, got %s" % (describe(msg), describe(got)))
    expect(got == msg, "echo of %s differs" % describe(msg))


async def check_text(url):
    msg = "héllo wörld ✓ κόσμε 🦀 \u0000 end"
    async with connect(url, max_size=MAX_SIZE) as ws:
        await echo_one(ws, msg)
        await echo_one(ws, "")
    return "non-ASCII text (%d bytes) and empty text echoed" % len(msg.encode())


async def check_binary_1mib(url):
    msg = random.Random(6455).randbytes(2 ** 20)
    async with connect(url, max_size=MAX_SIZE) as ws:
        await echo_one(ws, msg)
        await echo_one(ws, b"")
    return "1 MiB binary and empty binary echoed"


async def check_64k(url):
    sizes = [125, 126, 127, 65535, 65536, 65537]
    async with connect(url, max_size=MAX_SIZE) as ws:
        for n in sizes:  # frame length encoding boundaries, text and binary
            await echo_one(ws, "x" * n)
            await echo_one(ws, bytes([n & 0xFF]) * n)
        burst = [bytes([i]) * 65536 for i in range(16)]
        for m in burst:  # pipelined: send all, then read all
            await ws.send(m)
        for i, m in enumerate(burst):
            got = await ws.recv()
            expect(got == m, "pipelined 64 KiB message %d differs" % i)
    return "sizes %s (text+binary) and 16 pipelined 64 KiB messages echoed" % sizes


async def check_fragmented(url):
    text = "fragmented ✓ message".encode()
    cut = text.index("✓".encode()) + 1  # split inside a multi-byte UTF-8 sequence
    parts = [text[:cut], text[cut:cut + 1], text[cut + 1:]]
    bparts = [b"\x00\x01", b"", b"\xff" * 70000, b"end"]
    async with connect(url, max_size=MAX_SIZE) as ws:
        await ws.send(parts, text=True)
        got = await ws.recv()
        expect(got == text.decode(), "fragmented text echoed as %r" % (got[:60],))
        await ws.send(bparts)
        got = await ws.recv()
        expect(got == b"".join(bparts), "fragmented binary echoed wrongly (%s)" % describe(got))
    return "text in %d fragments (UTF-8 split across frames) and binary in %d fragments" % (
        len(parts) + 1, len(bparts) + 1)


async def check_ping(url):
    payloads = [b"wsflow-ping\x00\xff", bytes(range(125))]
    async with connect(url, max_size=MAX_SIZE, ping_interval=None) as ws:
        for p in payloads:
            waiter = await ws.ping(p)
            try:
                await asyncio.wait_for(waiter, 5)
            except asyncio.TimeoutError:
                raise CheckFailed("no pong with the ping's %d-byte payload within 5 s" % len(p))
        await echo_one(ws, "after ping")
    return "pongs matched payloads of %s bytes" % [len(p) for p in payloads]


async def check_subprotocol(url):
    offered = ["superchat", "chat"]
    async with connect(url, subprotocols=offered) as ws:
        expect(ws.subprotocol in offered, "server selected %r, offered %s" % (ws.subprotocol, offered))
        await echo_one(ws, "with subprotocol")
        return "offered %s, server selected %r" % (offered, ws.subprotocol)


async def check_close(url):
    async with connect(url, close_timeout=5) as ws:
        await echo_one(ws, "before close")
        t0 = time.monotonic()
        await ws.close(1000, "client done")
        dt = time.monotonic() - t0
        rcvd = ws.protocol.close_rcvd
        expect(rcvd is not None, "no close frame received from the server")
        expect(rcvd.code == 1000, "server answered with close code %s" % rcvd.code)
        expect(dt < 2.0, "closing handshake + TCP close took %.1f s" % dt)
    return "client close 1000 'client done' -> server replied %d %r in %.0f ms" % (
        rcvd.code, rcvd.reason, dt * 1000)


async def check_deflate_16mib(url):
    msg = ("{\"user\": \"wsflow\", \"seq\": %d, \"text\": \"chat line\"}\n" * 1)
    big = "".join(msg % i for i in range(400000)).encode()[:MAX_SIZE]
    async with connect(url, max_size=MAX_SIZE) as ws:  # offers permessage-deflate
        names = [e.name for e in ws.protocol.extensions]
        expect(names == ["permessage-deflate"], "negotiated extensions %s" % names)
        await echo_one(ws, "compressed text ✓")
        await echo_one(ws, big)
    return "permessage-deflate negotiated; a %d-byte JSON-lines message echoed" % len(big)


async def check_no_deflate_16mib(url):
    msg = random.Random(7692).randbytes(MAX_SIZE)
    async with connect(url, max_size=MAX_SIZE, compression=None) as ws:
        expect(ws.protocol.extensions == [], "extensions %s without an offer" % ws.protocol.extensions)
        await echo_one(ws, msg)
    return "no extension offered or accepted; 16 MiB binary echoed"


async def check_close_code(url):
    async with connect(url, close_timeout=5) as ws:
        await ws.close(4321, "custom reason ✓")
        rcvd = ws.protocol.close_rcvd
        expect(rcvd is not None, "no close frame received from the server")
        expect(rcvd.code == 4321, "server answered close 4321 with %s" % rcvd.code)
    return "client close 4321 -> server replied %d %r" % (rcvd.code, rcvd.reason)


async def check_server_close(url):
    async with connect(url, close_timeout=5) as ws:
        await ws.send("close:4001:server says bye")
        try:
            got = await ws.recv()
            raise CheckFailed("expected a close, got a message %s" % describe(got))
        except ConnectionClosed as e:
            expect(e.rcvd is not None, "connection dropped without a close frame")
            expect((e.rcvd.code, e.rcvd.reason) == (4001, "server says bye"),
                   "got close %s %r" % (e.rcvd.code, e.rcvd.reason))
    return "server closed with 4001 'server says bye'"


CHECKS = [("text-non-ascii", check_text), ("binary-1mib", check_binary_1mib),
          ("messages-64kib", check_64k), ("fragmented", check_fragmented),
          ("ping-pong", check_ping), ("subprotocol", check_subprotocol),
          ("close-1000", check_close), ("close-4321", check_close_code),
          ("deflate-16mib", check_deflate_16mib), ("no-deflate-16mib", check_no_deflate_16mib)]


async def main(url, server_close):
    checks = CHECKS + ([("server-close", check_server_close)] if server_close else [])
    passed = failed = 0
    for name, fn in checks:
        try:
            detail = await asyncio.wait_for(fn(url), CHECK_TIMEOUT)
            print("PASS %-15s %s" % (name, detail), flush=True)
            passed += 1
        except Exception as e:  # any error fails this check only
            if isinstance(e, asyncio.TimeoutError):
                reason = "timed out after %.0f s" % CHECK_TIMEOUT
            else:
                reason = str(e) if isinstance(e, CheckFailed) else "%s: %s" % (type(e).__name__, e)
            print("FAIL %-15s %s" % (name, reason), flush=True)
            failed += 1
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--server-close"]
    if len(args) != 1 or not LOOPBACK_URL.match(args[0]):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(args[0], "--server-close" in sys.argv[1:])))
