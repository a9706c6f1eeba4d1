#!/usr/bin/env python3
"""Interop client for WebSockets over HTTP/2 (RFC 8441) on Python `h2` and `wsproto`.

Usage: tests/peers/.venv/bin/python tests/peers/py_h2_client.py HOST:PORT [--tls] [--root-only]

HOST:PORT is a loopback echo server speaking h2c with prior knowledge (wsflow-axum's
echo-server example, wsflow-tokio's hyper-echo-server), or with --tls, HTTP/2 over TLS
by ALPN `h2` (the certificate is not verified: a loopback test server's). With
--root-only every WebSocket is opened on `/` (hyper-echo-server answers 404 elsewhere),
else on several paths. One HTTP/2 connection carries every WebSocket: `h2` does the
framing and the extended CONNECT (`:protocol = websocket`), `wsproto` the WebSocket
frames (client role: masked) with permessage-deflate. One line per check, then
`N passed, M failed`; exit status 0 only if all passed.
"""
import os
import random
import re
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

LOOPBACK = re.compile(r"(127\.\d+\.\d+\.\d+|localhost):(\d+)$")
TIMEOUT = 10.0


ROOT_ONLY = "--root-only" in sys.argv[1:]


def path(wanted):
    return "/" if ROOT_ONLY else wanted


class CheckFailed(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise CheckFailed(what)


class Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.status = None
        self.headers = {}
        self.ws = None
        self.body = b""
        self.pending = b""
        self.events = []
        self.ended = False
        self.reset = False
        self.after_close = b""


class Peer:
    """One HTTP/2 connection and the WebSockets on it."""

    def __init__(self, host, port, tls):
        self.authority = "%s:%d" % (host, port)
        self.scheme = "https" if tls else "http"
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            self.sock = context.wrap_socket(self.sock, server_hostname=host)
            if self.sock.selected_alpn_protocol() != "h2":
                raise OSError("ALPN chose %r, not h2" % self.sock.selected_alpn_protocol())
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        self.streams = {}
        self.settings_received = False
        self.flush()

    def flush(self):
        for stream in self.streams.values():
            while stream.pending and not stream.ended and not stream.reset:
                window = min(self.conn.local_flow_control_window(stream.id), self.conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk, stream.pending = stream.pending[:window], stream.pending[window:]
                self.conn.send_data(stream.id, chunk)
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, done, what):
        """Reads and dispatches until `done()` holds."""
        deadline = time.monotonic() + TIMEOUT
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed("timed out waiting for " + what)
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            readable = pending or select.select([self.sock], [], [], left)[0]
            if not readable:
                continue
            data = self.sock.recv(1 << 16)
            if not data:
                raise CheckFailed("the server closed the connection while waiting for " + what)
            for event in self.conn.receive_data(data):
                self.dispatch(event)
            self.flush()

    def dispatch(self, event):
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_received = True
            return
        stream = self.streams.get(getattr(event, "stream_id", None))
        if stream is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            stream.headers = dict(event.headers)
            stream.status = int(stream.headers[":status"])
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, stream.id)
            if stream.ws is not None and stream.ws.state is ConnectionState.CLOSED:
                stream.after_close += event.data  # the final DATA frame is empty
            elif stream.ws is not None:
                stream.ws.receive_data(event.data)
                stream.events.extend(stream.ws.events())
            else:
                stream.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream.reset = True

    def connect_protocol_enabled(self):
        self.pump(lambda: self.settings_received, "the server's SETTINGS")
        return self.conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1

    def request(self, path, headers):
        """Sends an extended CONNECT; returns its stream (not waited for)."""
        stream = Stream(self.conn.get_next_available_stream_id())
        self.streams[stream.id] = stream
        pseudo = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", self.scheme),
            (":path", path),
            (":authority", self.authority),
        ]
        self.conn.send_headers(stream.id, pseudo + headers)
        self.flush()
        return stream

    def open(self, path="/", subprotocols=("chat",), deflate=True):
        """Sends a WebSocket request; returns its stream and the deflate extension."""
        headers = [("sec-websocket-version", "13")]
        if subprotocols:
            headers.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        extension = PerMessageDeflate() if deflate else None
        if extension:
            headers.append(("sec-websocket-extensions", "permessage-deflate; " + extension.offer()))
        stream = self.request(path, headers)
        stream.extension = extension
        return stream

    def established(self, stream):
        """Waits for the 200 and starts the WebSocket on the stream."""
        self.pump(lambda: stream.status is not None or stream.reset, "the response on stream %d" % stream.id)
        expect(stream.status == 200, "status %s (reset: %s)" % (stream.status, stream.reset))
        expect("sec-websocket-accept" not in stream.headers, "Sec-WebSocket-Accept over HTTP/2")
        extensions = []
        answer = stream.headers.get("sec-websocket-extensions")
        if answer:
            expect(stream.extension is not None and answer.startswith("permessage-deflate"), "extension " + answer)
            stream.extension.finalize(answer)
            extensions.append(stream.extension)
        stream.ws = Connection(ConnectionType.CLIENT, extensions=extensions)
        return stream

    def send(self, stream, event):
        stream.pending += stream.ws.send(event)
        self.flush()

    def next_event(self, stream, what):
        self.pump(lambda: stream.events or stream.ended or stream.reset, what)
        expect(stream.events, "stream %d ended before %s" % (stream.id, what))
        return stream.events.pop(0)

    def message(self, stream):
        """The next whole message (text or bytes), pings answered by wsproto's caller here."""
        parts = []
        while True:
            event = self.next_event(stream, "a message")
            if isinstance(event, Ping):
                self.send(stream, event.response())
                continue
            expect(isinstance(event, (TextMessage, BytesMessage)), "expected a message, got %r" % (event,))
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)


