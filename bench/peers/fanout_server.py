#!/usr/bin/env python3
"""Fan-out anchor for `loadtest --fanout`: Python `websockets` (tests/peers/.venv) in its
documented broadcast idiom, every message from any client given to
`websockets.broadcast(server.connections, message)`, which skips a client whose buffer is
full.

Usage: tests/peers/.venv/bin/python bench/peers/fanout_server.py [--deflate]
Prints the port it listens on (127.0.0.1, chosen by the OS) as its first line.
--deflate accepts permessage-deflate with the library's defaults (`compression="deflate"`:
12-bit windows, memLevel 5, context takeover; each client's copy compressed for it);
without it, compression is off.
"""
import asyncio
import sys

from websockets.asyncio.server import broadcast, serve


async def main(deflate):
    server = None

    async def member(connection):
        async for message in connection:
            broadcast(server.connections, message)

    server = await serve(member, "127.0.0.1", 0, compression="deflate" if deflate else None,
                         ping_interval=None, max_size=2**20)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main("--deflate" in sys.argv[1:]))
    except KeyboardInterrupt:
        pass
