// telepi page: signaling, for app.js: the offer and ICE-restart offers to
// the robot (POST /connect, /connect/restart) or through the broker
// (web/broker.js), the STUN/TURN servers to use, when an offer has its
// candidates, and whether the robot can be reached right now. Plain script,
// no build step.
'use strict';

window.telepiSignal = ({ broker, robotName, credentials, secret, loggedOut }) => {
  const ICE_GATHER_TIMEOUT_MS = 3000;
  const ICE_SETTLE_MS = 300;
  const CONNECT_TIMEOUT_MS = 10000; // POST /connect
  const RESTART_TIMEOUT_MS = 3000;
  const PROBE_TIMEOUT_MS = 500;

  function connectUrl() {
    return secret ? `/connect?secret=${encodeURIComponent(secret)}` : '/connect';
  }

  // Just after an ICE restart's setLocalDescription, Chromium may still say
  // 'complete' (the last gathering's) with none of the new candidates in the
  // description yet: an offer without candidates reaches a robot behind a
  // NAT only if the browser's checks happen to get through to it, never
  // through TURN. So a 'complete' already there counts only with candidates
  // in hand; otherwise the gathering's own 'complete' is awaited.
  // Resolves when gathering is complete, or once it has settled: a candidate
  // of each kind the configured servers give (srflx for STUN, relay for TURN)
  // and ICE_SETTLE_MS without a new one. Over HTTPS with camera and mic
  // granted, Chromium's gathering after an address change ran past the 3 s
  // cap (tests/link/secure.test.mjs); the robot needs only the candidates it
  // can answer, and learns the browser's others from its checks.
  function waitForIceGathering(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete' && /^a=candidate:/m.test(pc.localDescription.sdp)) return resolve();
      const urls = iceServerUrls(pc);
      const wanted = new Set();
      if (urls.some((url) => /^stuns?:/.test(url))) wanted.add('srflx');
      if (urls.some((url) => /^turns?:/.test(url))) wanted.add('relay');
      let settle = null;
      const done = () => {
        clearTimeout(cap);
        clearTimeout(settle);
        pc.removeEventListener('icecandidate', onCandidate);
        pc.removeEventListener('icegatheringstatechange', onState);
        resolve();
      };
      const cap = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
      const onCandidate = (event) => {
        if (!event.candidate || !event.candidate.candidate) return;
        wanted.delete(event.candidate.type);
        if (wanted.size > 0) return;
        clearTimeout(settle);
        settle = setTimeout(done, ICE_SETTLE_MS);
      };
      const onState = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      pc.addEventListener('icecandidate', onCandidate);
      pc.addEventListener('icegatheringstatechange', onState);
    });
  }

  function iceServerUrls(pc) {
    return (pc.getConfiguration().iceServers || []).flatMap((server) => [].concat(server.urls));
  }

  // STUN/TURN servers from the robot, with TURN credentials minted for this
  // connection. An older robot without the endpoint: LAN only.
  async function fetchIceServers() {
    if (broker) return (await broker.request(robotName(), 'ice-servers', credentials())).iceServers || [];
    const res = await fetch('/api/ice-servers', { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
    if (res.status === 401 || res.status === 403) loggedOut();
    if (!res.ok) return [];
    return (await res.json()).iceServers || [];
  }

  async function postOffer(sdp) {
    if (broker) {
      const reply = await broker.request(robotName(), 'offer', { sdp, ...credentials() });
      return { type: 'answer', sdp: reply.sdp, peer: reply.peer };
    }
    const res = await fetch(connectUrl(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'offer', sdp }),
      signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS),
    });
    if (res.status === 401) loggedOut();
    if (!res.ok) throw new Error(`connect: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    const answer = await res.json();
    if (answer.type !== 'answer' || typeof answer.sdp !== 'string') throw new Error('connect: bad answer');
    return answer; // with `peer`, the session's id
  }

  // Sends a restart offer the way the first offer went: to the robot, or
  // through the broker. A refusal that a retry can't mend (the session
  // ended, a bad offer) is `final`: connect anew.
  async function postRestart(restart) {
    if (broker) {
      const reply = await broker.request(robotName(), 'restart', { ...restart, ...credentials() }).catch((err) => {
        const e = new Error(`ICE restart: ${err.message}`);
        e.final = /^(no session|ICE restart|malformed)/.test(err.message) && !/too soon/.test(err.message);
        throw e;
      });
      return { type: 'answer', sdp: reply.sdp };
    }
    const res = await fetch('/connect/restart', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...restart, type: 'offer' }),
      signal: AbortSignal.timeout(RESTART_TIMEOUT_MS),
    });
    if (res.status === 401) loggedOut();
    if (!res.ok) {
      const err = new Error(`ICE restart: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
      err.final = res.status === 404 || res.status === 400;
      throw err;
    }
    return res.json();
  }

  // Whether a restart offer could get through now: the robot answers over
  // HTTP within PROBE_TIMEOUT_MS, or the broker answers a round trip in that
  // time (or a new connection to it is made at once: the old one may have
  // died with our address).
  async function reachable() {
    if (broker) return broker.reachable(PROBE_TIMEOUT_MS);
    try {
      const res = await fetch('/api/status', { cache: 'no-store', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      return res.ok;
    } catch {
      return false;
    }
  }

  return { waitForIceGathering, iceServerUrls, fetchIceServers, postOffer, postRestart, reachable };
};
