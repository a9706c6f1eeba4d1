'use strict';
// Interop client on Node `ws`: runs a fixed script against an echo server.
//
// Usage: node tests/peers/node_client.js URL [--server-close]
//
// URL is a loopback ws:// URL of an echo server (e.g. one of wsflow's
// echo-server examples). Every check uses its own connection and a 10 s time
// limit; one line per check, then `N passed, M failed`; exit status 0 only if
// all checks passed. --server-close adds a check of the peers'
// "close:CODE:REASON" command (a server-initiated close).
const crypto = require('crypto');
const WebSocket = require('ws');

const CHECK_TIMEOUT_MS = 10000;
const MAX_PAYLOAD = 16 * 1024 * 1024;

class CheckFailed extends Error {}
function expect(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

// A connection with a queue of received events, so checks can be written as
// straight-line code: await c.next() -> {type: 'message'|'pong'|'close', ...}.
function open(url, protocols, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { maxPayload: MAX_PAYLOAD, maxFragments: 0, ...options });
    const queue = [];
    const waiters = [];
    const push = (ev) => (waiters.length ? waiters.shift()(ev) : queue.push(ev));
    ws.on('message', (data, isBinary) => push({ type: 'message', data, isBinary }));
    ws.on('pong', (data) => push({ type: 'pong', data }));
    let opened = false;
    ws.on('close', (code, reason) => {
      if (!opened) reject(new CheckFailed(`connection closed during the handshake (${code})`));
      push({ type: 'close', code, reason: reason.toString() });
    });
    ws.on('error', (err) => (opened ? push({ type: 'error', err }) : reject(err)));
    ws.on('open', () => (opened = true) && resolve({
      ws,
      next: () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r))),
      send: (data, opts) => new Promise((res, rej) => ws.send(data, opts, (e) => (e ? rej(e) : res()))),
    }));
  });
}

function describe(ev) {
  if (ev.type !== 'message') return ev.type === 'close' ? `close ${ev.code}` : ev.type;
  return `${ev.isBinary ? 'binary' : 'text'}(${ev.data.length})`;
}

async function recvMessage(c, isBinary, expected, what) {
  const ev = await c.next();
  expect(ev.type === 'message', `${what}: expected a message, got ${describe(ev)}`);
  expect(ev.isBinary === isBinary, `${what}: sent ${isBinary ? 'binary' : 'text'}, got ${describe(ev)}`);
  expect(Buffer.from(ev.data).equals(expected), `${what}: echo differs`);
}

async function echoOne(c, data, isBinary, what = `${isBinary ? 'binary' : 'text'}(${data.length})`) {
  const buf = Buffer.from(data);
  await c.send(buf, { binary: isBinary });
  await recvMessage(c, isBinary, buf, what);
}

async function withConn(url, protocols, fn) {
  const c = await open(url, protocols);
  try {
    return await fn(c);
  } finally {
    c.ws.terminate();
  }
}

