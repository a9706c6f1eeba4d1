#!/usr/bin/env python3
"""Broadcast interop on Python `websockets`: members with and without permessage-deflate
in one room of a broadcast server (wsflow-tokio's broadcast-server example, run with
--deflate) all decode the same prepared (framed once, compressed once) messages.

Usage: tests/peers/.venv/bin/python tests/peers/py_broadcast.py ws://127.0.0.1:PORT/

Prints one line per check, then `N passed, M failed`; exit status 0 only if all passed.
"""
import asyncio
import sys

from websockets.asyncio.client import connect


async def main(url):
    passed = failed = 0
    members = []
    try:
        for i in range(6):
            members.append(await connect(url, compression="deflate" if i % 2 == 0 else None,
                                         max_size=2 ** 22))
        names = [[e.name for e in m.protocol.extensions] for m in members]
        ok = names[0] == ["permessage-deflate"] and names[1] == []
        print("%s negotiation: %s" % ("PASS" if ok else "FAIL", names), flush=True)
        passed, failed = passed + ok, failed + (not ok)
        await members[5].send("ready")
        for m in members:
            assert await asyncio.wait_for(m.recv(), 10) == "ready"
        sent = ['{"seq": %d, "text": "hello hello everyone in the room"}' % i for i in range(50)]
        sent += [bytes([i]) * 70000 for i in range(3)] + ["x" * 3_000_000]
        for message in sent:
            await members[1].send(message)
        for index, m in enumerate(members):
            got = [await asyncio.wait_for(m.recv(), 10) for _ in sent]
            ok = got == sent
            print("%s member %d (%s) got all %d messages in order" % (
                "PASS" if ok else "FAIL", index, "deflate" if index % 2 == 0 else "plain", len(sent)), flush=True)
            passed, failed = passed + ok, failed + (not ok)
    except Exception as e:  # noqa: BLE001
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
        failed += 1
    finally:
        for m in members:
            await m.close()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
