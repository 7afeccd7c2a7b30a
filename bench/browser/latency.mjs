// Headless-Chromium variant of the latency measurement (part of bench/run.sh).
//
// For each server (telepi, the aiortc baseline, the GStreamer peer) it starts the server on
// 127.0.0.1, opens a bench page on the server's own origin (served by
// Playwright's request interception, so `POST /connect` is same-origin), and
// on every decoded <video> frame (requestVideoFrameCallback) draws the top
// rows onto a canvas, reads the 32 stamp cells back and compares the capture
// time with Date.now() ("presented") and with the callback's receiveTime
// ("received": last packet of the frame received by Chromium).
//
// Each server is viewed twice: with the browser's default jitter buffer, and
// with `jitterBufferTarget = 0` on the receiver as telepi's own page asks
// ("--playout default,min" picks).
//
//   node bench/browser/latency.mjs [--servers telepi,baseline,gstreamer] [--seconds 10] [--playout default,min]
//        [--telepi target/release/telepi] [--python bench/.venv/bin/python]
//        [--baseline bench/baseline/server.py] [--content bars|camera] [--out bench/results/chromium.json]
import { spawn, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../../tests/browser/chromium.mjs';

const HOST = '127.0.0.1';

const opts = {
  servers: 'telepi,baseline,gstreamer',
  playout: 'default,min',
  seconds: '10',
  warmup: '2',
  telepi: 'target/release/telepi',
  python: 'bench/.venv/bin/python',
  baseline: 'bench/baseline/server.py',
  gstreamer: 'bench/gstreamer/server.py',
  content: 'bars',
  out: 'bench/results/chromium.json',
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in opts) || argv[i + 1] === undefined) throw new Error(`bad argument ${argv[i]}`);
  opts[key] = argv[i + 1];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort(kind) {
  return new Promise((resolve, reject) => {
    if (kind === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind(0, HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
    } else {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
    }
  });
}

async function startServer(name) {
  const http = await freePort('tcp');
  let cmd, args;
  const video = ['--width', '640', '--height', '480', '--fps', '30', '--bitrate', '1500000', '--content', opts.content];
  if (name === 'telepi') {
    cmd = path.resolve(opts.telepi);
    args = ['--http', `${HOST}:${http}`, '--rtc', `${HOST}:${await freePort('udp')}`];
    if (opts.content === 'camera') args.push('--config', 'bench/camera.toml');
  } else if (name === 'baseline') {
    cmd = path.resolve(opts.python);
    args = [path.resolve(opts.baseline), '--http', `${HOST}:${http}`, ...video];
  } else if (name === 'gstreamer') {
    // Debian's Python, with python3-gi and GStreamer from Debian's packages.
    cmd = '/usr/bin/python3';
    args = [path.resolve(opts.gstreamer), '--http', `${HOST}:${http}`, ...video];
  } else {
    throw new Error(`unknown server ${name}`);
  }
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (c) => { log.push(c); if (log.length > 200) log.shift(); });
  const base = `http://${HOST}:${http}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited: ${log.join('')}`);
    try {
      const res = await fetch(`${base}/api/status`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${name} did not answer: ${log.join('')}`);
    await sleep(100);
  }
  return {
    base,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// The bench page: RTCBot-style POST /connect, then a stamp read per decoded frame.
const PAGE = `<!doctype html>
<meta charset="utf-8"><title>telepi bench</title>
<video id="v" autoplay muted playsinline></video>
<canvas id="c" width="640" height="16"></canvas>
<script>
window.bench = { samples: [], bad: 0, first: null, error: null, frames: 0 };
(async () => {
  const v = document.getElementById('v');
  const ctx = document.getElementById('c').getContext('2d', { willReadFrequently: true });
  const pc = new RTCPeerConnection();
  const { receiver } = pc.addTransceiver('video', { direction: 'recvonly' });
  if (__MIN_PLAYOUT__) receiver.jitterBufferTarget = 0;
  pc.createDataChannel('default');
  pc.ontrack = (e) => { v.srcObject = e.streams[0] || new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
  });
  const posted = performance.now();
  const res = await fetch('/connect', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'offer', sdp: pc.localDescription.sdp }),
  });
  if (!res.ok) throw new Error('POST /connect: ' + res.status + ' ' + await res.text());
  await pc.setRemoteDescription(await res.json());
  const mod32 = (x) => ((x % 4294967296) + 4294967296) % 4294967296;
  const since = (wallMs, stamp) => {
    let d = mod32(Math.floor(wallMs)) - stamp;
    if (d > 2147483648) d -= 4294967296;
    if (d < -2147483648) d += 4294967296;
    return d + (wallMs - Math.floor(wallMs));
  };
  const onFrame = (now, meta) => {
    const wall = Date.now();
    const w = meta.width || v.videoWidth;
    ctx.drawImage(v, 0, 0, w, 16, 0, 0, 640, 16);
    const row = ctx.getImageData(0, 8, 640, 1).data;
    let stamp = 0;
    for (let bit = 0; bit < 32; bit++) {
      const i = (bit * 20 + 10) * 4;
      stamp = ((stamp << 1) | ((row[i] + row[i + 1] + row[i + 2]) / 3 > 128 ? 1 : 0)) >>> 0;
    }
    const presented = since(wall, stamp);
    const received = meta.receiveTime !== undefined ? since(performance.timeOrigin + meta.receiveTime, stamp) : null;
    if (presented < -5 || presented > 60000) {
      window.bench.bad++;
    } else {
      if (window.bench.first === null) window.bench.first = performance.now() - posted;
      window.bench.samples.push([wall, presented, received, meta.presentedFrames]);
    }
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
})().catch((e) => { window.bench.error = String(e && e.stack || e); });
</script>`;

function summary(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const pct = (p) => (v.length ? v[Math.min(v.length, Math.max(1, Math.ceil((p / 100) * v.length))) - 1] : null);
  return { n: v.length, p50: pct(50), p90: pct(90), p99: pct(99), max: v.length ? v[v.length - 1] : null };
}

async function measure(context, name, playout) {
  const server = await startServer(name);
  const page = await context.newPage();
  const body = PAGE.replace('__MIN_PLAYOUT__', String(playout === 'min'));
  try {
    await page.route(`${server.base}/__bench__.html`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body }));
    await page.goto(`${server.base}/__bench__.html`, { waitUntil: 'load' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const b = await page.evaluate(() => ({ first: window.bench.first, error: window.bench.error }));
      if (b.error) throw new Error(b.error);
      if (b.first !== null) break;
      if (Date.now() > deadline) throw new Error('no decoded frame with a readable stamp within 30 s');
      await sleep(100);
    }
    await sleep(Number(opts.warmup) * 1000);
    const t0 = await page.evaluate(() => Date.now());
    await sleep(Number(opts.seconds) * 1000);
    const t1 = await page.evaluate(() => Date.now());
    const b = await page.evaluate(() => window.bench);
    const window_ = b.samples.filter((s) => s[0] >= t0 && s[0] <= t1);
    const presentedFrames = window_.length > 1 ? window_[window_.length - 1][3] - window_[0][3] : 0;
    return {
      server: playout === 'min' ? `${name}, jitterBufferTarget 0` : name,
      viewers: 1,
      seconds: (t1 - t0) / 1000,
      fps: window_.length / ((t1 - t0) / 1000),
      presented_frames_per_s: presentedFrames / ((t1 - t0) / 1000),
      first_frame_ms: b.first,
      presented_ms: summary(window_.map((s) => s[1])),
      received_ms: summary(window_.map((s) => s[2])),
      bad_stamps: b.bad,
    };
  } finally {
    await page.close().catch(() => {});
    await server.stop();
  }
}

const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-bench-chromium-'));
let context;
const runs = [];
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe'],
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
  const variants = opts.servers.split(',').flatMap((name) => opts.playout.split(',').map((playout) => [name, playout]));
  for (const [name, playout] of variants) {
    process.stderr.write(`bench: chromium viewing ${name} (playout ${playout})\n`);
    try {
      const r = await measure(context, name, playout);
      process.stderr.write(`bench:   ${r.fps.toFixed(1)} fps, capture->presented p50 ${r.presented_ms.p50?.toFixed(1)} p99 ${r.presented_ms.p99?.toFixed(1)} ms, capture->received p50 ${r.received_ms.p50?.toFixed(1)} ms\n`);
      runs.push(r);
    } catch (e) {
      process.stderr.write(`bench:   ${name}: ${e.message}\n`);
      runs.push({ server: name, error: e.message.split('\n')[0] });
    }
  }
} finally {
  await context?.close().catch(() => {});
  await fs.rm(profile, { recursive: true, force: true });
}
let version = 'Chromium';
try {
  version = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch { /* keep the generic name */ }
await fs.mkdir(path.dirname(opts.out), { recursive: true });
await fs.writeFile(opts.out, JSON.stringify({ chromium: version, seconds: Number(opts.seconds), runs }, null, 2));
process.stderr.write(`bench: wrote ${opts.out}\n`);
if (runs.some((r) => r.error)) process.exitCode = 1;
