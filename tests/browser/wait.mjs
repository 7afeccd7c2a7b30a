// Polling for the browser tests (tests/browser, tests/nat): the page and the
// robot change state on their own time, so tests wait for a condition, never
// for a fixed delay.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` until `until(value)` holds and returns that value, or fails
// after `timeoutMs` with the last value seen and what `tail()` returns (the
// tail of the server's log).
export async function waitFor(what, probe, { until = Boolean, timeoutMs = 10_000, intervalMs = 100, tail = async () => '' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (until(last)) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${seen})\n${await tail()}`);
    }
    await sleep(intervalMs);
  }
}
