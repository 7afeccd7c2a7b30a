// End-to-end test of the telepi page in headless Chromium against the real server binary.
//
//   cargo build && (cd tests/browser && npm install) && node --test tests/browser/
//
// Env: TELEPI_BIN (default target/debug/telepi, relative to the repo root),
//      TELEPI_ARGS (extra server arguments, whitespace separated),
//      TELEPI_TEST_LOG=1 (echo server output while the test runs).
// Only the teleop test: node --test --test-name-pattern=teleop tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';
import { sleep, waitFor as poll } from './wait.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.resolve(REPO, process.env.TELEPI_BIN || 'target/debug/telepi');
const HOST = '127.0.0.1';

let server; // { proc, base, log }
let context; // playwright persistent BrowserContext
let profileDir;

// ---- helpers ----------------------------------------------------------------


function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, HOST, () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

function serverLogTail(lines = 40) {
  return server ? server.log.join('').split('\n').slice(-lines).join('\n') : '(no server)';
}

// waitFor with the server's log tail in its failure.
const waitFor = (what, probe, options = {}) =>
  poll(what, probe, { ...options, tail: async () => `--- server log tail ---\n${serverLogTail()}` });

async function status() {
  const headers = server.password ? { Authorization: `Bearer ${server.password}` } : {};
  const res = await fetch(`${server.base}/api/status`, { headers, signal: AbortSignal.timeout(2000) });
  assert.equal(res.status, 200, 'GET /api/status');
  return res.json();
}

// `password`: the viewer password the server's config sets, for status().
async function startServer(configArgs = [], password = null) {
  await fs.access(BIN).catch(() => {
    throw new Error(`server binary not found at ${BIN} (run cargo build or set TELEPI_BIN)`);
  });
  const httpPort = await freeTcpPort();
  const rtcPort = await freeUdpPort();
  const extra = (process.env.TELEPI_ARGS || '').split(/\s+/).filter(Boolean);
  const args = ['--http', `${HOST}:${httpPort}`, '--rtc', `${HOST}:${rtcPort}`, ...configArgs, ...extra];
  const proc = spawn(BIN, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  let exited = null;
  proc.on('exit', (code, signal) => { exited = signal || code; });
  for (const stream of [proc.stdout, proc.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      log.push(chunk);
      if (log.length > 2000) log.splice(0, 1000);
      if (process.env.TELEPI_TEST_LOG) process.stderr.write(chunk);
    });
  }
  server = { proc, base: `http://${HOST}:${httpPort}`, log, password };
  await waitFor('GET /api/status to answer', () => {
    if (exited !== null) throw new Error(`server exited early (${exited}) with ${args.join(' ')}`);
    return status();
  }, { timeoutMs: 15_000, intervalMs: 200 });
}