const checks = {
  'text-non-ascii': (url) => withConn(url, [], async (c) => {
    const msg = Buffer.from('héllo wörld ✓ κόσμε 🦀 \u0000 end');
    await echoOne(c, msg, false);
    await echoOne(c, Buffer.alloc(0), false);
    return `non-ASCII text (${msg.length} bytes) and empty text echoed`;
  }),
  'binary-1mib': (url) => withConn(url, [], async (c) => {
    await echoOne(c, crypto.randomBytes(1 << 20), true);
    await echoOne(c, Buffer.alloc(0), true);
    return '1 MiB binary and empty binary echoed';
  }),
  'messages-64kib': (url) => withConn(url, [], async (c) => {
    const sizes = [125, 126, 127, 65535, 65536, 65537];
    for (const n of sizes) {
      await echoOne(c, Buffer.alloc(n, 'x'), false);
      await echoOne(c, Buffer.alloc(n, n & 0xff), true);
    }
    const burst = Array.from({ length: 16 }, (_, i) => Buffer.alloc(65536, i));
    await Promise.all(burst.map((b) => c.send(b, { binary: true })));
    for (let i = 0; i < burst.length; i++) await recvMessage(c, true, burst[i], `pipelined 64 KiB message ${i}`);
    return `sizes ${JSON.stringify(sizes)} (text+binary) and 16 pipelined 64 KiB messages echoed`;
  }),
  fragmented: (url) => withConn(url, [], async (c) => {
    const text = Buffer.from('fragmented ✓ message');
    const cut = text.indexOf(Buffer.from('✓')) + 1; // split inside a multi-byte UTF-8 sequence
    const parts = [text.subarray(0, cut), text.subarray(cut, cut + 1), text.subarray(cut + 1)];
    parts.forEach((p, i) => c.ws.send(p, { binary: false, fin: i === parts.length - 1 }));
    await recvMessage(c, false, text, 'fragmented text');
    const bparts = [Buffer.from([0, 1]), Buffer.alloc(0), Buffer.alloc(70000, 0xff), Buffer.from('end')];
    bparts.forEach((p, i) => c.ws.send(p, { binary: true, fin: i === bparts.length - 1 }));
    await recvMessage(c, true, Buffer.concat(bparts), 'fragmented binary');
    return `text in ${parts.length} fragments (UTF-8 split across frames) and binary in ${bparts.length} fragments`;
  }),
  'ping-pong': (url) => withConn(url, [], async (c) => {
    const payloads = [Buffer.from('wsflow-ping\x00\xff', 'latin1'), Buffer.from(Array.from({ length: 125 }, (_, i) => i))];
    for (const p of payloads) {
      c.ws.ping(p);
      const ev = await c.next();
      expect(ev.type === 'pong', `expected a pong, got ${describe(ev)}`);
      expect(Buffer.from(ev.data).equals(p), `pong payload differs from the ${p.length}-byte ping payload`);
    }
    await echoOne(c, Buffer.from('after ping'), false);
    return `pongs matched payloads of ${JSON.stringify(payloads.map((p) => p.length))} bytes`;
  }),
  subprotocol: (url) => withConn(url, ['superchat', 'chat'], async (c) => {
    const offered = ['superchat', 'chat'];
    expect(offered.includes(c.ws.protocol), `server selected '${c.ws.protocol}', offered ${offered}`);
    await echoOne(c, Buffer.from('with subprotocol'), false);
    return `offered ${JSON.stringify(offered)}, server selected '${c.ws.protocol}'`;
  }),
  'close-1000': (url) => withConn(url, [], async (c) => {
    await echoOne(c, Buffer.from('before close'), false);
    const t0 = Date.now();
    c.ws.close(1000, 'client done');
    const ev = await c.next();
    const dt = Date.now() - t0;
    expect(ev.type === 'close', `expected the close, got ${describe(ev)}`);
    expect(ev.code === 1000, `server answered with close code ${ev.code}`);
    expect(dt < 2000, `closing handshake + TCP close took ${dt} ms`);
    return `client close 1000 'client done' -> server replied ${ev.code} '${ev.reason}' in ${dt} ms`;
  }),
  'server-close': (url) => withConn(url, [], async (c) => {
    await c.send('close:4001:server says bye', { binary: false });
    const ev = await c.next();
    expect(ev.type === 'close', `expected a close, got ${describe(ev)}`);
    expect(ev.code === 4001 && ev.reason === 'server says bye', `got close ${ev.code} '${ev.reason}'`);
    return "server closed with 4001 'server says bye'";
  }),
};

async function main() {
  const args = process.argv.slice(2);
  const serverClose = args.includes('--server-close');
  const rest = args.filter((a) => a !== '--server-close');
  if (rest.length !== 1 || !/^ws:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/.*)?$/.test(rest[0])) {
    console.error('usage: node node_client.js ws://127.0.0.1:PORT[/path] [--server-close]');
    process.exit(2);
  }
  const names = Object.keys(checks).filter((n) => serverClose || n !== 'server-close');
  let passed = 0;
  let failed = 0;
  for (const name of names) {
    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(() => rej(new CheckFailed(`timed out after ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
    });
    try {
      const detail = await Promise.race([checks[name](rest[0]), timeout]);
      console.log(`PASS ${name.padEnd(15)} ${detail}`);
      passed++;
    } catch (e) {
      console.log(`FAIL ${name.padEnd(15)} ${e instanceof CheckFailed ? e.message : `${e.name}: ${e.message}`}`);
      failed++;
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0); // also ends connections left open by a timed-out check
}

main();
