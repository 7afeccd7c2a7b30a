// A headless Chromium operator for the robot's screen test in the emulated
// PC (tests/emulated_pc.rs, run by tests/vm/pc.sh): opens the robot's page,
// takes the operator role, shares Chromium's fake camera ("Share my
// camera"), prints `sharing`, and shares until its stdin closes; then it
// closes the browser and exits.
//
//   node tests/browser/share-camera.mjs http://10.0.2.2:8080/
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';
import { waitFor } from './wait.mjs';

const url = process.argv[2];
if (!url) {
  console.error('usage: share-camera.mjs URL');
  process.exit(2);
}
const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'share-camera-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  ignoreDefaultArgs: true,
  args: [
    ...CHROMIUM_ARGS,
    // The fake camera, granted without a prompt; getUserMedia needs a
    // secure context, and the robot is plain http on a non-local address.
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    `--unsafely-treat-insecure-origin-as-secure=${new URL(url).origin}`,
    `--user-data-dir=${profile}`,
    '--remote-debugging-pipe',
  ],
  timeout: 30_000,
});
try {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`pageerror: ${err.message}`));
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  const stats = () => page.evaluate(() => window.telepi.stats());
  // The first peer is normally the operator; otherwise claim the robot.
  await waitFor('the operator role', async () => {
    const { role } = await stats();
    if (role === 'viewer' && await page.isVisible('#claim')) await page.click('#claim');
    return role;
  }, { until: (role) => role === 'operator', timeoutMs: 30_000, intervalMs: 500 });
  await page.click('#share-camera');
  await waitFor('the page sharing its camera', stats, { until: (s) => s.sharingCamera, timeoutMs: 30_000 });
  console.log('sharing');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
} finally {
  await context.close();
  await fs.rm(profile, { recursive: true, force: true });
}
