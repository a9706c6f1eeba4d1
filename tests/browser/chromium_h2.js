// Headless Chromium against a wsflow echo server over TLS with ALPN h2 (wsflow-axum's
// echo-server --tls): the page is loaded over HTTP/2, and its WebSocket must open on the
// same HTTP/2 connection with an extended CONNECT (RFC 8441), which Chromium's net log
// shows. The test certificate is trusted by its key (--ignore-certificate-errors-spki-list).
//
// Usage: node tests/browser/chromium_h2.js https://127.0.0.1:PORT/ SPKI_SHA256_BASE64 NETLOG
//   One line per check, then `N passed, M failed`; exit status 0 only if all passed.
// Environment: CHROMIUM (default /usr/bin/chromium).
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

class CheckFailed extends Error {}
function expect(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

async function main() {
  const [url, spki, netlog] = process.argv.slice(2);
  if (!/^https:\/\/127\.0\.0\.1:\d+\/$/.test(url || '') || !spki || !netlog) {
    console.error('usage: chromium_h2.js https://127.0.0.1:PORT/ SPKI_SHA256_BASE64 NETLOG');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`,
      `--log-net-log=${netlog}`, '--net-log-capture-mode=IncludeSensitive'],
  });
  console.log(`chromium ${browser.version()}`);
  let passed = 0;
  let failed = 0;
  const report = (name, fn) => fn().then(
    (detail) => { console.log(`PASS ${name.padEnd(18)} ${detail}`); passed++; },
    (error) => {
      console.log(`FAIL ${name.padEnd(18)} ${error instanceof CheckFailed ? error.message : error.stack}`);
      failed++;
    },
  );
  const page = await browser.newPage();
  let result = null;
  await report('page-over-h2', async () => {
    // The echo server serves no page: its answer to a GET (405 over HTTP/2) is the page.
    const response = await page.goto(url);
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    expect(protocol === 'h2', `the page came over ${protocol}, not h2`);
    return `status ${response.status()}, ${protocol}`;
  });
  await report('websocket-echo', async () => {
    result = await page.evaluate(async (wsUrl) => new Promise((resolve) => {
      const ws = new WebSocket(wsUrl, ['chat']);
      const got = [];
      const big = 'h2 '.repeat(100000);
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => { ws.send('hello over h2'); ws.send(new Uint8Array([1, 2, 3, 255])); ws.send(big); };
      ws.onmessage = (e) => {
        got.push(typeof e.data === 'string' ? e.data : Array.from(new Uint8Array(e.data)).join(','));
        if (got.length === 3) ws.close(1000, 'done');
      };
      ws.onclose = (e) => resolve({
        got: [got[0], got[1], got[2] === big], code: e.code, clean: e.wasClean,
        extensions: ws.extensions, protocol: ws.protocol,
      });
      ws.onerror = () => resolve({ error: true });
      setTimeout(() => resolve({ timeout: true, got }), 15000);
    }), url.replace('https', 'wss'));
    expect(!result.error && !result.timeout, `the WebSocket failed: ${JSON.stringify(result)}`);
    expect(result.got[0] === 'hello over h2' && result.got[1] === '1,2,3,255' && result.got[2] === true,
      `echo differs: ${JSON.stringify(result.got)}`);
    expect(result.code === 1000 && result.clean, `close ${result.code}, clean ${result.clean}`);
    return `text, binary, 300 KB text echoed; closed 1000`;
  });
  await report('deflate-subproto', async () => {
    expect(result && result.extensions.startsWith('permessage-deflate'), `extensions ${result && result.extensions}`);
    expect(result.protocol === 'chat', `protocol ${result.protocol}`);
    return `${result.extensions}; ${result.protocol}`;
  });
  await browser.close();
  await report('same-h2-connection', async () => {
    // A net log cut short (the browser may not finish it) ends with `,` inside `events`.
    let text = fs.readFileSync(netlog, 'utf8').trim();
    if (!text.endsWith('}')) text = `${text.replace(/,$/, '')}]}`;
    const log = JSON.parse(text);
    const types = Object.fromEntries(Object.entries(log.constants.logEventTypes).map(([k, v]) => [v, k]));
    const sessions = new Set();
    let connects = 0;
    for (const event of log.events) {
      const type = types[event.type];
      if (type === 'HTTP2_SESSION_SEND_HEADERS' && event.params) {
        sessions.add(event.source.id);
        const headers = (event.params.headers || []).join('\n');
        if (headers.includes(':protocol: websocket') && headers.includes(':method: CONNECT')) connects++;
      }
    }
    expect(connects === 1, `${connects} extended CONNECTs in the net log`);
    expect(sessions.size === 1, `${sessions.size} HTTP/2 sessions carried the page and the WebSocket`);
    return 'the page and the WebSocket (extended CONNECT) on one HTTP/2 session';
  });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
