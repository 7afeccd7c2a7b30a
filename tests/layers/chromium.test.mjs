// Per-viewer layers in headless Chromium on telepi's own page, through the
// links of tests/layers/run.sh (which sets TELEPI_LAYERS): a fast viewer,
// then a slow one behind 300 kbit/s, then a second fast one. Asserts the
// mechanisms: the slow viewer gets the low layer (320x240) and never the
// main one, the fast viewers end on the main layer (640x480), and the late
// fast joiner, which starts on the low layer, switches up at a keyframe (its
// picture changes size, which a decoder can only do at an IDR carrying new
// parameter sets). Timings are printed as figures, not asserted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium.mjs';
import { sleep, waitFor as poll } from '../browser/wait.mjs';

const { chromium } = createRequire(new URL('../browser/package.json', import.meta.url))('playwright-core');
const LAYERS = JSON.parse(process.env.TELEPI_LAYERS || 'null');
if (!LAYERS) throw new Error('TELEPI_LAYERS is not set: run tests/layers/run.sh, which builds the links this test needs');

const SLOW_IP = '10.97.0.2';
const contexts = [];
const profiles = [];

async function logTail(lines = 30) {
  const text = await fs.readFile(LAYERS.log, 'utf8').catch((e) => `(cannot read the log: ${e.message})`);
  return text.split('\n').filter((l) => !l.startsWith('ALSA lib')).slice(-lines).join('\n');
}
const waitFor = (what, probe, options = {}) =>
  poll(what, probe, { timeoutMs: 20_000, ...options, tail: async () => `--- telepi log tail ---\n${await logTail()}` });

// Every page: stamps each decoded frame and keeps every picture size it showed.
function instrument() {
  const seen = { frames: [], widths: [], pcAt: null, connectedAt: null };
  window.__layers = seen;
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      seen.pcAt ??= performance.now();
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected') seen.connectedAt ??= performance.now();
      });
    }
  };
  let frames = 0;
  setInterval(() => {
    const video = document.getElementById('video');
    if (!video || !video.getVideoPlaybackQuality) return;
    const now = video.getVideoPlaybackQuality().totalVideoFrames;
    if (now !== frames) {
      frames = now;
      seen.frames.push(performance.now());
    }
    const width = video.videoWidth;
    if (width && seen.widths[seen.widths.length - 1] !== width) seen.widths.push(width);
  }, 5);
}

async function launch(executablePath) {
  const profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-layers-chromium-'));
  profiles.push(profileDir);
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS, `--user-data-dir=${profileDir}`, '--remote-debugging-pipe'],
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
  contexts.push(context);
  await context.addInitScript(instrument);
  return context;
}

// Opens the page; resolves with it and the page's clock at navigation.
async function open(context) {
  const page = context.pages().find((p) => p.url() === 'about:blank') || await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${LAYERS.base}/`, { waitUntil: 'load' });
  const openedAt = await page.evaluate(() => performance.now());
  return { page, openedAt };
}

const seen = (page) => page.evaluate(() => ({
  widths: window.__layers.widths,
  frames: window.__layers.frames.length,
  hud: document.getElementById('layer').textContent,
}));
const frameTimes = (page) => page.evaluate(() => window.__layers.frames);

async function robot() {
  const response = await fetch(`${LAYERS.base}/api/status`);
  return response.json();
}

// Each connected peer's layer of camera 0, slow (by its address) or fast.
async function layersByLink() {
  const status = await robot();
  return status.peers
    .filter((p) => p.state === 'connected')
    .map((p) => ({ slow: String(p.remote || '').startsWith(SLOW_IP), layer: p.layers?.[0]?.layer, why: p.layers?.[0]?.why }));
}

// Frames per second and the share of the window in gaps over 250 ms.
function smoothness(times, from, to) {
  const inside = times.filter((t) => t >= from && t <= to);
  let frozen = 0;
  let last = from;
  for (const t of inside) {
    if (t - last > 250) frozen += t - last;
    last = t;
  }
  if (to - last > 250) frozen += to - last;
  return { fps: (inside.length * 1000) / (to - from), frozenPct: (100 * frozen) / (to - from) };
}

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  for (const dir of profiles) await fs.rm(dir, { recursive: true, force: true });
});

test('a slow Chromium viewer gets the low layer, fast ones the main one, a fast joiner switches up at a keyframe', async () => {
  const fastBrowser = await launch(CHROMIUM);
  const slowBrowser = await launch(LAYERS.slowChromium);

  const first = await open(fastBrowser);
  await waitFor('the first fast viewer playing 640 wide', () => seen(first.page), { until: (s) => s.frames > 30 && s.widths.at(-1) === 640 });

  const slow = await open(slowBrowser);
  const slowFirst = await waitFor('the slow viewer\'s first frame', () => frameTimes(slow.page), { until: (t) => t.length > 0 });
  const { pcAt: slowPcAt, connectedAt: slowConnectedAt } = await slow.page.evaluate(() => window.__layers);
  await waitFor('the slow viewer on the low layer', layersByLink, {
    until: (peers) => peers.some((p) => p.slow && p.layer === 'low'),
  });
  const windowStart = await slow.page.evaluate(() => performance.now());
  await sleep(6000);
  const windowEnd = await slow.page.evaluate(() => performance.now());

  const second = await open(fastBrowser);
  await waitFor('the late fast viewer playing 640 wide', () => seen(second.page), { until: (s) => s.frames > 30 && s.widths.at(-1) === 640 });
  const peers = await waitFor('two fast viewers on main, the slow one on low', layersByLink, {
    until: (p) => p.length === 3 && p.filter((x) => !x.slow && x.layer === 'main').length === 2 && p.some((x) => x.slow && x.layer === 'low'),
  });

  const [one, two, low] = await Promise.all([seen(first.page), seen(second.page), seen(slow.page)]);
  const status = await robot();
  const smooth = smoothness(await frameTimes(slow.page), windowStart, windowEnd);
  console.log(`figure: slow Chromium: first frame ${(slowFirst[0] - slowPcAt).toFixed(0)} ms after its peer connection was made ` +
    `(connected after ${(slowConnectedAt - slowPcAt).toFixed(0)} ms), ` +
    `(${(slowFirst[0] - slow.openedAt).toFixed(0)} ms after the page loaded), ` +
    `${smooth.fps.toFixed(1)} fps, frozen ${smooth.frozenPct.toFixed(1)} % over 6 s; sizes ${JSON.stringify(low.widths)}, HUD "${low.hud}"`);
  console.log(`figure: fast Chromium viewers: sizes ${JSON.stringify(one.widths)} and ${JSON.stringify(two.widths)}; HUD "${one.hud}", "${two.hud}"`);
  console.log(`figure: layers ${JSON.stringify(peers)}; camera ${JSON.stringify(status.cameras?.[0]?.layers)}`);

  assert.deepEqual(low.widths, [320], `the slow viewer only ever showed the low layer: ${JSON.stringify(low)}`);
  assert.match(low.hud, /^low/, 'its HUD says so');
  assert.deepEqual(one.widths, [640], `the first fast viewer only ever showed the main layer: ${JSON.stringify(one)}`);
  assert.deepEqual(two.widths, [320, 640], `the late fast viewer started on the low layer and moved up: ${JSON.stringify(two)}`);
  assert.equal(two.hud, 'main');
  assert.ok(status.cameras[0].layers.low.keyframes >= 1, JSON.stringify(status.cameras[0].layers));
});
