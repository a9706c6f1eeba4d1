// Fan-out anchor for `loadtest --fanout`: Node `ws` (from tests/peers/node_modules) in its
// documented broadcast idiom, every message from any client sent to every open client
// (`wss.clients.forEach(client => client.send(data))`).
//
// Usage: node bench/peers/fanout_server.js [--deflate]
// Prints the port it listens on (127.0.0.1, chosen by the OS) as its first line.
// --deflate accepts permessage-deflate with `ws`'s defaults except `threshold: 0`: `ws`
// compresses only messages of 1 KiB or more by default, and the scenario's lines are 100
// bytes; each send compresses for its own client (context takeover, `ws`'s default).
'use strict';
const path = require('path');
const { WebSocketServer, WebSocket } = require(path.join(__dirname, '../../tests/peers/node_modules/ws'));

const deflate = process.argv.includes('--deflate');
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  maxPayload: 1 << 20,
});
wss.on('listening', () => console.log(wss.address().port));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    wss.clients.forEach((client) => {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    });
  });
  ws.on('error', () => {});
});
