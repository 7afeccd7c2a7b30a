// What the tests in tests/link/ share: the link tests/link/run.sh built
// (TELEPI_LINK), polling with the tail of the server's log in a failure, the
// robot's status read on its own side of the link, `ip` in a namespace, and
// for the benchmarks a viewer browser and its gaps between decoded frames.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium.mjs';
import { waitFor as poll } from '../browser/wait.mjs';
import { stampFrames } from '../browser/timeline.mjs';

// playwright-core lives in tests/browser/node_modules (one npm project for all browser tests).
export const { chromium } = createRequire(new URL('../browser/package.json', import.meta.url))('playwright-core');
export const LINK = JSON.parse(process.env.TELEPI_LINK || 'null');
if (!LINK) throw new Error('TELEPI_LINK is not set: run tests/link/run.sh, which builds the link this test needs');

const run = promisify(execFile);

async function logTail(lines = 30) {
  const text = await fs.readFile(LINK.log, 'utf8').catch((e) => `(cannot read the log: ${e.message})`);
  return text.split('\n').filter((l) => !l.startsWith('ALSA lib')).slice(-lines).join('\n');
}

export const waitFor = (what, probe, options = {}) =>
  poll(what, probe, { ...options, tail: async () => `--- ${LINK.server} log tail ---\n${await logTail()}` });

// Headless Chromium as the link tests' and benchmarks' viewer, in a fresh
// profile removed by close(). `secure`: for telepi's HTTPS listener (its
// self-signed certificate accepted) with fake camera and microphone devices.
export async function launchViewer({ secure = false } = {}) {
  const profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-link-chromium-'));
  const secureArgs = ['--ignore-certificate-errors', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection'),
      ...(secure ? secureArgs : []), `--user-data-dir=${profileDir}`, '--remote-debugging-pipe'],
    ignoreHTTPSErrors: secure,
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
  // Every peer connection the page makes, in window.__pcList (receivedVideo).
  await context.addInitScript(() => {
    window.__pcList = [];
    const Original = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Original {
      constructor(...args) {
        super(...args);
        window.__pcList.push(this);
      }
    };
  });
  // The moments the page's #video decoded-frame count changes, in
  // window.__frames: what the benchmarks' gaps are measured on.
  await context.addInitScript(stampFrames);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await fs.rm(profileDir, { recursive: true, force: true });
    },
  };
}

// Opens telepi's page in `viewer`, waits for video and both data channels,
// and takes the operator role (the w key drives then). Returns the page.
export async function openAsOperator(viewer, init) {
  if (init) await viewer.context.addInitScript(init);
  const page = await viewer.context.newPage();
  page.setDefaultTimeout(10_000);
  const stats = () => page.evaluate(() => window.telepi.stats());
  await page.goto(`${LINK.base}/`, { waitUntil: 'load' });
  await waitFor('video and the data channels', stats,
    { until: (s) => s.framesDecoded > 0 && s.dataChannel === 'open' && s.driveChannel === 'open', timeoutMs: 20_000 });
  await waitFor('the operator role', async () => {
    const s = await stats();
    if (s.role === 'viewer' && await page.isVisible('#claim')) await page.click('#claim');
    return s;
  }, { until: (s) => s.role === 'operator', timeoutMs: 10_000, intervalMs: 300 });
  return page;
}

// The page's decoded frames in the `seconds` from page time `from` (later ones
// left out: the caller may read after the window): frames per
// second, the longest gap between two, gaps over 500 ms and the time in gaps
// over 250 ms (the "frozen"), as one printable line.
export async function frameGaps(page, from, seconds) {
  const frames = (await page.evaluate(() => window.__frames)).filter((at) => at >= from && at <= from + seconds * 1000);
  assert.ok(frames.length > 0, 'frames decoded');
  let longest = 0;
  let over500 = 0;
  let frozen = 0;
  for (let i = 1; i < frames.length; i += 1) {
    const gap = frames[i] - frames[i - 1];
    longest = Math.max(longest, gap);
    if (gap > 500) over500 += 1;
    if (gap > 250) frozen += gap;
  }
  return `${(frames.length / seconds).toFixed(1)} fps, longest gap ${Math.round(longest)} ms, ` +
    `gaps over 500 ms: ${over500}, frozen ${Math.round(frozen)} ms`;
}

// The page's received video so far (every connection it made), summed over
// its inbound-rtp stats: what tells losses repaired from keyframes asked
// for, and the receiver's own freeze count.
const RECEIVED = ['packetsReceived', 'packetsLost', 'retransmittedPacketsReceived', 'nackCount', 'pliCount',
  'firCount', 'framesDecoded', 'keyFramesDecoded', 'framesDropped', 'freezeCount', 'totalFreezesDuration',
  'jitterBufferDelay', 'jitterBufferEmittedCount'];
export async function receivedVideo(page) {
  return page.evaluate(async (keys) => {
    const sum = Object.fromEntries(keys.map((k) => [k, 0]));
    for (const pc of window.__pcList) {
      (await pc.getStats()).forEach((r) => {
        if (r.type !== 'inbound-rtp' || r.kind !== 'video') return;
        for (const k of keys) sum[k] += r[k] || 0;
      });
    }
    return sum;
  }, RECEIVED);
}

// What changed in the received video between two `receivedVideo` readings, printable.
export function receivedDelta(before, after) {
  const d = Object.fromEntries(RECEIVED.map((k) => [k, after[k] - before[k]]));
  const buffer = d.jitterBufferEmittedCount ? Math.round((1000 * d.jitterBufferDelay) / d.jitterBufferEmittedCount) : 0;
  return `received: ${d.packetsReceived} packets (${d.retransmittedPacketsReceived} retransmitted), ` +
    `${d.packetsLost} lost, ${d.nackCount} NACKs, ${d.pliCount + d.firCount} PLI/FIR, ${d.keyFramesDecoded} keyframes decoded, ` +
    `${d.framesDropped} frames dropped, ${d.freezeCount} freezes (${Math.round(1000 * d.totalFreezesDuration)} ms), ` +
    `jitter buffer ${buffer} ms`;
}

// The robot's status, read on its own side of the link (its loopback), so
// it answers during an outage too.
export async function robot() {
  const { stdout } = await run('ip',
    ['netns', 'exec', LINK.robotNs, 'curl', '-sf', '--max-time', '2', 'http://127.0.0.1:8080/api/status']);
  return JSON.parse(stdout);
}

// Runs `ip ARGS...` in the namespace `ns`.
export const ipIn = (ns, ...args) => run('ip', ['netns', 'exec', ns, 'ip', ...args]);
