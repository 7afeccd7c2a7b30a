// A diagnostic benchmark (docs/benchmarks.md, "where the freezes come
// from"): 20 s of watching and driving, as conditions.bench.mjs, while
// tests/link/capture.py records the robot's side of the link and the page
// reads its inbound-rtp stats every 20 ms. For every gap over 150 ms between
// two decoded frames it prints what the page received meanwhile (packets,
// retransmissions, NACKs sent, frames complete) and the longest silence in
// each direction at the robot, so a gap reads as: the picture's packets
// stopped (the robot or the forward link), or the page's NACKs could not get
// back (the reverse link), or neither.
//   TELEPI_LINK_CONTENT=camera TELEPI_LINK_EMULATE="--burst-loss 0.05 --burst-len 4 --seed 2" \
//     TELEPI_LINK_FILES=tests/link/gaps.bench.mjs tests/link/run.sh
import { test, after } from 'node:test';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../browser/wait.mjs';
import { LINK, launchViewer, openAsOperator, frameGaps } from './lib.mjs';

const SECONDS = 20;
const GAP_MS = 150;
let viewer;

after(async () => viewer?.close());

// The longest time with no datagram going `way` (I or O) within [from, to] (wall ms).
function silence(lines, way, from, to) {
  const times = lines.filter((l) => l.way === way && l.at >= from - 200 && l.at <= to).map((l) => l.at);
  let longest = 0;
  for (let i = 1; i < times.length; i += 1) longest = Math.max(longest, times[i] - times[i - 1]);
  return Math.round(longest);
}

test(`${SECONDS} s of watching, each gap explained`, async (t) => {
  viewer = await launchViewer();
  const page = await openAsOperator(viewer);
  await sleep(2000);
  await page.evaluate(() => {
    window.__received = [];
    setInterval(async () => {
      const at = performance.now();
      for (const pc of window.__pcList) {
        (await pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'video') {
            window.__received.push({ at, packets: r.packetsReceived, rtx: r.retransmittedPacketsReceived || 0,
              nacks: r.nackCount, complete: r.framesReceived });
          }
        });
      }
    }, 20);
  });
  const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'telepi-gaps-')), 'capture.txt');
  const capture = spawn('ip', ['netns', 'exec', LINK.robotNs, 'python3',
    fileURLToPath(new URL('capture.py', import.meta.url)), String(SECONDS + 1), file], { stdio: 'inherit' });
  const done = new Promise((resolve) => capture.on('exit', resolve));
  // Page time to wall time, for matching the capture.
  const { from, wall } = await page.evaluate(() => ({ from: performance.now(), wall: Date.now() }));
  await page.keyboard.down('w');
  await sleep(SECONDS * 1000);
  await page.keyboard.up('w');
  await done;
  t.diagnostic(`LINK figures: ${await frameGaps(page, from, SECONDS)}`);
  const frames = (await page.evaluate(() => window.__frames)).filter((at) => at >= from && at <= from + SECONDS * 1000);
  const received = await page.evaluate(() => window.__received);
  const lines = (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => {
    const [at, way] = l.split(' ');
    return { at: Number(at) * 1000, way };
  });
  await fs.rm(path.dirname(file), { recursive: true, force: true });
  const near = (at) => received.reduce((best, r) => (Math.abs(r.at - at) < Math.abs(best.at - at) ? r : best));
  for (let i = 1; i < frames.length; i += 1) {
    const gap = frames[i] - frames[i - 1];
    if (gap <= GAP_MS) continue;
    const [a, b] = [near(frames[i - 1]), near(frames[i])];
    const [w0, w1] = [wall + frames[i - 1] - from, wall + frames[i] - from];
    t.diagnostic(`LINK gap at ${((frames[i - 1] - from) / 1000).toFixed(2)} s, ${Math.round(gap)} ms: page got ` +
      `${b.packets - a.packets} packets (${b.rtx - a.rtx} retransmitted), sent ${b.nacks - a.nacks} NACKs, ` +
      `${b.complete - a.complete} frames complete; at the robot the longest silence in ${silence(lines, 'I', w0, w1)} ms, ` +
      `out ${silence(lines, 'O', w0, w1)} ms`);
  }
});
