// A benchmark, not a test (docs/benchmarks.md): 20 s of watching and
// driving (w held: the page sends drives at 10 Hz) through the link as
// tests/link/run.sh was told to emulate it (TELEPI_LINK_EMULATE, e.g.
// "--loss 0.02" or "--delay 60 --jitter 30"). Prints frames per second, the
// longest gap between two decoded frames, gaps over 500 ms, the time frozen
// (in gaps over 250 ms) and the robot's deadman trips; asserts only that the
// page watched and drove at all. tests/link/aiortc.bench.mjs is the same
// watching on the aiortc baseline.
//   TELEPI_LINK_EMULATE="--loss 0.02" TELEPI_LINK_FILES=tests/link/conditions.bench.mjs tests/link/run.sh
import { test, after } from 'node:test';
import { sleep } from '../browser/wait.mjs';
import { robot, launchViewer, openAsOperator, frameGaps, receivedVideo, receivedDelta } from './lib.mjs';

const SECONDS = 20;
let viewer;

after(async () => viewer?.close());

test(`${SECONDS} s of watching and driving through the emulated link`, async (t) => {
  viewer = await launchViewer();
  const page = await openAsOperator(viewer);
  await sleep(2000); // past the first keyframe and the bitrate's start
  const start = await robot();
  const received = await receivedVideo(page);
  const from = await page.evaluate(() => performance.now());
  await page.keyboard.down('w');
  // The encoder's bitrate, twice a second: what the rate control made of the link.
  const bitrates = [];
  for (let i = 0; i < SECONDS * 2; i += 1) {
    await sleep(500);
    bitrates.push((await robot()).video.bitrate);
  }
  const end = await robot();
  await page.keyboard.up('w');
  const sent = (k) => end.video[k] - start.video[k];
  t.diagnostic(`LINK figures: ${process.env.TELEPI_LINK_EMULATE || 'clean link'}: ${await frameGaps(page, from, SECONDS)}, ` +
    `deadman trips while driving: ${end.deadman_trips - start.deadman_trips}, motors ${JSON.stringify(end.motors)}`);
  t.diagnostic(`LINK detail: ${receivedDelta(received, await receivedVideo(page))}; robot: ` +
    `${sent('keyframes_encoded')} keyframes encoded (${end.video.keyframe_requests.loss - start.video.keyframe_requests.loss} asked for losses), ` +
    `${sent('frames_dropped_by_encoder')} frames skipped by the encoder, bitrate ${Math.min(...bitrates)}–${Math.max(...bitrates)} bit/s`);
});
