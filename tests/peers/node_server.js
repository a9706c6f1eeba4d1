'use strict';
// Echo server on Node `ws` (a peer for wsflow's interop and Autobahn tests).
//
// Usage: node tests/peers/node_server.js PORT        (127.0.0.1 only)
//
// * echoes every text/binary message unchanged (same type);
// * subprotocols: if the client offers "chat" or "superchat", selects the first
//   of those in the client's order; otherwise none;
// * a text message "close:CODE:REASON" makes it close with that code and reason;
// * permessage-deflate enabled (ws servers default to off), no fragment-count
//   cap (ws 8.23 defaults to 16384, which fails Autobahn 9.3.1/9.3.2/9.4.1/9.4.2).
const { WebSocketServer } = require('ws');

const port = Number.parseInt(process.argv[2], 10);
if (!Number.isInteger(port)) {
  console.error('usage: node node_server.js PORT');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: true,
  maxFragments: 0,
  maxPayload: 32 * 1024 * 1024,
  handleProtocols: (offered) => [...offered].find((p) => p === 'chat' || p === 'superchat') || false,
}, () => console.log(`node_server: listening on ws://127.0.0.1:${wss.address().port}`)); // port 0: a free one

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length < 256) {
      const m = /^close:(\d{1,5}):([\s\S]*)$/.exec(data.toString());
      if (m) {
        try {
          ws.close(Number(m[1]), m[2]);
        } catch (e) { // a code ws refuses to send (1005, 1006, ...)
          ws.close(1011, 'invalid close code requested');
        }
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {}); // protocol errors from the peer: ws closes the connection itself
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
