// What the tests in tests/nat/ share: Chromium on a namespaced network,
// polling with a useful failure, and the page instrumentation that records
// each RTCPeerConnection and the first decoded frame.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium.mjs';
import { sleep, waitFor as poll } from '../browser/wait.mjs';
import { firstNewFrame, loggedAt, stampFrames, timeline } from '../browser/timeline.mjs';

// playwright-core lives in tests/browser/node_modules (one npm project for both tests).
const { chromium } = createRequire(new URL('../browser/package.json', import.meta.url))('playwright-core');

export const NAT = JSON.parse(process.env.TELEPI_NAT || 'null');
if (!NAT) throw new Error('TELEPI_NAT is not set: run tests/nat/run.sh, which builds the namespaces this test needs');

export { sleep };

// The last lines of a telepi log, without ALSA's chatter.
export async function logTail(file, lines = 40) {
  if (!file) return '(no log)';
  const text = await fs.readFile(file, 'utf8').catch((e) => `(cannot read ${file}: ${e.message})`);
  return text.split('\n').filter((l) => !l.startsWith('ALSA lib')).slice(-lines).join('\n');
}

// waitFor for one of the test's robots (`name`), with the tail of its log
// file `log` in the failure.
export const waitFor = (name, what, probe, { log, ...options } = {}) =>
  poll(`${name}: ${what}`, probe, { ...options, tail: async () => `--- telepi (${name}) log tail ---\n${await logTail(log)}` });

// Runs in every page before its own scripts: records each RTCPeerConnection
// (its configuration, ICE states, the answer), the first decoded frame, and
// lets the test silence the data channel (an operator whose packets vanish).
function instrument() {
  const nat = { pcs: [], firstFrameAt: null, firstFramePc: null, mute: false };
  window.__nat = nat;
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(config, ...rest) {
      super(config, ...rest);
      const rec = { pc: this, config: JSON.parse(JSON.stringify(config || {})), createdAt: performance.now(),
        connectedAt: null, states: [], remoteSdp: null, localTypes: [] };
      nat.pcs.push(rec);
      this.addEventListener('icecandidate', (e) => e.candidate && e.candidate.type && rec.localTypes.push(e.candidate.type));
      this.addEventListener('iceconnectionstatechange', () => {
        rec.states.push(this.iceConnectionState);
        if (['connected', 'completed'].includes(this.iceConnectionState) && rec.connectedAt === null) {
          rec.connectedAt = performance.now();
        }
      });
    }

    setRemoteDescription(desc, ...rest) {
      const rec = nat.pcs.find((r) => r.pc === this);
      if (rec && desc) rec.remoteSdp = desc.sdp;
      return super.setRemoteDescription(desc, ...rest);
    }
  };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    if (nat.mute) return undefined;
    return send.call(this, data);
  };
  const poll = setInterval(() => {
    const video = document.getElementById('video');
    if (video && video.getVideoPlaybackQuality && video.getVideoPlaybackQuality().totalVideoFrames > 0) {
      nat.firstFrameAt = performance.now();
      nat.firstFramePc = nat.pcs.length - 1;
      clearInterval(poll);
    }
  }, 5);
}

// Headless Chromium with the instrumentation in every page. Not loopback:
// every peer here is on a real (namespaced) interface; the robots'
// certificates are self-signed. Returns { context, close }.
export async function launchBrowser() {
  const profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-nat-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    args: [...CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection'),
      '--ignore-certificate-errors', `--user-data-dir=${profileDir}`, '--remote-debugging-pipe'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
  await context.addInitScript(instrument);
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      await fs.rm(profileDir, { recursive: true, force: true });
    },
  };
}

export const videoQuality = (page) => page.evaluate(() => {
  const v = document.getElementById('video');
  return { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, height: v.videoHeight, paused: v.paused };
});

// The newest peer connection's selected candidate pair and inbound video, from getStats.
export const selectedPair = (page) => page.evaluate(async () => {
  const rec = window.__nat.pcs.at(-1);
  if (!rec) return null;
  const stats = await rec.pc.getStats();
  let pair = null;
  let video = null;
  const locals = [];
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    // The page offers two video m-lines (a second camera); with one camera the
    // second never decodes, and the stats' order is not fixed: count them all.
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      video = { framesDecoded: (video?.framesDecoded ?? 0) + (s.framesDecoded ?? 0) };
    }
    if (s.type === 'local-candidate') locals.push(s.candidateType);
  });
  const cand = (id) => {
    const c = id && stats.get(id);
    return c ? { type: c.candidateType, address: c.address, port: c.port, relayProtocol: c.relayProtocol, url: c.url } : null;
  };
  return {
    ice: rec.pc.iceConnectionState,
    states: rec.states,
    pair: pair && { state: pair.state, nominated: pair.nominated, rtt: pair.currentRoundTripTime,
      local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId) },
    video,
    localTypes: [...new Set(locals)],
  };
});

