// telepi through NATs, seen from headless Chromium behind the browser's NAT.
// Run by tests/nat/run.sh, which builds the namespaces, starts coturn and one
// telepi per path in the robot's namespace, and runs this file in the
// browser's namespace with TELEPI_NAT (JSON) saying where everything is:
//   { "secret": "...", "paths": { "<name>": { "url": "https://...", "log": "/path" } } }
// Paths: turn-relay (symmetric NAT, TURN REST credentials; then the
// browser's address changes: an ICE restart through TURN), turn-static
// (symmetric NAT, a static TURN user), direct (forwarded UDP port,
// [rtc] public_addr, no TURN) and control (symmetric NAT, STUN only: must fail).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  NAT, sleep, logTail as logFileTail, waitFor as waitForLogged, launchBrowser,
  assertVideoPlays as assertVideoPlaysLogged, assertRoams,
} from './lib.mjs';

const CONTROL_WATCH_MS = 15_000; // the control must stay unconnected this long

let browser;
const figures = [];
let control = null; // { page, openedAt }

const logTail = (name, lines) => logFileTail(NAT.paths[name]?.log, lines);
const waitFor = (name, what, probe, options = {}) => waitForLogged(name, what, probe, { ...options, log: NAT.paths[name]?.log });
const assertVideoPlays = (name, page) => assertVideoPlaysLogged(assert, name, page, NAT.paths[name]?.log);

before(async () => {
  browser = await launchBrowser();
  // The control starts first and is judged last, so its wait overlaps the other paths.
  if (NAT.paths.control) {
    const page = await browser.context.newPage();
    await page.goto(`${NAT.paths.control.url}/?secret=${encodeURIComponent(NAT.secret)}`, { waitUntil: 'load' });
    control = { page, openedAt: Date.now() };
  }
});

after(async () => {
  await browser?.close();
  if (figures.length) console.log(figures.join('\n'));
});

async function openPage(t, name) {
  const page = await browser.context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => msg.type() === 'error' && problems.push(`console: ${msg.text()}`));
  t.after(async () => {
    if (problems.length) t.diagnostic(problems.join('\n'));
    await page.close().catch(() => {});
  });
  page.setDefaultTimeout(10_000);
  const url = `${NAT.paths[name].url}/?secret=${encodeURIComponent(NAT.secret)}`;
  await page.goto(url, { waitUntil: 'load' }).catch(async (err) => {
    throw new Error(`${name}: opening ${url}: ${err.message}\n--- telepi (${name}) log tail ---\n${await logTail(name)}`);
  });
  return page;
}

