#!/usr/bin/env python3
"""After `stop-listening`, an echo server refuses new connections at once.

Usage: tests/peers/.venv/bin/python tests/peers/py_stop_listening.py URL

A Python `websockets` client sends the text `stop-listening` to the echo server at URL
(a loopback ws:// URL) and gets it back; then a second client must be refused within
2 s (connection refused), not be taken into the listener's backlog and left hanging
until its own timeout. The open connection still echoes meanwhile. Prints one line per
check, then `N passed, M failed`; exit status 0 only if all passed.
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake


async def main(url: str) -> int:
    passed = failed = 0

    def report(name: str, ok: bool, detail: str = "") -> None:
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)

    async with connect(url, open_timeout=10) as first:
        await first.send("stop-listening")
        report("stop-listening is echoed", await asyncio.wait_for(first.recv(), 10) == "stop-listening")
        # The server may need a moment to close its listening socket.
        refused, detail = False, ""
        for _ in range(20):
            try:
                async with connect(url, open_timeout=2):
                    detail = "a new connection was upgraded"
            except ConnectionRefusedError:
                refused = True
                break
            except (TimeoutError, asyncio.TimeoutError):
                detail = "a new connection hung until the client's timeout"
                break
            except InvalidHandshake as error:
                # A connection that raced the stop: taken from the backlog as the listener
                # closed, then closed without an answer. Not hung; a later try must be
                # refused.
                detail = f"closed without a response ({type(error).__name__}), then never refused"
            except OSError as error:
                detail = f"{type(error).__name__}: {error}"
            await asyncio.sleep(0.1)
        report("a new connection is refused at once", refused, detail)
        await first.send("still here")
        report("the open connection still echoes", await asyncio.wait_for(first.recv(), 10) == "still here")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
