// A benchmark, not a test (docs/benchmarks.md): tests/link/conditions.bench.mjs's
// 20 s of watching, on the aiortc baseline (bench/baseline/server.py, one
// libx264 encoder per viewer) instead of telepi, through the same emulated
// link, so both are measured on the same seeds. The viewer is a minimal
// RTCBot-style page (tests/link/aiortc-viewer.html, which the baseline serves): a
// recvonly video transceiver and a data channel, one non-trickle offer
// (gathering complete) POSTed to /connect, a ping every 100 ms on the channel
// in place of telepi's 10 Hz drives. Prints the same figures (fps, longest
// gap, gaps over 500 ms, frozen); asserts only that the page watched at all.
//   TELEPI_LINK_SERVER=aiortc TELEPI_LINK_CONTENT=camera \
//     TELEPI_LINK_EMULATE="--burst-loss 0.05 --burst-len 4 --seed 1" tests/link/run.sh
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../browser/wait.mjs';
import { LINK, waitFor, launchViewer, frameGaps, receivedVideo, receivedDelta } from './lib.mjs';

const SECONDS = 20;
let viewer;

after(async () => viewer?.close());


test(`${SECONDS} s of watching the aiortc baseline through the emulated link`, async (t) => {
  assert.equal(LINK.server, 'aiortc', 'run with TELEPI_LINK_SERVER=aiortc (tests/link/run.sh starts the baseline then)');
  viewer = await launchViewer();
  const page = await viewer.context.newPage();
  await page.goto(`${LINK.base}/`, { waitUntil: 'load' });
  const state = () => page.evaluate(() => {
    const video = document.getElementById('video');
    return { ...window.viewer, framesDecoded: video.getVideoPlaybackQuality().totalVideoFrames };
  });
  await waitFor('video and the data channel', async () => {
    const s = await state();
    if (s.error) throw new Error(s.error);
    return s;
  }, { until: (s) => s.framesDecoded > 0 && s.channel === 'open', timeoutMs: 20_000 });
  await sleep(2000); // past the first keyframe and the bitrate's start
  const received = await receivedVideo(page);
  const from = await page.evaluate(() => performance.now());
  await sleep(SECONDS * 1000);
  const end = await state();
  t.diagnostic(`LINK detail (aiortc): ${receivedDelta(received, await receivedVideo(page))}`);
  t.diagnostic(`LINK figures (aiortc): ${process.env.TELEPI_LINK_EMULATE || 'clean link'}: ${await frameGaps(page, from, SECONDS)}, ` +
    `pongs ${end.pongs}`);
});
