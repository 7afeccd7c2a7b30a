// Links that blip, in headless Chromium on telepi's own page through the
// emulated link of tests/link/run.sh (which sets TELEPI_LINK): a 2 s outage
// keeps the peer, its role and its connection, the picture and driving come
// back; an outage longer than the robot's silence limit ends the peer as
// before, and the page reconnects. Figures are printed as diagnostics
// (docs/benchmarks.md); the assertions are about mechanisms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { sleep } from '../browser/wait.mjs';
import { LINK, launchViewer, openAsOperator, waitFor, robot, ipIn } from './lib.mjs';
import { firstNewFrame, loggedAt, timeline } from '../browser/timeline.mjs';

let viewer;
let page;

// Cuts the link both ways for `seconds`, from now on the page's clock.
async function outage(seconds) {
  const at = await page.evaluate(() => performance.now());
  await fs.appendFile(LINK.control, `outage ${seconds}\n`);
  return at;
}

// Every page counts its peer connections (launchViewer stamps the frames).
function instrument() {
  const blip = { pcs: 0 };
  window.__blip = blip;
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      blip.pcs += 1;
    }
  };
}

const stats = () => page.evaluate(() => ({ ...window.telepi.stats(), pcs: window.__blip.pcs }));
const frameTimes = () => page.evaluate(() => window.__frames);
const moving = (s) => s.motors.left > 0 && s.motors.right > 0;
const stopped = (s) => s.motors.left === 0 && s.motors.right === 0;

before(async () => {
  viewer = await launchViewer();
  page = await openAsOperator(viewer, instrument);
});

after(async () => {
  await viewer?.close();
});

// Drives with w held until the robot's motors move; how long that took (ms).
async function driveUntilMoving(what) {
  const pressed = Date.now();
  await page.keyboard.down('w');
  try {
    await waitFor(what, robot, { until: moving, timeoutMs: 10_000, intervalMs: 20 });
    return Date.now() - pressed;
  } finally {
    await page.keyboard.up('w');
  }
}

test('a 2 s outage: same peer, same operator, same connection; picture and driving come back', async (t) => {
  await driveUntilMoving('motors moving before the outage');
  await waitFor('motors stopped when w is released', robot, { until: stopped, timeoutMs: 3000 });
  const before = await robot();
  assert.equal(before.peers.length, 1);
  const peer = before.peers[0].id;
  assert.equal(before.operator, peer);

  const cut = await outage(2);
  const back = cut + 2000;
  // The robot holds the peer while the link is down.
  const held = await waitFor('the robot holding the peer', robot,
    { until: (s) => s.peers.length === 1 && s.peers[0].state === 'holding', timeoutMs: 3000, intervalMs: 50 });
  assert.equal(held.operator, peer, 'the operator keeps the role through the blip');
  await sleep(Math.max(0, back - await page.evaluate(() => performance.now())));

  // The first drive after the return moves the robot.
  const driveMs = await driveUntilMoving('motors moving after the return');
  await waitFor('motors stopped when w is released', robot, { until: stopped, timeoutMs: 3000 });
  const frames = await waitFor('frames after the return', frameTimes,
    { until: (f) => f.some((at) => at > back + 100), timeoutMs: 10_000 });
  const after = await robot();
  assert.deepEqual(after.peers.map((p) => p.id), [peer], 'no new peer');
  assert.equal(after.peers[0].state, 'connected');
  assert.equal(after.operator, peer, 'same operator');
  const s = await stats();
  assert.equal(s.pcs, 1, 'the page kept its RTCPeerConnection');
  assert.equal(s.role, 'operator');

  const around = frames.filter((at) => at > cut - 1000);
  let freeze = 0;
  for (let i = 1; i < around.length; i += 1) freeze = Math.max(freeze, around[i] - around[i - 1]);
  const firstBack = frames.find((at) => at > back) - back;
  t.diagnostic(`LINK figures: 2 s outage: frozen ${Math.round(freeze)} ms, picture back ${Math.round(firstBack)} ms ` +
    `after the link, motors moving ${driveMs} ms after w was pressed at the return; stale drives ${after.rejections.stale}`);
});

