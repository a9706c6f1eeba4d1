#!/usr/bin/env python3
"""Two chat servers on two hosts, one Redis on a third (tests/services/scale_out.sh sets
them up in network namespaces): a member on each server, lines cross in both directions;
then, while the script waits, the caller restarts Redis (it touches the file named by
--restart-flag and waits for it to be removed), and lines cross again once the bridges are
back.

Usage: py_chat_scaleout.py ws://A/ws ws://B/ws RESTART_FLAG_FILE
Prints one line per check, then `N passed, M failed`.
"""
import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect


async def join(url, nick):
    ws = await connect(url + "?room=scale")
    await ws.send(nick)
    hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert hello["type"] == "hello", hello
    return ws


async def wait_line(ws, nick, text, timeout):
    async def find():
        while True:
            event = json.loads(await ws.recv())
            if event.get("type") == "line" and event["nick"] == nick and event["text"] == text:
                return
    await asyncio.wait_for(find(), timeout)


async def say_until_heard(speaker, nick, listener, tag, timeout):
    """`speaker` says a line every 0.5 s until `listener` sees one: delivery across
    processes is at most once, and a bridge may still be reconnecting to Redis."""
    for attempt in range(int(timeout / 0.5)):
        text = "%s %d" % (tag, attempt)
        await speaker.send(text)
        try:
            await wait_line(listener, nick, text, 0.5)
            return
        except asyncio.TimeoutError:
            continue
    raise AssertionError("%s's lines never crossed (%s)" % (nick, tag))


async def crossing(alice, bob, tag, timeout):
    await say_until_heard(alice, "alice", bob, tag, timeout)
    await say_until_heard(bob, "bob", alice, tag + " back", timeout)


async def main(url_a, url_b, flag):
    passed = failed = 0

    async def check(name, coro):
        nonlocal passed, failed
        try:
            await coro
            print("PASS " + name, flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001
            print("FAIL %s: %s %s" % (name, type(e).__name__, e), flush=True)
            failed += 1

    alice = await join(url_a, "alice")
    bob = await join(url_b, "bob")
    await check("lines cross between the two hosts through Redis", crossing(alice, bob, "before", 10))
    open(flag, "w").close()
    for _ in range(300):
        if not os.path.exists(flag):
            break
        await asyncio.sleep(0.1)
    await check("after Redis restarted, lines cross again", crossing(alice, bob, "after", 30))
    await alice.close()
    await bob.close()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
