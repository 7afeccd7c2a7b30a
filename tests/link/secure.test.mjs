// The browser's address changes on a secure origin with camera and
// microphone granted, through the emulated link of tests/link/run.sh
// (TELEPI_LINK.secure is telepi's HTTPS address). There Chromium enumerates
// the interfaces and binds its ICE sockets per address, so the socket dies
// with the old address and only an ICE restart with new candidates brings
// the picture back (on plain HTTP its one socket on 0.0.0.0 just starts
// sending from the new address: blip.test.mjs). Asserted: the same
// RTCPeerConnection and peer id, an ICE restart done, the picture back.
// Printed: where the time went, step by step (docs/benchmarks.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LINK, launchViewer, waitFor, robot, ipIn } from './lib.mjs';
import { firstNewFrame, loggedAt, timeline } from '../browser/timeline.mjs';

let viewer;
let page;

// Counts the page's peer connections and stamps its ICE and connection
// state changes and its new local candidates (page time) in window.__ice.
function instrument() {
  window.__pcs = 0;
  window.__ice = [];
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      window.__pcs += 1;
      window.__pc = this;
      const stamp = (what) => window.__ice.push({ at: performance.now(), what });
      this.addEventListener('iceconnectionstatechange', () => stamp(`ice ${this.iceConnectionState}`));
      this.addEventListener('connectionstatechange', () => stamp(`connection ${this.connectionState}`));
      this.addEventListener('icecandidate', (e) => e.candidate && stamp(`candidate ${e.candidate.address} ${e.candidate.type}`));
    }
  };
}

const seen = () => page.evaluate(() => ({
  frames: document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames,
  restarts: window.telepi.stats().restarts,
  dataChannel: window.telepi.stats().dataChannel,
  pcs: window.__pcs,
}));

before(async () => {
  viewer = await launchViewer({ secure: true });
  // Granted before the page makes its peer connection: Chromium decides then
  // whether it may enumerate (and bind to) each address.
  await viewer.context.grantPermissions(['camera', 'microphone'], { origin: LINK.secure });
  await viewer.context.addInitScript(instrument);
  page = await viewer.context.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${LINK.secure}/`, { waitUntil: 'load' });
});

after(async () => {
  await viewer?.close();
});

test('secure origin, camera and mic granted: the browser\'s address changes, an ICE restart keeps the peer', async (t) => {
  const origin = await page.evaluate(async () => ({
    secure: window.isSecureContext,
    camera: (await navigator.permissions.query({ name: 'camera' })).state,
    microphone: (await navigator.permissions.query({ name: 'microphone' })).state,
  }));
  assert.deepEqual(origin, { secure: true, camera: 'granted', microphone: 'granted' });
  // Mid-session: a second of steady video (the page's stall watch probes
  // the robot at most every 1.5 s, and a start-up lull may have used it).
  await waitFor('video and the data channel', seen,
    { until: (s) => s.frames > 0 && s.dataChannel === 'open', timeoutMs: 20_000 });
  const first = await seen();
  await waitFor('a second of video', seen, { until: (s) => s.frames > first.frames + 30, timeoutMs: 10_000 });
  const before = await robot();
  // The newest peer: an earlier test's page may still be held.
  const ours = Math.max(...before.peers.map((p) => p.id));
  const start = await seen();
  // The selected candidate pair's changes, stamped like the states.
  await page.evaluate(() => {
    const ice = window.__pc.getReceivers()[0].transport.iceTransport;
    ice.addEventListener('selectedcandidatepairchange', () =>
      window.__ice.push({ at: performance.now(), what: `pair ${ice.getSelectedCandidatePair()?.local?.address}` }));
  });

  // A new DHCP lease for the browser: its old address gone, the next one in its place.
  const info = JSON.parse((await ipIn(LINK.browserNs, '-j', 'addr', 'show', 'dev', 'eth0')).stdout)[0];
  const old = info.addr_info.find((a) => a.family === 'inet').local;
  const next = old.replace(/\d+$/, (n) => String(Number(n) + 1));
  await ipIn(LINK.robotNs, 'neigh', 'replace', next, 'lladdr', info.address, 'dev', 'eth0', 'nud', 'permanent');
  const changedAt = Date.now();
  const changedPageAt = await page.evaluate(() => performance.now());
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

  // Where the time went, in ms after the change.
  const { frames, ice, steps } = await page.evaluate(() =>
    ({ frames: window.__frames, ice: window.__ice, steps: window.telepi.stats().restarts.steps }));
  const picture = firstNewFrame(frames, changedPageAt);
  const robotSide = async (what, label) =>
    (await loggedAt(LINK.log, what, changedAt)).map((at) => [changedPageAt + at - changedAt, `robot: ${label}`]);
  const when = timeline(changedPageAt, steps, [
    ...ice.filter((e) => e.at > changedPageAt).map((e) => [e.at, e.what]),
    ...await robotSide('ICE restart accepted', 'restart accepted'),
    ...await robotSide('send path moved', 'send path moved'),
    [picture.at, 'first new frame'],
  ]);
  t.diagnostic(`LINK figures: secure-origin address change: picture back (first new frame) ${Math.round(picture.at - changedPageAt)} ms, ` +
    `frozen ${Math.round(picture.frozen)} ms; restart answered ${restartMs} ms and 15 frames after it ${backMs} ms after the change ` +
    `(ICE restarts tried ${back.restarts.tried}, done ${back.restarts.done}); the robot now sends to ` +
    `${after.peers.find((p) => p.id === ours).remote}; steps (ms after the change): ${when}`);
});
