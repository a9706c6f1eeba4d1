#!/usr/bin/env python3
"""Echo server on Hypercorn (an ASGI server nobody here wrote) for wsflow's HTTP/2 client.

Hypercorn speaks HTTP/1.1 and HTTP/2 (h2c with prior knowledge, and TLS with ALPN `h2`), and
over HTTP/2 it advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and takes WebSockets on extended
CONNECT streams (RFC 8441), with its own handshake code on `h2` and `wsproto` (which accepts
permessage-deflate).

Usage: tests/peers/.venv/bin/python tests/peers/hypercorn_echo.py PORT [CERT KEY]
  (127.0.0.1 only; PORT 0 picks a free port; with CERT and KEY, TLS with ALPN h2 and http/1.1)
Prints `hypercorn-echo: listening on ws(s)://127.0.0.1:PORT` once it accepts.

* echoes every text/binary message unchanged (same type);
* subprotocols: if the client offers "chat" or "superchat", selects the first of those in
  the client's order; otherwise none;
* a text message "close:CODE:REASON" makes it close with that code and reason;
* a text message "streams" is answered with "streams:N:HTTP", N the WebSockets this process
  has accepted so far and HTTP the HTTP version of this one (e.g. "2"), so a client can check
  that its WebSockets went over HTTP/2;
* messages up to 32 MiB.
"""
import asyncio
import re
import socket
import sys

import h2.events
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.protocol.h2 import H2Protocol


def forget_data_on_forgotten_streams(handle_events):
    """Hypercorn 0.18 forgets an HTTP/2 WebSocket stream once the closing handshake is done
    on its side (a close frame received, or sent and its app returned), and DATA that then
    arrives on that stream raises KeyError in its h2 protocol, which ends the whole connection
    and every other WebSocket on it. Such DATA is normal: the client's close frame after the
    server's, or the empty DATA frame that carries END_STREAM after the client's close frame
    (RFC 8441 §4: the end of the stream is the TCP close of RFC 6455). Hypercorn already
    ignores END_STREAM on a forgotten stream; this does the same for its DATA (giving the
    flow-control credit back), and nothing else."""

    async def patched(self, events):
        kept = []
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                kept.append(event)
        await handle_events(self, kept)

    return patched


H2Protocol._handle_events = forget_data_on_forgotten_streams(H2Protocol._handle_events)
CLOSE_CMD = re.compile(r"close:(\d{1,5}):(.*)", re.DOTALL)
accepted = 0


async def app(scope, receive, send):
    global accepted
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 426, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"WebSocket only\n"})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    offered = scope.get("subprotocols") or []
    chosen = next((p for p in offered if p in ("chat", "superchat")), None)
    await send({"type": "websocket.accept", "subprotocol": chosen})
    accepted += 1
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            m = CLOSE_CMD.fullmatch(text) if len(text) < 256 else None
            if m:
                await send({"type": "websocket.close", "code": int(m.group(1)), "reason": m.group(2)})
                return
            if text == "streams":
                text = f"streams:{accepted}:{scope.get('http_version')}"
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def main(port, cert, key):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    listener.set_inheritable(True)
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.websocket_max_message_size = 2**25
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    scheme = "ws"
    if cert:
        config.certfile, config.keyfile = cert, key
        config.alpn_protocols = ["h2", "http/1.1"]
        scheme = "wss"
    # The port is known (the socket is bound); hypercorn starts accepting on it right away,
    # and connections that come before are queued in the listen backlog.
    print(f"hypercorn-echo: listening on {scheme}://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    await serve(app, config)


if __name__ == "__main__":
    args = sys.argv[1:]
    port = int(args[0]) if args else 0
    cert, key = (args[1], args[2]) if len(args) == 3 else (None, None)
    try:
        asyncio.run(main(port, cert, key))
    except KeyboardInterrupt:
        pass