async function stopServer() {
  if (!server || server.proc.exitCode !== null || server.proc.signalCode !== null) return;
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function launchBrowser() {
  profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-chromium-'));
  // ignoreDefaultArgs: Chromium gets exactly our flags, plus the profile and the
  // debugging pipe Playwright talks over.
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreDefaultArgs: true,
    // A fake camera, granted without a prompt: for "Share my camera".
    args: [...CHROMIUM_ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--user-data-dir=${profileDir}`, '--remote-debugging-pipe'],
    viewport: { width: 1280, height: 720 },
    timeout: 30_000,
  });
}

// Opens the page and closes it (and so its peer connection) when the test ends.
async function openPage(t) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => msg.type() === 'error' && problems.push(`console: ${msg.text()}`));
  t.after(async () => {
    if (problems.length) t.diagnostic(problems.join('\n'));
    await page.close().catch(() => {});
  });
  page.setDefaultTimeout(10_000);
  await page.goto(`${server.base}/`, { waitUntil: 'load' });
  return page;
}

const stats = (page) => page.evaluate(() => window.telepi.stats());

const videoQuality = (page) => page.evaluate(() => {
  const v = document.getElementById('video');
  return { frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, height: v.videoHeight, paused: v.paused };
});

// Waits for the first decoded frame, then checks frames keep rising for 2 s at 640 px wide.
async function assertVideoPlays(page) {
  await waitFor('the first decoded video frame', () => videoQuality(page), { until: (q) => q.frames > 0, timeoutMs: 20_000 });
  const before = await videoQuality(page);
  await sleep(2000);
  const after = await videoQuality(page);
  assert.ok(after.frames > before.frames + 10, `frames should rise over 2 s: ${before.frames} -> ${after.frames}`);
  assert.equal(after.width, 640, `videoWidth (${JSON.stringify(after)})`);
  assert.equal(after.paused, false, 'video element is playing');
}

async function waitForDataChannel(page) {
  await waitFor('the data channel to open', () => stats(page), { until: (s) => s.dataChannel === 'open', timeoutMs: 15_000 });
}

// The first peer normally is the operator; otherwise claim the robot.
async function becomeOperator(page) {
  await waitFor('the operator role', async () => {
    const { role } = await stats(page);
    if (role === 'viewer' && await page.isVisible('#claim')) await page.click('#claim');
    return role;
  }, { until: (role) => role === 'operator', timeoutMs: 10_000, intervalMs: 500 });
}

// ---- lifecycle --------------------------------------------------------------

before(async () => {
  await startServer();
  await launchBrowser();
});

after(async () => {
  await context?.close().catch(() => {});
  await stopServer();
  if (profileDir) await fs.rm(profileDir, { recursive: true, force: true });
});

// ---- tests ------------------------------------------------------------------

test('video plays, ping RTT shows, reload reconnects and the old peer is reaped', async (t) => {
  const page = await openPage(t);

  await assertVideoPlays(page);
  assert.ok(await page.isHidden('#pip'), 'one camera: no picture-in-picture');
  assert.ok(await page.isHidden('#pip-toggle'), 'one camera: nothing to turn off');

  const { rtt } = await waitFor('a ping RTT', () => stats(page), { until: (s) => s.rtt !== null, timeoutMs: 5000 });
  assert.ok(rtt >= 0 && rtt < 1000, `RTT ${rtt} ms`);
  await waitFor('the RTT overlay', () => page.textContent('#rtt'), { until: (text) => /\d+ ms/.test(text), timeoutMs: 3000 });

  const first = await waitFor('one peer in /api/status', status, { until: (s) => s.peers.length === 1, timeoutMs: 5000 });
  assert.equal(first.video.width, 640);
  const oldIds = first.peers.map((p) => p.id);

  const reloadedAt = Date.now();
  await page.reload({ waitUntil: 'load' });
  // The page closes its peer connection on pagehide, so the robot must drop the
  // old peer at once rather than after an ICE timeout.
  const after = await waitFor('only the new peer in /api/status', status, {
    until: (s) => s.peers.length === 1 && !oldIds.includes(s.peers[0].id),
    timeoutMs: 5000,
  });
  t.diagnostic(`old peer ${oldIds} replaced by ${after.peers[0].id} in ${Date.now() - reloadedAt} ms`);

  await assertVideoPlays(page);
  const final = await status();
  assert.equal(final.peers.length, 1, `peers after reload: ${JSON.stringify(final.peers)}`);
});

test('teleop: holding w drives forward, releasing stops', async (t) => {
  const page = await openPage(t);
  await waitForDataChannel(page);

  await becomeOperator(page);

  const idle = await status();
  assert.deepEqual(idle.motors, { left: 0, right: 0 }, 'motors idle before driving');

  await page.keyboard.down('w');
  let released = false;
  try {
    const driving = await waitFor('motors.left > 0 while w is held', status, { until: (s) => s.motors.left > 0, timeoutMs: 5000 });
    assert.ok(driving.motors.right > 0, `forward drives both sides: ${JSON.stringify(driving.motors)}`);

    // Still driving a second later: the page keeps the deadman fed at ~20 Hz.
    await sleep(1000);
    const held = await status();
    assert.ok(held.motors.left > 0, `still driving while held: ${JSON.stringify(held.motors)}`);

    await page.keyboard.up('w');
    released = true;
    await waitFor('motors back to 0 after releasing w', status, {
      until: (s) => s.motors.left === 0 && s.motors.right === 0,
      timeoutMs: 3000,
    });
  } finally {
    if (!released) await page.keyboard.up('w').catch(() => {});
  }
  // Drives went on the lossy "drive" channel, stamped, and none was stale.
  const sent = await page.evaluate(() => window.telepi.channelMessages());
  assert.ok(sent.drive >= 20, `drives on the drive channel: ${JSON.stringify(sent)}`);
  assert.equal((await status()).rejections.stale, 0);

  // A reload makes a new connection: the page takes its role back at once
  // with its resume token, without a click.
  await page.reload({ waitUntil: 'load' });
  await waitFor('the operator role again after a reload', () => stats(page),
    { until: (s) => s.dataChannel === 'open' && s.role === 'operator', timeoutMs: 10_000 });
});

test('viewer password: the login form lets the page in, and it plays', async (t) => {
  await stopServer();
  const password = "look but don't touch"; // tests/fixtures/viewer-password.toml
  await startServer(['--config', 'tests/fixtures/viewer-password.toml'], password);
  const page = await openPage(t);
  assert.ok(await page.isVisible('#password'), 'the robot shows its login form first');
  await page.fill('#password', 'wrong');
  await page.click('#login');
  await waitFor('the wrong password to be refused', () => page.textContent('body'), { until: (text) => text.includes('wrong password') });
  await page.fill('#password', password);
  await page.click('#login');
  await assertVideoPlays(page);
  await page.reload({ waitUntil: 'load' });
  await assertVideoPlays(page); // the cookie keeps it logged in
});

test('custom controls: a configured button renders, the operator\'s click reaches a program on the local API, its reading shows', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-controls-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'api.sock');
  const config = path.join(dir, 'robot.toml');
  await fs.writeFile(config, [
    '[api]', `socket = "${socketPath}"`,
    '[[controls]]', 'name = "horn"', 'kind = "button"', 'label = "Horn"', 'key = "h"',
    '[[readings]]', 'name = "battery"', 'label = "Battery"', 'unit = "V"', 'min = 6.0', 'max = 8.4', '',
  ].join('\n'));
  await stopServer();
  await startServer(['--config', config]);

  // A program on the local API: hears custom controls, publishes a reading.
  const heard = [];
  let partial = '';
  const program = net.createConnection(socketPath);
  t.after(() => program.destroy());
  program.setEncoding('utf8');
  program.on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    heard.push(...lines.map((line) => JSON.parse(line)));
  });
  program.write('{"type":"subscribe","events":["custom"]}\n{"type":"reading","name":"battery","value":7.4}\n');

  const page = await openPage(t);
  await waitForDataChannel(page);
  await becomeOperator(page);
  const horn = '#custom-controls button[data-control="horn"]';
  await waitFor('the horn button to be enabled', () => page.isEnabled(horn));
  await page.click(horn);
  const pressed = await waitFor('the program to hear the horn', () => heard.find((m) => m.type === 'custom' && m.name === 'horn' && m.value === true));
  assert.equal(pressed.role, 'operator');
  await waitFor('the horn let go', () => heard.find((m) => m.type === 'custom' && m.name === 'horn' && m.value === false));
  await waitFor('the reading on the page', () => page.textContent('#readings dd[data-reading="battery"]'), { until: (text) => text === '7.4 V' });
  assert.equal(await page.getAttribute('#readings meter', 'value'), '7.4', 'a gauge for a reading with min and max');
});

// Broker mode: the exported page opened as a file, a real Mosquitto with a
// websockets listener, the robot connected to it (no page served by the robot).
test('recording: the operator records, every page shows REC, the file is listed and downloads', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-record-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'robot.toml');
  await fs.writeFile(config, ['[record]', `dir = "${path.join(dir, 'rec')}"`, ''].join('\n'));
  await stopServer();
  await startServer(['--config', config]);

  const operator = await openPage(t);
  await waitForDataChannel(operator);
  await becomeOperator(operator);
  const viewer = await openPage(t);
  await waitForDataChannel(viewer);
  assert.equal(await viewer.isVisible('#rec'), false, 'nothing recorded yet');
  assert.equal(await viewer.isVisible('#record'), false, 'a viewer has no Record button');
  assert.equal(await viewer.isVisible('#recordings-toggle'), false, 'nor the list');

  await operator.click('#record');
  await waitFor('the viewer to see REC', () => viewer.isVisible('#rec'));
  await waitFor('the operator to see REC', () => operator.isVisible('#rec'));
  assert.equal(await operator.textContent('#record'), 'Stop recording');
  await sleep(2500);
  await operator.click('#record');
  await waitFor('REC to go on the viewer\'s page', async () => !(await viewer.isVisible('#rec')));

  await operator.click('#recordings-toggle');
  const link = '#recordings-list a';
  await waitFor('the recording in the list', () => operator.isVisible(link));
  const name = await operator.textContent(link);
  assert.match(name, /^telepi-\d{8}-\d{6}-main\.mp4$/);
  const href = await operator.getAttribute(link, 'href');
  const download = await operator.evaluate(async (url) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    return { length: bytes.length, type: String.fromCharCode(...bytes.slice(4, 8)) };
  }, href);
  const onDisk = await fs.stat(path.join(dir, 'rec', name));
  assert.deepEqual(download, { length: onDisk.size, type: 'ftyp' });
  // The browser plays the recording itself, picture and μ-law sound.
  const played = await operator.evaluate(async (url) => {
    const v = document.createElement('video');
    v.muted = true;
    v.playsInline = true;
    document.body.append(v);
    v.src = URL.createObjectURL(await (await fetch(url)).blob());
    const ended = new Promise((resolve) => { v.onended = resolve; v.onerror = resolve; });
    v.play().catch(() => {});
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    const state = { ended: v.ended, width: v.videoWidth, duration: v.duration, audioBytes: v.webkitAudioDecodedByteCount, error: v.error && v.error.message };
    v.remove();
    return state;
  }, href);
  assert.ok(played.ended && played.width === 640 && played.duration > 2 && played.audioBytes > 0 && !played.error, JSON.stringify(played));
  assert.match(await operator.textContent('#recordings-state'), /^1 file, /);
});

async function startMosquitto(dir) {
  const [tcp, ws] = [await freeTcpPort(), await freeTcpPort()];
  const passwd = path.join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', passwd, 'fleet', 'fleet-pw']);
  const conf = path.join(dir, 'mosquitto.conf');
  await fs.writeFile(conf, [
    `listener ${tcp} 127.0.0.1`,
    `listener ${ws} 127.0.0.1`, 'protocol websockets',
    'allow_anonymous false', `password_file ${passwd}`, 'user root', 'persistence false', '',
  ].join('\n'));
  const proc = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  await waitFor('mosquitto to listen', () => new Promise((resolve, reject) => {
    const s = net.connect(tcp, HOST, () => { s.end(); resolve(true); });
    s.on('error', reject);
  }), { timeoutMs: 5000 });
  return { proc, tcp, ws };
}

test('broker mode: the exported page lists the robot, connects through Mosquitto, drives, and sees it go offline', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-broker-'));
  const mosquitto = await startMosquitto(dir);
  t.after(async () => {
    mosquitto.proc.kill();
    await fs.rm(dir, { recursive: true, force: true });
  });
  await stopServer();
  const config = path.join(dir, 'robot.toml');
  await fs.writeFile(config, `[broker]\nurl = "mqtt://127.0.0.1:${mosquitto.tcp}"\nname = "rover"\nusername = "fleet"\npassword = "fleet-pw"\n`);
  await startServer(['--config', config]);
  const pageDir = path.join(dir, 'page');
  execFileSync(BIN, ['export-page', pageDir]);

  const page = await context.newPage();
  t.after(() => page.close().catch(() => {}));
  const query = new URLSearchParams({ broker: `ws://127.0.0.1:${mosquitto.ws}`, username: 'fleet', password: 'fleet-pw' });
  await page.goto(`file://${pageDir}/index.html?${query}`, { waitUntil: 'load' });
  await page.waitForSelector('#fleet li[data-robot="rover"][data-online="true"] button', { timeout: 15_000 });
  await page.click('#fleet li[data-robot="rover"] button');
  await assertVideoPlays(page);
  assert.equal((await status()).broker.offers_answered, 1);

  await becomeOperator(page);
  await page.keyboard.down('w');
  await waitFor('driving through a broker-signalled peer', status, { until: (s) => s.motors.left > 0, timeoutMs: 5000 });
  await page.keyboard.up('w');
  await waitFor('motors stop', status, { until: (s) => s.motors.left === 0, timeoutMs: 3000 });

  server.proc.kill('SIGKILL'); // no goodbye: the broker's will says it
  await page.waitForSelector('#fleet li[data-robot="rover"][data-online="false"]', { state: 'attached', timeout: 20_000 });
});

test('operator camera: the operator shares its camera, viewers show who drives, stopping hides it', async (t) => {
  // The broker test before leaves its own robot stopped: a fresh one.
  await stopServer();
  await startServer();
  const operator = await openPage(t);
  await waitForDataChannel(operator);
  await becomeOperator(operator);
  const viewer = await openPage(t);
  await waitForDataChannel(viewer);
  assert.ok(await viewer.isHidden('#driver'), 'nothing shared yet: no who-drives picture');
  assert.ok(await viewer.isHidden('#share-camera'), 'only the operator may share');
  await operator.click('#share-camera');
  await waitFor('the operator sharing', () => stats(operator), { until: (s) => s.sharingCamera });
  // Chromium's fake camera at the 640x480 the page asks for, H.264 as the robot answered.
  const shown = (page) => waitFor('the who-drives picture', () => stats(page), {
    until: (s) => !s.driver.hidden && s.driver.frames > 10,
    timeoutMs: 20_000,
  });
  const seen = await shown(viewer);
  assert.deepEqual([seen.driver.width, seen.driver.height], [640, 480]);
  // A viewer that joins later needs a keyframe: the robot asks the operator's browser (PLI).
  const late = await openPage(t);
  await shown(late);
  const robot = await status();
  assert.equal(robot.operator_camera.peer, robot.operator);
  assert.equal(robot.operator_camera.receiving, true);
  assert.deepEqual([robot.operator_camera.width, robot.operator_camera.height], [640, 480]);
  assert.equal(robot.operator_camera.refused_frames, 0);
  assert.ok(robot.operator_camera.keyframe_requests >= 1, 'the late viewer was served by a PLI');
  assert.ok((await stats(operator)).driver.hidden, 'the operator gets no echo of itself');
  await operator.click('#share-camera');
  await waitFor('the who-drives picture to hide', () => stats(viewer), { until: (s) => s.driver.hidden, timeoutMs: 10_000 });
  assert.equal((await stats(operator)).sharingCamera, false);
});

test('two cameras: the second shows as a picture-in-picture, a click swaps it with the main one, its button turns it off and on', async (t) => {
  await stopServer();
  await startServer(['--config', 'tests/fixtures/two-cameras.toml']); // 320x240 and 160x120
  const page = await openPage(t);
  const widths = () => page.evaluate(() => ({
    main: document.getElementById('video').videoWidth,
    pip: document.getElementById('pip').videoWidth,
    pipHidden: document.getElementById('pip').hidden,
  }));
  await waitFor('both cameras playing', widths, { until: (w) => w.main === 320 && w.pip === 160 && !w.pipHidden, timeoutMs: 20_000 });
  await page.click('#pip');
  await waitFor('the cameras swapped', widths, { until: (w) => w.main === 160 && w.pip === 320, timeoutMs: 10_000 });
  await page.click('#pip');
  await waitFor('the cameras swapped back', widths, { until: (w) => w.main === 320 && w.pip === 160, timeoutMs: 10_000 });

  // Hide the small picture's camera: the robot stops sending it, and with
  // nobody else watching its encoder idles.
  assert.equal(await page.textContent('#pip-toggle'), 'Hide arm');
  await page.click('#pip-toggle');
  await waitFor('the arm hidden', () => page.evaluate(() => document.getElementById('pip').hidden), { until: (hidden) => hidden, timeoutMs: 5000 });
  assert.equal(await page.textContent('#pip-toggle'), 'Show arm');
  await waitFor('the robot stops sending the arm', status, { until: (s) => s.peers[0]?.receiving?.[1] === false, timeoutMs: 5000 });
  const encoded = async () => (await status()).cameras[1].frames_encoded;
  await sleep(1000); // frames already on their way
  const idle = await encoded();
  await sleep(1000);
  assert.equal(await encoded(), idle, 'nobody watches the arm: its encoder idles');

  await page.click('#pip-toggle');
  await waitFor('the arm back', status, { until: (s) => s.peers[0]?.receiving?.[1] === true && s.cameras[1].frames_encoded > idle, timeoutMs: 10_000 });
  const frames = () => page.evaluate(() => document.getElementById('pip').getVideoPlaybackQuality().totalVideoFrames);
  const shown = await frames();
  await waitFor('the arm plays again', frames, { until: (n) => n > shown + 5, timeoutMs: 10_000 });
  assert.ok(await page.isVisible('#pip'));
  assert.equal(await page.textContent('#pip-toggle'), 'Hide arm');
});