// /api/status fetched by the page: over HTTPS, from the browser's namespace, through both NATs.
const status = (page) => page.evaluate(async () => {
  const res = await fetch('/api/status', { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`GET /api/status: HTTP ${res.status}`);
  return res.json();
});

// One line per path for README: connect → first frame and RTT.
async function report(name, page, sel) {
  const t = await page.evaluate(() => {
    const n = window.__nat;
    const rec = n.pcs[n.firstFramePc] || n.pcs.at(-1);
    return { createdAt: rec.createdAt, connectedAt: rec.connectedAt, firstFrameAt: n.firstFrameAt,
      attempts: n.pcs.length, ping: window.telepi.stats().rtt };
  });
  const ms = (v) => (typeof v === 'number' ? `${Math.round(v)} ms` : 'n/a');
  const line = `NAT figures: ${name} (${sel.pair.local.type} -> ${sel.pair.remote.type}) ` +
    `connect→first-frame ${ms(t.firstFrameAt - t.createdAt)} (ICE connected after ${ms(t.connectedAt - t.createdAt)}, ` +
    `page load→first frame ${ms(t.firstFrameAt)}, ${t.attempts} connection attempt(s)), ` +
    `rtt ${(sel.pair.rtt * 1000).toFixed(1)} ms (ICE), data-channel ping ${ms(t.ping)}`;
  figures.push(line);
}

async function becomeOperator(name, page) {
  await waitFor(name, 'the data channel to open and the operator role (the secret came with /connect)',
    () => page.evaluate(() => window.telepi.stats()),
    { until: (s) => s.dataChannel === 'open' && s.role === 'operator', timeoutMs: 10_000 });
}

test('turn-relay: robot behind a symmetric NAT; video, driving and the deadman through the TURN relay', async (t) => {
  const name = 'turn-relay';
  const page = await openPage(t, name);

  // The page is a secure context on a non-localhost address, so push-to-talk is offered.
  assert.equal(await page.evaluate(() => window.isSecureContext), true, 'window.isSecureContext over HTTPS');
  assert.match(page.url(), /^https:\/\/100\.64\.0\.10:/, 'the page came over HTTPS from the robot router\'s public address');

  // The page was handed the TURN server with credentials minted from the REST secret.
  const config = await waitFor(name, 'the page to create its RTCPeerConnection', () => page.evaluate(() => window.__nat.pcs[0]?.config));
  const turn = (config.iceServers || []).find((s) => [].concat(s.urls).some((u) => u.startsWith('turn:')));
  assert.ok(turn, `the page's iceServers have a turn: URL: ${JSON.stringify(config.iceServers)}`);
  assert.match(String(turn.username), /^\d+:/, `REST username is <expiry>:<name>: ${JSON.stringify(turn)}`);
  assert.ok(Number(turn.username.split(':')[0]) > Date.now() / 1000, `REST username expires in the future: ${turn.username}`);
  assert.ok(turn.credential, 'REST credential present');

  const sel = await assertVideoPlays(name, page);
  assert.equal(sel.pair.local.type, 'relay', `${name}: the selected pair goes through the TURN relay: ${JSON.stringify(sel.pair)}`);
  assert.equal(sel.pair.local.address, '100.64.0.2', `${name}: relayed by the coturn at 100.64.0.2: ${JSON.stringify(sel.pair)}`);
  await report(name, page, sel);

  // The operator drives (the secret came with /connect), push-to-talk shows.
  await becomeOperator(name, page);
  await waitFor(name, 'the push-to-talk button (secure context, operator)', () => page.isVisible('#talk'), { timeoutMs: 3000 });
  const idle = await status(page);
  assert.deepEqual(idle.motors, { left: 0, right: 0 }, `${name}: motors idle before driving`);
  assert.equal(idle.drive_backend, 'sim', `${name}: simulated motors`);

  await page.keyboard.down('w');
  let held = true;
  try {
    const driving = await waitFor(name, 'motors moving while w is held', () => status(page),
      { until: (s) => s.motors.left > 0 && s.motors.right > 0, timeoutMs: 5000 });
    t.diagnostic(`driving: ${JSON.stringify(driving.motors)}`);
    await sleep(1000);
    const still = await status(page);
    assert.ok(still.motors.left > 0, `${name}: still driving after 1 s of holding w: ${JSON.stringify(still.motors)}`);
    await page.keyboard.up('w');
    held = false;
    await waitFor(name, 'motors at 0 after releasing w', () => status(page),
      { until: (s) => s.motors.left === 0 && s.motors.right === 0, timeoutMs: 2000 });

    // The deadman: driving again, then the operator's packets vanish while the
    // key is still held (the page keeps "sending"): the robot stops on its own.
    await page.keyboard.down('w');
    held = true;
    await waitFor(name, 'motors moving again', () => status(page), { until: (s) => s.motors.left > 0, timeoutMs: 5000 });
    await page.evaluate(() => { window.__nat.mute = true; });
    const mutedAt = Date.now();
    await waitFor(name, 'the deadman to stop the motors (drive messages silenced, key still held)', () => status(page),
      { until: (s) => s.motors.left === 0 && s.motors.right === 0, timeoutMs: 2000, intervalMs: 50 });
    t.diagnostic(`deadman stopped the motors ${Date.now() - mutedAt} ms after the last drive message (poll resolution ~50 ms)`);
  } finally {
    if (held) await page.keyboard.up('w').catch(() => {});
    await page.evaluate(() => { window.__nat.mute = false; }).catch(() => {});
  }

  // Roaming: the browser gets a new address; its relay allocation (bound to
  // the old address's NAT mapping) is dead, and only an ICE restart, which
  // allocates anew, brings the picture back on the same session.
  const { sel: moved, line } = await assertRoams(assert, name, page, () => status(page), NAT.paths[name].log);
  assert.equal(moved.pair.local.type, 'relay', `${name}: relayed after the restart: ${JSON.stringify(moved.pair)}`);
  figures.push(`NAT figures: ${line}`);
});

test('turn-static: a static TURN user from [rtc] ice_servers relays too', { skip: !NAT.paths['turn-static'] }, async (t) => {
  const name = 'turn-static';
  const page = await openPage(t, name);
  const sel = await assertVideoPlays(name, page);
  assert.equal(sel.pair.local.type, 'relay', `${name}: relayed: ${JSON.stringify(sel.pair)}`);
  assert.equal(sel.pair.local.address, '100.64.0.3', `${name}: by the static-user coturn at 100.64.0.3: ${JSON.stringify(sel.pair)}`);
  await report(name, page, sel);
});

test('direct: a forwarded UDP port and [rtc] public_addr connect without TURN', async (t) => {
  const name = 'direct';
  const page = await openPage(t, name);
  const config = await waitFor(name, 'the page to create its RTCPeerConnection', () => page.evaluate(() => window.__nat.pcs[0]?.config));
  const urls = (config.iceServers || []).flatMap((s) => [].concat(s.urls));
  assert.ok(!urls.some((u) => /^turns?:/.test(u)), `${name}: no TURN server handed to the page: ${JSON.stringify(urls)}`);

  const sel = await assertVideoPlays(name, page);
  assert.notEqual(sel.pair.local.type, 'relay', `${name}: no relay in the selected pair: ${JSON.stringify(sel.pair)}`);
  assert.ok(!sel.localTypes.includes('relay'), `${name}: no relay candidate gathered at all: ${sel.localTypes}`);
  const sdp = await page.evaluate(() => window.__nat.pcs.at(-1).remoteSdp);
  assert.match(sdp, / 100\.64\.0\.10 50001 typ /, `${name}: the answer offers the public address 100.64.0.10:50001\n${sdp}`);
  if (sel.pair.remote.address) {
    assert.equal(`${sel.pair.remote.address}:${sel.pair.remote.port}`, '100.64.0.10:50001',
      `${name}: the selected pair reaches the robot at its forwarded address: ${JSON.stringify(sel.pair)}`);
  }
  await report(name, page, sel);
});

test('control: behind the symmetric NAT with STUN only, ICE never connects', { skip: !NAT.paths.control }, async () => {
  const name = 'control';
  assert.ok(control, 'the control page was opened');
  const { page } = control;
  try {
    await sleep(Math.max(0, control.openedAt + CONTROL_WATCH_MS - Date.now()));
    const seen = await page.evaluate(() => {
      const pcs = window.__nat.pcs;
      const frames = document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames;
      return { attempts: pcs.length, states: pcs.map((r) => r.states), frames,
        localTypes: [...new Set(pcs.flatMap((r) => r.localTypes))],
        answers: pcs.map((r) => r.remoteSdp).filter(Boolean), config: pcs[0]?.config };
    });
    const ctx = `${JSON.stringify({ ...seen, answers: seen.answers.length })}\n--- telepi (${name}) log tail ---\n${await logTail(name)}`;
    // Preconditions, so the failure below is the NAT's doing: both sides learned
    // their public address from STUN, and the robot answered.
    assert.ok(seen.answers.length > 0, `${name}: the robot answered an offer: ${ctx}`);
    assert.ok(seen.answers.some((sdp) => / typ srflx/.test(sdp)), `${name}: the robot offered a server-reflexive candidate: ${seen.answers[0]}`);
    assert.ok(!seen.answers.some((sdp) => / typ relay/.test(sdp)), `${name}: no relay anywhere`);
    assert.ok(seen.localTypes.includes('srflx'),
      `${name}: the browser gathered a server-reflexive candidate: ${ctx}`);
    // The point: no connection, no frame.
    assert.ok(!seen.states.flat().some((s) => s === 'connected' || s === 'completed'), `${name}: ICE must not connect: ${ctx}`);
    assert.equal(seen.frames, 0, `${name}: no video frame: ${ctx}`);
    figures.push(`NAT figures: control (symmetric NAT, STUN only) no connection in ${CONTROL_WATCH_MS / 1000} s ` +
      `(${seen.attempts} attempt(s), ICE states ${JSON.stringify(seen.states)})`);
  } finally {
    await page.close().catch(() => {});
  }
});
