// A benchmark, not a test (docs/benchmarks.md): 20 s of watching and
// driving (w held: the page sends drives at 10 Hz) through the link as
// tests/link/run.sh was told to emulate it (TELEPI_LINK_EMULATE, e.g.
// "--loss 0.02" or "--delay 60 --jitter 30"). Prints frames per second, the
// longest gap between two decoded frames, gaps over 500 ms and the robot's
// deadman trips; asserts only that the page watched and drove at all.
//   TELEPI_LINK_EMULATE="--loss 0.02" TELEPI_LINK_FILES=tests/link/conditions.bench.mjs tests/link/run.sh
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium.mjs';
import { sleep } from '../browser/wait.mjs';
import { LINK, chromium, waitFor, robot } from './lib.mjs';

const SECONDS = 20;
let context;
let profileDir;

after(async () => {
  await context?.close().catch(() => {});
  if (profileDir) await fs.rm(profileDir, { recursive: true, force: true });
});

test(`${SECONDS} s of watching and driving through the emulated link`, async (t) => {
  profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-link-bench-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection'),
      `--user-data-dir=${profileDir}`, '--remote-debugging-pipe'],
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
  await context.addInitScript(() => {
    window.__frames = [];
    let seen = 0;
    setInterval(() => {
      const video = document.getElementById('video');
      const frames = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
      if (frames !== seen) {
        seen = frames;
        window.__frames.push(performance.now());
      }
    }, 5);
  });
  const page = await context.newPage();
  await page.goto(`${LINK.base}/`, { waitUntil: 'load' });
  const stats = () => page.evaluate(() => window.telepi.stats());
  await waitFor('video and the data channel', stats,
    { until: (s) => s.framesDecoded > 0 && s.driveChannel === 'open', timeoutMs: 20_000 });
  await waitFor('the operator role', async () => {
    const s = await stats();
    if (s.role === 'viewer' && await page.isVisible('#claim')) await page.click('#claim');
    return s;
  }, { until: (s) => s.role === 'operator', timeoutMs: 10_000, intervalMs: 300 });
  await sleep(2000); // past the first keyframe and the bitrate's start
  const trips = (await robot()).deadman_trips;
  const from = await page.evaluate(() => performance.now());
  await page.keyboard.down('w');
  await sleep(SECONDS * 1000);
  const end = await robot();
  await page.keyboard.up('w');
  const frames = (await page.evaluate(() => window.__frames)).filter((at) => at >= from);
  assert.ok(frames.length > 0, 'frames decoded');
  let longest = 0;
  let over500 = 0;
  let frozen = 0; // time in gaps over 250 ms, the "frozen"
  for (let i = 1; i < frames.length; i += 1) {
    const gap = frames[i] - frames[i - 1];
    longest = Math.max(longest, gap);
    if (gap > 500) over500 += 1;
    if (gap > 250) frozen += gap;
  }
  t.diagnostic(`LINK figures: ${process.env.TELEPI_LINK_EMULATE || 'clean link'}: ${(frames.length / SECONDS).toFixed(1)} fps, ` +
    `longest gap ${Math.round(longest)} ms, gaps over 500 ms: ${over500}, frozen ${Math.round(frozen)} ms, deadman trips while driving: ${end.deadman_trips - trips}, ` +
    `motors ${JSON.stringify(end.motors)}`);
});