def check_settings(peer):
    expect(peer.connect_protocol_enabled(), "SETTINGS_ENABLE_CONNECT_PROTOCOL is not 1")
    return "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1"


def check_three_streams(peer):
    streams = [peer.open(path("/echo/%d" % n)) for n in range(3)]
    for stream in streams:
        peer.established(stream)
        expect(stream.headers.get("sec-websocket-protocol") == "chat", "subprotocol %r" % stream.headers)
        expect(stream.extension.enabled(), "permessage-deflate not agreed: %r" % stream.headers)
    rng = random.Random(8441)
    sent = {}
    # Everything is sent on all three streams before anything is read back: the
    # WebSockets are interleaved on the connection, and 300 KB exceeds a stream window.
    for n, stream in enumerate(streams):
        text = ("stream %d: " % n) + "lorem ipsum dolor sit amet " * 4000
        data = bytes(rng.getrandbits(8) for _ in range(300_000))
        sent[stream.id] = [text, data]
        peer.send(stream, Message(data=text))
        peer.send(stream, Message(data=data))
    for stream in streams:
        for want in sent[stream.id]:
            got = peer.message(stream)
            expect(got == want, "echo differs on stream %d (%d vs %d)" % (stream.id, len(got), len(want)))
    peer.three = streams
    return "3 WebSockets on one connection, 2 messages each (deflate, 300 KB binary)"


def check_ping(peer):
    stream = peer.three[0]
    peer.send(stream, Ping(payload=b"h2 ping"))
    event = peer.next_event(stream, "a pong")
    expect(isinstance(event, Pong) and event.payload == b"h2 ping", "got %r" % (event,))
    return "pong with the payload"


def close_with(peer, stream, code, reason):
    peer.send(stream, CloseConnection(code=code, reason=reason))
    event = peer.next_event(stream, "the close echo")
    expect(isinstance(event, CloseConnection), "got %r" % (event,))
    expect(event.code == code, "close code %s, sent %s" % (event.code, code))
    peer.pump(lambda: stream.ended or stream.reset, "the end of stream %d" % stream.id)
    expect(stream.ended and not stream.reset, "stream %d was reset, not ended" % stream.id)
    expect(not stream.after_close, "%d bytes after the close frame" % len(stream.after_close))
    return event


def check_close_1000(peer):
    close_with(peer, peer.three[0], 1000, "")
    return "1000 echoed, stream ended"


def check_close_4321(peer):
    close_with(peer, peer.three[1], 4321, "custom")
    return "4321 echoed, stream ended"


def check_others_unaffected(peer):
    stream = peer.three[2]
    peer.send(stream, Message(data="still open"))
    expect(peer.message(stream) == "still open", "no echo after the other streams closed")
    fresh = peer.established(peer.open(path("/again"), subprotocols=(), deflate=False))
    expect("sec-websocket-extensions" not in fresh.headers, "deflate without an offer")
    peer.send(fresh, Message(data=b"\x00\xff" * 1000))
    expect(peer.message(fresh) == b"\x00\xff" * 1000, "no echo on a new stream")
    close_with(peer, fresh, 1000, "")
    close_with(peer, stream, 1001, "going")
    return "the third stream and a new one still echo"


def check_bad_version(peer):
    stream = peer.request("/", [("sec-websocket-version", "8")])
    peer.pump(lambda: stream.status is not None and (stream.ended or stream.reset), "the rejection")
    expect(stream.status == 400, "status %s" % stream.status)
    expect(stream.headers.get("sec-websocket-version") == "13", "headers %r" % stream.headers)
    return "400 with Sec-WebSocket-Version: 13"


CHECKS = [
    ("settings", check_settings),
    ("three-streams", check_three_streams),
    ("ping-pong", check_ping),
    ("close-1000", check_close_1000),
    ("close-4321", check_close_4321),
    ("others-go-on", check_others_unaffected),
    ("bad-version", check_bad_version),
]


def main(host, port, tls):
    passed = failed = 0
    try:
        peer = Peer(host, port, tls)
    except OSError as e:
        print("FAIL %-15s %s" % ("connect", e), flush=True)
        print("0 passed, 1 failed", flush=True)
        return 1
    for name, fn in CHECKS:
        try:
            detail = fn(peer)
            print("PASS %-15s %s" % (name, detail), flush=True)
            passed += 1
        except Exception as e:  # any error fails this check (later ones may fail with it)
            reason = str(e) if isinstance(e, CheckFailed) else "%s: %s" % (type(e).__name__, e)
            print("FAIL %-15s %s" % (name, reason), flush=True)
            failed += 1
    peer.conn.close_connection()
    peer.flush()
    peer.sock.close()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if arg not in ("--tls", "--root-only")]
    match = LOOPBACK.match(args[0]) if len(args) == 1 else None
    if not match:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(match.group(1), int(match.group(2)), "--tls" in sys.argv[1:]))
