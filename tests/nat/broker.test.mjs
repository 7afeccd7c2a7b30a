// A robot with no inbound port at all, reached through an MQTT broker, and a
// link that heals: run by tests/nat/run.sh (docs/dev/testing.md, "Through NATs") in the
// browser's namespace. The robot sits behind a symmetric NAT with nothing
// forwarded; Mosquitto (TCP for the robot, websockets for the page) and
// coturn live on the "internet". TELEPI_NAT.broker says where things are:
//   { page, ws, username, password, robot, robotNs, routerNs, status, pid, log }
// The page is telepi's exported page opened as a file: it never talks to the
// robot except through the broker and the TURN relay.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { NAT, sleep, waitFor as waitForLogged, launchBrowser, assertVideoPlays, assertRoams } from './lib.mjs';

const run = promisify(execFile);
const B = NAT.broker;
const CUT_MS = 10_000; // "Wi-Fi that drops for 10 s"
const DEADMAN_MS = 300; // [drive] deadman_ms's default
const figures = [];
let browser;
let thePage;
const page = () => thePage;

after(async () => {
  await browser?.close();
  if (figures.length) console.log(figures.join('\n'));
});

const waitFor = (what, probe, options = {}) => waitForLogged('broker', what, probe, { ...options, log: B.log });

// The robot's /api/status from inside its own namespace: nothing outside can
// reach it (that is the point), so the test looks from within.
async function robotStatus() {
  const { stdout } = await run('ip', ['netns', 'exec', B.robotNs, 'curl', '-sf', '-m', '2', B.status]);
  return JSON.parse(stdout);
}

const routerRule = (op) => run('ip', ['netns', 'exec', B.routerNs, 'iptables', op, 'FORWARD', '-j', 'DROP']);
const inRobot = (...command) => run('ip', ['netns', 'exec', B.robotNs, ...command]);

// With w held: the robot's router forwards nothing for CUT_MS (`during` runs
// meanwhile); the deadman must stop the motors at once and keep them still,
// and once the link is back the page must drive again with nobody touching
// it, on the same session.
async function cutAndHeal(t, what, during = async () => {}) {
  await waitFor(`motors moving before the ${what}`, robotStatus, { until: (s) => s.motors.left > 0, timeoutMs: 5000 });
  const peers = (await robotStatus()).peers.map((p) => p.id);
  await routerRule('-I');
  const cutAt = Date.now();
  let restored = false;
  try {
    await waitFor('the deadman to stop the motors while the link is down', robotStatus,
      { until: (s) => s.motors.left === 0 && s.motors.right === 0, timeoutMs: 3000, intervalMs: 50 });
    const stoppedMs = Date.now() - cutAt;
    assert.ok(stoppedMs < DEADMAN_MS + 1000, `stopped ${stoppedMs} ms after the cut`);
    await during();
    // Nothing moves for the rest of the cut.
    while (Date.now() < cutAt + CUT_MS) {
      const s = await robotStatus();
      assert.deepEqual(s.motors, { left: 0, right: 0 }, `motors still while the link is down (${Date.now() - cutAt} ms)`);
      await sleep(250);
    }
    await routerRule('-D');
    restored = true;
    const restoredAt = Date.now();
    const attemptsBefore = await page().evaluate(() => window.__nat.pcs.length);
    await waitFor(`driving again after the ${what} (w still held)`, robotStatus,
      { until: (s) => s.motors.left > 0, timeoutMs: 30_000, intervalMs: 100 });
    const recoveryMs = Date.now() - restoredAt;
    const attempts = (await page().evaluate(() => window.__nat.pcs.length)) - attemptsBefore;
    // Shorter than the robot's silence limit: the same session comes back
    // (after a new address through an ICE restart with the robot's new
    // candidates), no new connection.
    assert.equal(attempts, 0, `the page kept its connection through the ${what}`);
    assert.deepEqual((await robotStatus()).peers.map((p) => p.id), peers, `the same peer after the ${what}`);
    figures.push(`NAT figures: broker ${what}: motors stopped ${stoppedMs} ms after the cut; ` +
      `driving again ${recoveryMs} ms after the link returned (${attempts} new peer connection(s) after it)`);
    t.diagnostic(figures.at(-1));
  } finally {
    if (!restored) await routerRule('-D').catch(() => {});
  }
}