test('the browser\'s address changes mid-session: the same peer, picture back', async (t) => {
  const before = await robot();
  const peer = before.peers[0].id;
  const frames = (await frameTimes()).length;
  const mac = JSON.parse((await ipIn(LINK.browserNs, '-j', 'link', 'show', 'eth0')).stdout)[0].address;
  const changedDate = Date.now();
  const changedAt = await page.evaluate(() => performance.now());
  // A new DHCP lease: the old address is gone, a new one in its place.
  await ipIn(LINK.robotNs, 'neigh', 'replace', '10.99.0.3', 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent');
  await ipIn(LINK.browserNs, 'addr', 'del', '10.99.0.2/24', 'dev', 'eth0');
  await ipIn(LINK.browserNs, 'addr', 'add', '10.99.0.3/24', 'dev', 'eth0');
  const times = await waitFor('frames after the address change', frameTimes,
    { until: (f) => f.length > frames + 30 && f.at(-1) > changedAt + 1000, timeoutMs: 30_000, intervalMs: 200 });
  const after = await robot();
  const page_ = await stats();
  const seen = `page: ${JSON.stringify({ state: page_.state, connection: page_.connection, restarts: page_.restarts })}`;
  assert.deepEqual(after.peers.map((p) => p.id), [peer], `the same peer; ${seen}`);
  assert.equal(after.operator, peer);
  assert.equal(page_.pcs, 1, `the same RTCPeerConnection; ${seen}`);
  const remote = after.peers[0].remote;
  const around = times.filter((at) => at > changedAt - 1000);
  let freeze = 0;
  for (let i = 1; i < around.length; i += 1) freeze = Math.max(freeze, around[i] - around[i - 1]);
  const { tried, done, steps } = (await stats()).restarts;
  const picture = firstNewFrame(times, changedAt);
  const robotSide = (await loggedAt(LINK.log, 'send path moved', changedDate))
    .map((at) => [changedAt + at - changedDate, 'robot: send path moved']);
  t.diagnostic(`LINK figures: address change: frozen ${Math.round(freeze)} ms; the robot now sends to ${remote}; ` +
    `ICE restarts tried ${tried}, done ${done} (last error: ${(await stats()).restarts.last}); steps (ms after the change): ` +
    `${timeline(changedAt, steps, [[picture.at, 'first new frame'], ...robotSide])}`);
});

test('an outage longer than the silence limit: peer reaped, operator released, motors stopped, the page reconnects', async (t) => {
  const before = await robot();
  const old = before.peers[0].id;
  const { pcs } = await stats();
  await page.keyboard.down('w');
  try {
    await waitFor('motors moving', robot, { until: moving, timeoutMs: 5000, intervalMs: 20 });
    const cutSeconds = LINK.silenceMs / 1000 + 3;
    await outage(cutSeconds);
    const cutAt = Date.now();
    await waitFor('motors stopped by the deadman', robot, { until: stopped, timeoutMs: 2000, intervalMs: 20 });
    await waitFor('the page holding', stats, { until: (s) => s.holding && s.state === 'holding', timeoutMs: 6000 });
    assert.match(await page.textContent('#status'), /link lost — holding/);
    const reaped = await waitFor('the peer reaped at the silence limit', robot,
      { until: (s) => s.peers.length === 0, timeoutMs: LINK.silenceMs + 3000, intervalMs: 100 });
    assert.equal(reaped.operator, null, 'operator released');
    assert.ok(stopped(reaped));
    t.diagnostic(`LINK figures: peer reaped ${Date.now() - cutAt} ms into the outage (silence limit ${LINK.silenceMs} ms)`);
  } finally {
    await page.keyboard.up('w');
  }
  const again = await waitFor('the page connected again as a new peer', robot,
    { until: (s) => s.peers.length === 1 && s.peers[0].id !== old && s.peers[0].state === 'connected', timeoutMs: 40_000, intervalMs: 500 });
  await waitFor('video on the new connection', stats, { until: (s) => s.pcs === pcs + 1 && s.framesDecoded > 0, timeoutMs: 15_000 });
  assert.ok(again.peers.length === 1);
});
