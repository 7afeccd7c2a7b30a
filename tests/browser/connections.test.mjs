// The page loads while another client polls /api/status 20 times a second
// over one keep-alive connection (issue 19: in some loads `GET /app.js` sat
// unread for 15 s and the page never came up). Each round starts a fresh
// telepi, as the stall came on a server whose connection threads were
// few: the browser opens several connections at once for the page's files,
// and tiny_http's thread pool lost the wake-up of one of them (fixed in
// vendor/tiny_http; tests/http_connections.rs is the same without a browser).
//
//   node --test tests/browser/connections.test.mjs   (TELEPI_BIN as page.test.mjs)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';
import { sleep, waitFor } from './wait.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.resolve(REPO, process.env.TELEPI_BIN || 'target/debug/telepi');
const ROUNDS = 8;
// A loopback page loads in well under a second; the stall lasted 15 s.
const LOAD_TIMEOUT_MS = 8000;

const freePort = () => new Promise((resolve, reject) => {
  const srv = net.createServer().once('error', reject);
  srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address();
    srv.close(() => resolve(port));
  });
});

async function startTelepi() {
  const [httpPort, rtcPort] = [await freePort(), await freePort()];
  const proc = spawn(BIN, ['--http', `127.0.0.1:${httpPort}`, '--rtc', `127.0.0.1:${rtcPort}`], { cwd: REPO, stdio: 'ignore' });
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor('telepi to answer', () => fetch(`${base}/api/status`).then((r) => r.ok), { timeoutMs: 15_000, intervalMs: 100 });
  return { proc, base };
}

// GET /api/status every 50 ms, always over the same kept-alive connection.
function startPoller(base) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const poller = { polls: 0, running: true };
  poller.done = (async () => {
    while (poller.running) {
      await new Promise((resolve) => {
        http.get(`${base}/api/status`, { agent }, (res) => res.resume().on('end', resolve)).on('error', resolve);
      });
      poller.polls += 1;
      await sleep(50);
    }
    agent.destroy();
  })();
  return poller;
}

test('the page loads every time while a keep-alive poller hammers /api/status', async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS, '--remote-debugging-pipe', '--mute-audio'],
  });
  const failed = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const { proc, base } = await startTelepi();
      const poller = startPoller(base);
      const context = await browser.newContext();
      try {
        await waitFor('the poller to get going', () => poller.polls, { until: (n) => n >= 3 });
        const page = await context.newPage();
        await page.goto(`${base}/`, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
        await page.waitForFunction(() => window.telepi !== undefined, null, { timeout: 2000 });
      } catch (err) {
        failed.push(`round ${round}: ${err.message.split('\n')[0]}`);
      } finally {
        await context.close();
        poller.running = false;
        await poller.done;
        proc.kill('SIGTERM');
      }
    }
  } finally {
    await browser.close();
  }
  assert.deepEqual(failed, [], `the page did not load in ${failed.length} of ${ROUNDS} rounds`);
});