// Video plays: a 640-wide picture and decoded frames rising over 2 s; then
// the pair that carries it.
export async function assertVideoPlays(assert, name, page, log) {
  await waitFor(name, 'the first decoded video frame', () => videoQuality(page),
    { until: (q) => q.frames > 0 && q.width > 0, timeoutMs: 20_000, log });
  const before = await videoQuality(page);
  await sleep(2000);
  const later = await videoQuality(page);
  assert.ok(later.frames > before.frames + 10, `${name}: frames should rise over 2 s: ${before.frames} -> ${later.frames}`);
  assert.equal(later.width, 640, `${name}: videoWidth (${JSON.stringify(later)})`);
  assert.equal(later.paused, false, `${name}: video element is playing`);
  const sel = await waitFor(name, 'a selected, succeeded candidate pair with an RTT', () => selectedPair(page),
    { until: (s) => s?.pair?.state === 'succeeded' && typeof s.pair.rtt === 'number', timeoutMs: 5000, log });
  assert.ok(sel.video && sel.video.framesDecoded > 0, `${name}: getStats framesDecoded ${JSON.stringify(sel.video)}`);
  return sel;
}

const run = promisify(execFile);

// A new DHCP lease for the browser (this test runs in its namespace): its
// address on the LAN moves one up, the default route is put back. What the
// page had bound to the old address (its TURN allocation's 5-tuple through
// the NAT, a websocket) is dead; returns the new address.
export async function newBrowserAddress() {
  const { stdout } = await run('ip', ['-j', 'addr', 'show', 'dev', 'eth0']);
  const old = JSON.parse(stdout)[0].addr_info.find((a) => a.family === 'inet').local;
  const octets = old.split('.');
  const next = [...octets.slice(0, 3), Number(octets[3]) + 1].join('.');
  await run('ip', ['addr', 'del', `${old}/24`, 'dev', 'eth0']);
  await run('ip', ['addr', 'add', `${next}/24`, 'dev', 'eth0']);
  await run('ip', ['route', 'replace', 'default', 'via', [...octets.slice(0, 3), 1].join('.')]);
  return next;
}

// The browser's address changes under a playing page: the page must restart
// ICE on the same session (no new RTCPeerConnection, the same peer id on the
// robot, whose status `robotStatus` reads) and the picture must come back.
// Returns a line of figures.
export async function assertRoams(assert, name, page, robotStatus, log) {
  const peers = (await robotStatus()).peers.map((p) => p.id);
  const seen = () => page.evaluate(() => ({ pcs: window.__nat.pcs.length, restarts: window.telepi.stats().restarts,
    frames: document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames,
    ice: window.__nat.pcs.at(-1).states.slice(-6), localTypes: window.__nat.pcs.at(-1).localTypes.slice(-8),
    answerCandidates: (window.__nat.pcs.at(-1).remoteSdp || '').split('\n').filter((l) => l.startsWith('a=candidate')).slice(0, 4) }));
  await page.evaluate(stampFrames);
  const before = await seen();
  const movedAt = Date.now();
  const movedPageAt = await page.evaluate(() => performance.now());
  const address = await newBrowserAddress();
  const restarted = await waitFor(name, 'an ICE restart after the address change', seen,
    { until: (s) => s.restarts.done > before.restarts.done, timeoutMs: 40_000, intervalMs: 100, log });
  const back = await waitFor(name, 'the picture back after the restart', seen,
    { until: (s) => s.frames > restarted.frames + 15, timeoutMs: 15_000, intervalMs: 50, log });
  const backMs = Date.now() - movedAt;
  assert.equal(back.pcs, before.pcs, `${name}: the page kept its RTCPeerConnection: ${JSON.stringify(back)}`);
  const after = await waitFor(name, 'the robot seeing the page connected again', robotStatus,
    { until: (s) => s.peers.some((p) => p.state === 'connected'), timeoutMs: 5000, log });
  assert.deepEqual(after.peers.map((p) => p.id), peers, `${name}: the same peer on the robot, no new one`);
  const sel = await selectedPair(page);
  const { frames, steps } = await page.evaluate(() => ({ frames: window.__frames, steps: window.telepi.stats().restarts.steps }));
  const picture = firstNewFrame(frames, movedPageAt);
  const robotSide = async (what, label) =>
    (await loggedAt(log, what, movedAt)).map((at) => [movedPageAt + at - movedAt, `robot: ${label}`]);
  const when = timeline(movedPageAt, steps, [[picture.at, 'first new frame'],
    ...await robotSide('ICE restart accepted', 'restart accepted'), ...await robotSide('send path moved', 'send path moved')]);
  return { sel, line: `${name} browser address change (to ${address}): picture back (first new frame) ` +
    `${Math.round(picture.at - movedPageAt)} ms after it (frozen ${Math.round(picture.frozen)} ms), 15 frames after the restart ${backMs} ms, ` +
    `ICE restarts tried ${back.restarts.tried}, done ${back.restarts.done} (last error: ${back.restarts.last}), ` +
    `now ${sel?.pair?.local?.type} -> ${sel?.pair?.remote?.type}; steps (ms after the change): ${when}` };
}
