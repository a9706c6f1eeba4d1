#!/usr/bin/env python3
"""Echo server on Python `websockets` (a peer for wsflow's interop and Autobahn tests).

Usage: tests/peers/.venv/bin/python tests/peers/py_server.py PORT     (127.0.0.1 only)

* echoes every text/binary message unchanged (same type);
* subprotocols: if the client offers "chat" or "superchat", selects the first
  of those in the client's order; otherwise none;
* a text message "close:CODE:REASON" makes it close with that code and reason;
* permessage-deflate is accepted (library default), messages up to 32 MiB, no
  fragment-count cap and no keepalive pings (both would disturb Autobahn cases).
"""
import asyncio
import os
import re
import sys

# websockets caps fragmented messages at 4096 frames by default (Autobahn 9.3/9.4
# send 4 MiB in 64-byte fragments); lift it, this peer is a conformance reference.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", "1000000")

from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

CLOSE_CMD = re.compile(r"close:(\d{1,5}):(.*)", re.DOTALL)


def select_subprotocol(connection, offered):
    return next((p for p in offered if p in ("chat", "superchat")), None)


async def echo(ws):
    try:
        async for msg in ws:
            m = CLOSE_CMD.fullmatch(msg) if isinstance(msg, str) and len(msg) < 256 else None
            if m:
                try:
                    await ws.close(int(m.group(1)), m.group(2))
                except Exception:  # code the library refuses to send (1005, 1006, ...)
                    await ws.close(1011, "invalid close code requested")
                return
            await ws.send(msg)
    except ConnectionClosed:
        pass


async def main(port):
    async with serve(echo, "127.0.0.1", port, select_subprotocol=select_subprotocol,
                     max_size=2 ** 25, max_queue=1, ping_interval=None,
                     server_header="wsflow-peer-websockets") as server:
        # Port 0 picks a free port: the line says which (tests/tests/interop.rs reads it).
        port = server.sockets[0].getsockname()[1]
        print("py_server: listening on ws://127.0.0.1:%d" % port, flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
