// Signaling through an MQTT broker, for robots nothing can connect to (docs/guide/remote-access.md,
// "Remote robots through a broker"). Active only when the page is opened with
// ?broker=ws(s)://HOST:PORT (plus &username=, &password=, &prefix=, &robot=);
// otherwise the page talks to the robot that served it, as always.
// Topics: <prefix>/robots/<name>/status (retained presence),
// <prefix>/robots/<name>/signal (requests), <prefix>/clients/<id> (replies).
'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  const url = params.get('broker');
  window.telepiBroker = null;
  if (!url) return;

  // Short: a request lost while a link was down is retried (web/app.js), not waited on.
  const REQUEST_TIMEOUT_MS = 5000;
  const ACK_TIMEOUT_MS = 2000;
  // A new connection to the broker is a few round trips (TCP, websocket, MQTT CONNECT).
  const RECONNECT_WAIT_MS = 1500;
  const prefix = params.get('prefix') || 'telepi';
  const clientId = `telepi-page-${Math.random().toString(36).slice(2, 12)}`;
  const replyTopic = `${prefix}/clients/${clientId}`;
  const statusTopic = `${prefix}/robots/+/status`;
  const pending = new Map(); // request id -> { resolve, reject, timer }
  const fleet = new Map(); // robot name -> its presence message
  const listeners = new Set();
  let client = null;
  let lastError = null;
  let nextId = 1;

  const changed = () => listeners.forEach((listener) => listener());

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(script);
    });
  }

  function onMessage(topic, payload) {
    if (topic === replyTopic) {
      let reply;
      try {
        reply = JSON.parse(payload.toString());
      } catch {
        return;
      }
      const waiting = pending.get(reply.id);
      if (!waiting) return;
      pending.delete(reply.id);
      clearTimeout(waiting.timer);
      if (reply.type === 'error') waiting.reject(new Error(reply.error));
      else waiting.resolve(reply);
      return;
    }
    const name = topic.slice(prefix.length + '/robots/'.length, -'/status'.length);
    if (!payload.length) fleet.delete(name); // a cleared retained message: the robot was removed
    else {
      try {
        fleet.set(name, JSON.parse(payload.toString()));
      } catch {
        return;
      }
    }
    changed();
  }

  // The vendored MQTT.js (web/vendor/): relative, so the exported page works from a file.
  const ready = loadScript('vendor/mqtt.min.js').then(() => {
    client = window.mqtt.connect(url, {
      clientId,
      username: params.get('username') || undefined,
      password: params.get('password') || undefined,
      clean: true,
      reconnectPeriod: 1000, // the broker coming back is noticed within a second
      connectTimeout: 5000,
    });
    client.on('connect', () => {
      lastError = null;
      client.subscribe([replyTopic, statusTopic], { qos: 1 });
      changed();
    });
    client.on('close', changed);
    client.on('error', (err) => {
      lastError = err.message;
      changed();
    });
    client.on('message', onMessage);
  });

  // Asks `robot` for something ("offer" with sdp, or "ice-servers"); resolves with its reply.
  async function request(robot, type, fields = {}) {
    await ready;
    if (!client.connected) throw new Error(`broker not connected${lastError ? `: ${lastError}` : ''}`);
    const id = `${clientId}-${nextId++}`;
    const body = JSON.stringify({ type, id, reply_to: replyTopic, ...fields });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${robot} did not answer through the broker`));
      }, REQUEST_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      // QoS 1: the broker itself acknowledges. No acknowledgement means our
      // connection to it is dead without the browser knowing (our address
      // changed under the websocket): start a new one at once rather than
      // after MQTT's keepalive.
      const acked = setTimeout(() => {
        clearTimeout(timer);
        pending.delete(id);
        reconnect('no acknowledgement from the broker: reconnecting');
        reject(new Error(`broker not connected: ${lastError}`));
      }, ACK_TIMEOUT_MS);
      client.publish(`${prefix}/robots/${robot}/signal`, body, { qos: 1 }, () => clearTimeout(acked));
    });
  }

  // Drops our connection to the broker and starts a new one at once, not
  // after MQTT's keepalive: the old one's TCP connection is dead (our
  // address changed under the websocket) without the browser knowing.
  function reconnect(reason) {
    lastError = reason;
    client.end(true, () => client.reconnect());
    changed();
  }

  // Whether a request could get through now, within about `timeoutMs`
  // (web/app.js asks when its media path stalls). The connection is tested
  // with a round trip (an empty QoS 1 message to our own reply topic, which
  // the broker acknowledges; onMessage drops it when it comes back):
  // when the browser's address changed, the websocket died with it, and a
  // request sent into it would only fail after ACK_TIMEOUT_MS. No answer:
  // a new connection at once, waited for up to RECONNECT_WAIT_MS.
  async function reachable(timeoutMs) {
    await ready;
    const acked = (done) => {
      client.publish(replyTopic, '', { qos: 1 }, (err) => done(!err));
    };
    if (client.connected && await within(timeoutMs, acked)) return true;
    // Not connected (MQTT.js is reconnecting already) or silent: the next
    // connection, not the dying one, is what counts.
    return within(RECONNECT_WAIT_MS, (done) => {
      const onConnect = () => done(true);
      client.once('connect', onConnect);
      if (client.connected) reconnect('no answer from the broker: reconnecting');
      return () => client.removeListener('connect', onConnect);
    });
  }

  // Runs `start(done)` and resolves with what it passes to done(), or with
  // false after `ms` (then calls the clean-up `start` may return).
  function within(ms, start) {
    return new Promise((resolve) => {
      let cleanUp = null;
      const timer = setTimeout(() => {
        resolve(false);
        if (typeof cleanUp === 'function') cleanUp();
      }, ms);
      cleanUp = start((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }

  window.telepiBroker = {
    robot: params.get('robot'),
    request,
    fleet: () => [...fleet.entries()].map(([name, status]) => ({ ...status, name })),
    connected: () => Boolean(client && client.connected),
    reachable,
    error: () => lastError,
    onChange: (listener) => listeners.add(listener),
  };
})();
