// What the tests in tests/link/ share: the link tests/link/run.sh built
// (TELEPI_LINK), polling with the tail of telepi's log in a failure, the
// robot's status read on its own side of the link, `ip` in a namespace.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { waitFor as poll } from '../browser/wait.mjs';

// playwright-core lives in tests/browser/node_modules (one npm project for all browser tests).
export const { chromium } = createRequire(new URL('../browser/package.json', import.meta.url))('playwright-core');
export const LINK = JSON.parse(process.env.TELEPI_LINK || 'null');
if (!LINK) throw new Error('TELEPI_LINK is not set: run tests/link/run.sh, which builds the link this test needs');

const run = promisify(execFile);

async function logTail(lines = 30) {
  const text = await fs.readFile(LINK.log, 'utf8').catch((e) => `(cannot read the log: ${e.message})`);
  return text.split('\n').filter((l) => !l.startsWith('ALSA lib')).slice(-lines).join('\n');
}

export const waitFor = (what, probe, options = {}) =>
  poll(what, probe, { ...options, tail: async () => `--- telepi log tail ---\n${await logTail()}` });

// The robot's status, read on its own side of the link (its loopback), so
// it answers during an outage too.
export async function robot() {
  const { stdout } = await run('ip',
    ['netns', 'exec', LINK.robotNs, 'curl', '-sf', '--max-time', '2', 'http://127.0.0.1:8080/api/status']);
  return JSON.parse(stdout);
}

// Runs `ip ARGS...` in the namespace `ns`.
export const ipIn = (ns, ...args) => run('ip', ['netns', 'exec', ns, 'ip', ...args]);
