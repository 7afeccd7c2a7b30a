// Where an address change's time goes, for the roaming tests (tests/link,
// tests/nat): the page's ICE restart steps (telepi.stats().restarts.steps),
// other stamped moments and the first frame decoded after the freeze, all in
// page time (performance.now()), printed as ms after the change.

import fs from 'node:fs/promises';

// When telepi logged lines containing `what` (its log lines start with a UTC
// timestamp) after `since` (Date.now() time), as Date.now() times.
export async function loggedAt(log, what, since) {
  const lines = (await fs.readFile(log, 'utf8')).split('\n').filter((l) => l.includes(what));
  return lines.map((l) => Date.parse(l.split(/\s+/)[0])).filter((at) => at >= since);
}

// Run in the page (page.evaluate(stampFrames)): stamps every change of the
// #video element's decoded-frame count in window.__frames, polled every 5 ms.
export function stampFrames() {
  if (window.__frames) return;
  window.__frames = [];
  let seen = 0;
  setInterval(() => {
    const video = document.getElementById('video');
    const frames = video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
    if (frames !== seen) {
      seen = frames;
      window.__frames.push(performance.now());
    }
  }, 5);
}

// The picture back after `changedAt`: the first frame decoded after a gap
// over 250 ms (the "frozen") that ends after the change, and that
// gap, from stampFrames' stamps.
export function firstNewFrame(frames, changedAt) {
  for (let i = 1; i < frames.length; i += 1) {
    if (frames[i] > changedAt && frames[i] - frames[i - 1] > 250) return { at: frames[i], frozen: frames[i] - frames[i - 1] };
  }
  return { at: null, frozen: 0 };
}

// "what ms, ..." in time order, ms after `changedAt`, of those after
// `changedAt - 100`: `steps` are [what, at] pairs (the page's restart
// steps), `more` [at, what] pairs.
export function timeline(changedAt, steps, more = []) {
  return [...(steps || []).map(([what, at]) => [at, what]), ...more]
    .filter(([at]) => at !== null && at !== undefined && at > changedAt - 100)
    .sort((a, b) => a[0] - b[0])
    .map(([at, what]) => `${what} ${Math.round(at - changedAt)}`)
    .join(', ');
}
