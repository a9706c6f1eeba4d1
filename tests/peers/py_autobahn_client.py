#!/usr/bin/env python3
"""Autobahn test client on Python `websockets`, used to check tests/autobahn/client-suite.sh.

Usage: tests/peers/.venv/bin/python tests/peers/py_autobahn_client.py ws://127.0.0.1:PORT AGENT

Standard Autobahn client protocol: /getCaseCount, then /runCase?case=I&agent=AGENT
for every case (echoing each message until the server closes), then
/updateReports?agent=AGENT. Exits 0 when it got through all cases.
"""
import asyncio
import json
import os
import sys

# websockets caps fragmented messages at 4096 frames (Autobahn 9.3/9.4 need 65536)
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", "1000000")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import WebSocketException  # noqa: E402

CASE_TIMEOUT = 300


async def run_case(url):
    async with connect(url, max_size=2 ** 25, ping_interval=None, max_queue=1) as ws:
        async for msg in ws:
            await ws.send(msg)


async def main(base, agent):
    async with connect(base + "/getCaseCount") as ws:
        count = json.loads(await ws.recv())
    print("py_autobahn_client: %d case(s)" % count, flush=True)
    for case in range(1, count + 1):
        try:
            await asyncio.wait_for(run_case("%s/runCase?case=%d&agent=%s" % (base, case, agent)), CASE_TIMEOUT)
        except WebSocketException:
            pass  # many cases end in a protocol error on purpose
        except (OSError, asyncio.TimeoutError) as e:
            print("case %d: %s" % (case, type(e).__name__), flush=True)
    async with connect("%s/updateReports?agent=%s" % (base, agent), open_timeout=120) as ws:
        await ws.wait_closed()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
