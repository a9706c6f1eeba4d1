// Headless Chromium (a real browser, Debian's build) against a wsflow chat page and echo
// server, driven through the DevTools protocol by playwright-core.
//
// Usage: node tests/browser/chromium.js http://127.0.0.1:PORT/ ws://127.0.0.1:PORT2/
//   the first URL serves the chat example's page (WebSocket at /ws), the second is an echo
//   server. One line per check, then `N passed, M failed`; exit status 0 only if all passed.
// Environment: CHROMIUM (default /usr/bin/chromium).
'use strict';
const { chromium } = require('playwright-core');

const CHECK_TIMEOUT_MS = 20000;
const LOOPBACK = /^(http|ws):\/\/127\.0\.0\.1:\d+\/$/;

class CheckFailed extends Error {}
function expect(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

async function join(context, pageUrl, nick) {
  const page = await context.newPage();
  await page.goto(pageUrl);
  await page.fill('#nick', nick);
  await page.click('#join button');
  await page.waitForFunction(() => typeof socket !== 'undefined' && socket.readyState === WebSocket.OPEN);
  return page;
}

// Waits until an entry of the page's log contains `text` (entries end with their time).
async function waitForLine(page, text, selector = '#log div') {
  await page.waitForFunction(
    ([t, s]) => [...document.querySelectorAll(s)].some((d) => d.textContent.includes(t)),
    [text, selector],
    { timeout: CHECK_TIMEOUT_MS },
  );
}

const checks = {
  // Two tabs join the chat, one speaks, the other sees it (its own line set apart); who is
  // online; deflate negotiated; switching rooms reconnects to the new room.
  'chat-two-tabs': async (browser, pageUrl) => {
    const context = await browser.newContext();
    try {
      const alice = await join(context, pageUrl, 'alice');
      const bob = await join(context, pageUrl, 'bob');
      await waitForLine(alice, 'bob joined');
      await waitForLine(alice, 'bob', '#online li');
      const extensions = await alice.evaluate(() => socket.extensions);
      expect(/^permessage-deflate/.test(extensions), `ws.extensions is '${extensions}'`);
      await alice.fill('#text', 'hello from chromium ✓');
      await alice.click('#say button');
      await waitForLine(bob, 'hello from chromium ✓', '#log .msg');
      await waitForLine(alice, 'hello from chromium ✓', '#log .msg.mine');
      await bob.evaluate(() => { location.hash = 'games'; });
      await waitForLine(bob, 'You joined #games');
      await waitForLine(alice, 'bob left');
      await bob.fill('#text', 'only in games');
      await bob.click('#say button');
      await waitForLine(bob, 'only in games', '#log .msg.mine');
      return `alice and bob chatted through the page, bob moved to #games; ws.extensions = '${extensions}'`;
    } finally {
      await context.close();
    }
  },
  // From the chat page's origin, a script talks to the echo server: text, 1 MiB binary,
  // a 4 MiB compressible text, close code and reason.
  'echo-from-a-page': async (browser, pageUrl, echoUrl) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(pageUrl);
      const result = await page.evaluate(async (url) => {
        const ws = new WebSocket(url, ['chat']);
        ws.binaryType = 'arraybuffer';
        const queue = [];
        let waiting = null;
        const push = (item) => (waiting ? (waiting(item), (waiting = null)) : queue.push(item));
        ws.onmessage = (event) => push({ type: 'message', data: event.data });
        ws.onclose = (event) => push({ type: 'close', code: event.code, reason: event.reason, clean: event.wasClean });
        const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => (waiting = resolve)));
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error('WebSocket error before open'));
        });
        const out = { extensions: ws.extensions, protocol: ws.protocol, errors: [] };
        ws.send('héllo ✓ 🦀');
        let got = await next();
        if (got.data !== 'héllo ✓ 🦀') out.errors.push(`text echo: ${JSON.stringify(got.data)}`);
        const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 31) % 251);
        ws.send(bytes);
        got = await next();
        const back = new Uint8Array(got.data);
        if (back.length !== bytes.length || back.some((b, i) => b !== bytes[i])) out.errors.push('1 MiB binary echo differs');
        const big = '{"seq": 1, "text": "a chat line"}\n'.repeat(1 << 17);
        ws.send(big);
        got = await next();
        if (got.data !== big) out.errors.push('4 MiB text echo differs');
        ws.close(4000, 'page done');
        got = await next();
        out.close = got;
        return out;
      }, echoUrl);
      expect(result.errors.length === 0, result.errors.join('; '));
      expect(/^permessage-deflate/.test(result.extensions), `ws.extensions is '${result.extensions}'`);
      expect(result.protocol === 'chat', `ws.protocol is '${result.protocol}'`);
      expect(result.close.code === 4000 && result.close.clean, `close: ${JSON.stringify(result.close)}`);
      return `text, 1 MiB binary, 4 MiB text echoed; extensions '${result.extensions}'; clean close ${result.close.code}`;
    } finally {
      await context.close();
    }
  },
};

async function main() {
  const [pageUrl, echoUrl] = process.argv.slice(2);
  if (!LOOPBACK.test(pageUrl || '') || !LOOPBACK.test(echoUrl || '')) {
    console.error('usage: node chromium.js http://127.0.0.1:PORT/ ws://127.0.0.1:PORT2/');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  console.log(`chromium ${browser.version()}`);
  let passed = 0;
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new CheckFailed(`timed out after ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
    });
    try {
      const detail = await Promise.race([check(browser, pageUrl, echoUrl), timeout]);
      console.log(`PASS ${name.padEnd(18)} ${detail}`);
      passed++;
    } catch (error) {
      console.log(`FAIL ${name.padEnd(18)} ${error instanceof CheckFailed ? error.message : error.stack}`);
      failed++;
    } finally {
      clearTimeout(timer);
    }
  }
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
