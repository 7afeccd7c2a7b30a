// The browser's address changes on a secure origin with camera and
// microphone granted, through the emulated link of tests/link/run.sh
// (TELEPI_LINK.secure is telepi's HTTPS address). There Chromium enumerates
// the interfaces and binds its ICE sockets per address, so the socket dies
// with the old address and only an ICE restart with new candidates brings
// the picture back (on plain HTTP its one socket on 0.0.0.0 just starts
// sending from the new address: blip.test.mjs). Asserted: the same
// RTCPeerConnection and peer id, an ICE restart done, the picture back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium.mjs';
import { LINK, chromium, waitFor, robot, ipIn } from './lib.mjs';

let context;
let profileDir;
let page;

const seen = () => page.evaluate(() => ({
  frames: document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames,
  restarts: window.telepi.stats().restarts,
  dataChannel: window.telepi.stats().dataChannel,
  pcs: window.__pcs,
}));

before(async () => {
  profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-link-secure-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection'),
      '--ignore-certificate-errors', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--user-data-dir=${profileDir}`, '--remote-debugging-pipe'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
  // Granted before the page makes its peer connection: Chromium decides then
  // whether it may enumerate (and bind to) each address.
  await context.grantPermissions(['camera', 'microphone'], { origin: LINK.secure });
  await context.addInitScript(() => {
    window.__pcs = 0;
    const Original = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Original {
      constructor(...args) {
        super(...args);
        window.__pcs += 1;
      }
    };
  });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${LINK.secure}/`, { waitUntil: 'load' });
});

after(async () => {
  await context?.close().catch(() => {});
  if (profileDir) await fs.rm(profileDir, { recursive: true, force: true });
});

test('secure origin, camera and mic granted: the browser\'s address changes, an ICE restart keeps the peer', async (t) => {
  const origin = await page.evaluate(async () => ({
    secure: window.isSecureContext,
    camera: (await navigator.permissions.query({ name: 'camera' })).state,
    microphone: (await navigator.permissions.query({ name: 'microphone' })).state,
  }));
  assert.deepEqual(origin, { secure: true, camera: 'granted', microphone: 'granted' });
  await waitFor('video and the data channel', seen,
    { until: (s) => s.frames > 0 && s.dataChannel === 'open', timeoutMs: 20_000 });
  const before = await robot();
  // The newest peer: an earlier test's page may still be held.
  const ours = Math.max(...before.peers.map((p) => p.id));
  const start = await seen();

  // A new DHCP lease for the browser: its old address gone, the next one in its place.
  const info = JSON.parse((await ipIn(LINK.browserNs, '-j', 'addr', 'show', 'dev', 'eth0')).stdout)[0];
  const old = info.addr_info.find((a) => a.family === 'inet').local;
  const next = old.replace(/\d+$/, (n) => String(Number(n) + 1));
  await ipIn(LINK.robotNs, 'neigh', 'replace', next, 'lladdr', info.address, 'dev', 'eth0', 'nud', 'permanent');
  const changedAt = Date.now();
  await ipIn(LINK.browserNs, 'addr', 'del', `${old}/24`, 'dev', 'eth0');
  await ipIn(LINK.browserNs, 'addr', 'add', `${next}/24`, 'dev', 'eth0');

  const restarted = await waitFor('an ICE restart after the address change', seen,
    { until: (s) => s.restarts.done > start.restarts.done, timeoutMs: 20_000, intervalMs: 50 });
  const restartMs = Date.now() - changedAt;
  const back = await waitFor('the picture back after the restart', seen,
    { until: (s) => s.frames > restarted.frames + 15, timeoutMs: 10_000, intervalMs: 50 });
  const backMs = Date.now() - changedAt;
  assert.equal(back.pcs, start.pcs, 'the page kept its RTCPeerConnection');
  const after = await waitFor('the robot sending to the new address', robot,
    { until: (s) => s.peers.some((p) => p.id === ours && p.state === 'connected' && String(p.remote).startsWith(`${next}:`)),
      timeoutMs: 5000 });
  assert.ok(after.peers.some((p) => p.id === ours), 'the same peer id');
  t.diagnostic(`LINK figures: secure-origin address change: restart answered ${restartMs} ms and picture back ${backMs} ms after it (ICE restarts ` +
    `${JSON.stringify(back.restarts)}); the robot now sends to ${after.peers.find((p) => p.id === ours).remote}`);
});
