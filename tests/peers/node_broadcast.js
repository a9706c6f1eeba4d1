'use strict';
// Broadcast interop on Node `ws`: members with and without permessage-deflate in one room
// of a broadcast server (wsflow-tokio's broadcast-server example, run with --deflate) all
// decode the same prepared (framed once, compressed once) messages.
//
// Usage: node tests/peers/node_broadcast.js ws://127.0.0.1:PORT/
// One line per check, then `N passed, M failed`; exit status 0 only if all passed.
const WebSocket = require('ws');

function member(url, deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 1 << 22 });
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const item = isBinary ? Buffer.from(data) : data.toString();
      if (waiters.length) waiters.shift()(item);
      else queue.push(item);
    });
    ws.on('error', reject);
    ws.on('open', () => resolve({
      ws,
      next: () => new Promise((res, rej) => {
        if (queue.length) return res(queue.shift());
        const timer = setTimeout(() => rej(new Error('no message within 10 s')), 10000);
        waiters.push((item) => { clearTimeout(timer); res(item); });
      }),
    }));
  });
}

async function main(url) {
  let passed = 0;
  let failed = 0;
  const members = [];
  try {
    for (let i = 0; i < 6; i++) members.push(await member(url, i % 2 === 0));
    const ext = members.map((m) => m.ws.extensions);
    const ok = /permessage-deflate/.test(ext[0]) && ext[1] === '';
    console.log(`${ok ? 'PASS' : 'FAIL'} negotiation: ${JSON.stringify(ext.slice(0, 2))}`);
    ok ? passed++ : failed++;
    members[5].ws.send('ready');
    for (const m of members) if ((await m.next()) !== 'ready') throw new Error('no ready');
    const sent = [];
    for (let i = 0; i < 50; i++) sent.push(`{"seq": ${i}, "text": "hello hello everyone in the room"}`);
    for (let i = 0; i < 3; i++) sent.push(Buffer.alloc(70000, i));
    sent.push('x'.repeat(3000000));
    for (const message of sent) members[1].ws.send(message);
    for (const [index, m] of members.entries()) {
      let same = true;
      for (const message of sent) {
        const got = await m.next();
        same = same && (Buffer.isBuffer(message) ? Buffer.isBuffer(got) && got.equals(message) : got === message);
      }
      console.log(`${same ? 'PASS' : 'FAIL'} member ${index} (${index % 2 === 0 ? 'deflate' : 'plain'}) got all ${sent.length} messages in order`);
      same ? passed++ : failed++;
    }
  } catch (error) {
    console.log(`FAIL ${error.message}`);
    failed++;
  } finally {
    for (const m of members) m.ws.terminate();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main(process.argv[2]);