test('broker: fleet view, connect through Mosquitto, video via TURN, driving; a 10 s link cut heals; the browser roams (ICE restart through the broker); the will marks the robot offline', { skip: !B }, async (t) => {
  browser = await launchBrowser();
  const page = await browser.context.newPage();
  thePage = page;
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  t.after(() => problems.length && t.diagnostic(problems.join('\n')));
  const query = new URLSearchParams({ broker: B.ws, username: B.username, password: B.password, secret: NAT.secret });
  await page.goto(`${B.page}?${query}`, { waitUntil: 'load' });
  assert.match(page.url(), /^file:/, 'the page is a file: nothing is served by the robot');

  // The fleet view lists the robot from its retained presence.
  const entry = `#fleet li[data-robot="${B.robot}"]`;
  await waitFor('the fleet view to list the robot online', () => page.isVisible(`${entry}[data-online="true"] button`),
    { timeoutMs: 15_000 });
  await page.evaluate(() => { window.__nat.clickedAt = performance.now(); });
  await page.click(`${entry} button`);
  const sel = await assertVideoPlays(assert, 'broker', page, B.log);
  // From the click: ICE servers and the offer through the broker, ICE via TURN, the first frame.
  const connectMs = await page.evaluate(() => window.__nat.firstFrameAt - window.__nat.clickedAt);
  assert.equal(sel.pair.local.type, 'relay', `no inbound port: only the TURN relay connects: ${JSON.stringify(sel.pair)}`);
  const answered = (await robotStatus()).broker;
  assert.ok(answered.offers_answered >= 1, `the robot answered through the broker: ${JSON.stringify(answered)}`);
  figures.push(`NAT figures: broker (${sel.pair.local.type} -> ${sel.pair.remote.type}) ` +
    `click in the fleet view→first frame ${Math.round(connectMs)} ms, rtt ${(sel.pair.rtt * 1000).toFixed(1)} ms (ICE)`);

  // The operator (the secret came with the offer) drives.
  await waitFor('the operator role', () => page.evaluate(() => window.telepi.stats()),
    { until: (s) => s.dataChannel === 'open' && s.role === 'operator' });
  await page.keyboard.down('w');
  try {
    // The robot's uplink drops for 10 s (its router forwards nothing), w still held.
    await cutAndHeal(t, 'link cut 10 s');
    // Again, and this time the robot comes back with another address (a new
    // DHCP lease after rejoining): its broker connection and its ICE
    // candidates from the old address are dead.
    await cutAndHeal(t, 'link cut 10 s + new address', async () => {
      await inRobot('ip', 'addr', 'del', '192.168.11.2/24', 'dev', 'eth0');
      await inRobot('ip', 'addr', 'add', '192.168.11.3/24', 'dev', 'eth0');
      await inRobot('ip', 'route', 'replace', 'default', 'via', '192.168.11.1');
    });
  } finally {
    await page.keyboard.up('w').catch(() => {});
  }
  await waitFor('motors stop when w is released', robotStatus, { until: (s) => s.motors.left === 0, timeoutMs: 3000 });

  // No stale peers: the connections the cut broke are reaped, one peer remains.
  await waitFor('only the live peer left on the robot', robotStatus,
    { until: (s) => s.peers.length === 1, timeoutMs: 30_000, intervalMs: 500 });

  // Roaming: the browser gets a new address. Its relay allocation and its
  // websocket to the broker are dead; the page restarts ICE on the same
  // session through the broker once its broker connection is back.
  const { sel: moved, line } = await assertRoams(assert, 'broker', page, robotStatus, B.log);
  assert.equal(moved.pair.local.type, 'relay', `relayed after the restart: ${JSON.stringify(moved.pair)}`);
  figures.push(`NAT figures: ${line}`);

  // The robot vanishes without a goodbye: the broker's will flips it offline.
  process.kill(B.pid, 'SIGKILL');
  const killedAt = Date.now();
  await waitFor('the fleet view to show the robot offline (Last Will)',
    () => page.evaluate((sel) => document.querySelector(sel)?.dataset.online, entry),
    { until: (online) => online === 'false', timeoutMs: 30_000 });
  figures.push(`NAT figures: broker robot killed: offline in the fleet view after ${Date.now() - killedAt} ms`);
});
