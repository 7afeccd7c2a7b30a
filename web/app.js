// telepi page: WebRTC video from the robot plus teleop over the "default" data channel
// (drives over the lossy "drive" one).
// Plain script, no build step. Protocol: JSON text messages tagged by "type".
'use strict';

(() => {
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 5000;
  const ICE_GATHER_TIMEOUT_MS = 3000;
  const ICE_SETTLE_MS = 300;
  const CONNECT_TIMEOUT_MS = 10000; // POST /connect
  const DRIVE_INTERVAL_MS = 50; // ~20 Hz while a control is held
  const SLOW_INTERVAL_MS = 1000; // ping + fps
  const SILENCE_MS = 1500; // nothing heard (telemetry comes at 5 Hz): the link is lost, hold on
  // The robot keeps a silent page this long (`peer_timeout_ms`, 20 s by
  // default): a link that stays lost longer gets a new connection.
  const HOLD_MS = 20000;
  const RESUME_KEY = 'telepi-resume';
  // Holding this long: the path may be gone for good (a new address, a NAT
  // rebinding; ICE may still say connected): try an ICE restart, again this often.
  const RESTART_AFTER_MS = 1500;
  const RESTART_TIMEOUT_MS = 3000;
  // Nothing at all received (video, RTCP, 5 Hz telemetry) and no new frame
  // for this long: the path is dead, checked this often (see watchStall).
  const STALL_MS = 400;
  const STALL_TICK_MS = 100;
  const PROBE_TIMEOUT_MS = 500;
  const STEPS_KEPT = 32;
  const TOAST_MS = 3000;
  const KEY_TURN = 0.6;
  const JOY_DEADZONE = 0.08;
  const PAD_DEADZONE = 0.15;
  const SERVOS = ['pan', 'tilt'];

  const $ = (id) => document.getElementById(id);
  const video = $('video');
  // The robot's second camera arrives on the second video transceiver; it shows once it has frames.
  const pip = $('pip');
  let pipTransceiver = null;
  // Turns the picture-in-picture's camera off (the robot stops sending it) and on.
  const pipToggle = $('pip-toggle');
  // The robot's cameras in m-line order (a `cameras` message), which of them
  // each picture shows (a swap exchanges them), and those this page turned off.
  const cameras = { names: [], main: 0, pip: 1, off: new Set() };
  // The operator's camera: the third video m-line, sendrecv (the robot's
  // rule: a later video m-line the page sends on). The operator sends on it
  // (replaceTrack, no renegotiation); the robot forwards it to everyone else
  // on theirs, shown as the small "who drives" picture while frames arrive.
  const driver = $('driver');
  const camera = {
    transceiver: null,
    track: null,
    canShare: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
    framesSeen: 0,
    stillTicks: 0,
  };
  const params = new URLSearchParams(location.search);
  const secret = params.get('secret');
  // Through a broker (web/broker.js) the page may not come from the robot:
  // it names one, or shows the fleet to pick from.
  const broker = window.telepiBroker;
  let robotName = broker ? broker.robot : null;
  // The robot's viewer password, as a broker-signalled page must present it itself.
  const credentials = () => ({ password: params.get('token') || undefined, secret: secret || undefined });

  // ---- state --------------------------------------------------------------

  const net = {
    pc: null,
    dc: null,
    driveDc: null,
    state: 'new', // new | connecting | connected | holding | reconnecting | closed
    heldSince: null, // performance.now() when the link was lost, while holding
    heldFrames: 0, // frames decoded then: a new one means the link is back
    peer: null, // the robot's id for this connection, for ICE restarts
    restartAt: 0, // performance.now() of the last ICE restart attempt
    brokerUp: false, // as last seen, for markStep
    restarting: false,
    // For the test hook: counts, and the latest steps of getting the link
    // back with when (performance.now()) they happened (see markStep).
    restarts: { tried: 0, done: 0, last: null, steps: [] },
    retryMs: RETRY_MIN_MS,
    retryTimer: null,
    leaving: false,
  };

  const robot = { rtt: null, heardAt: 0, role: null, peers: [], telemetry: null };

  // The robot's [[controls]] and [[readings]] (web/controls.js).
  const custom = window.telepiControls({
    send,
    toast,
    isTyping,
    isOperator: () => robot.role === 'operator',
  });

  const fps = { frames: 0, at: 0, value: null };

  // From getStats once a second: the path ICE chose and what the browser's
  // jitter buffer adds before a frame is shown (the part of the delay the
  // page can ask to shrink: see jitterBufferTarget below).
  const link = { localType: null, remoteType: null, rttMs: null, playoutMs: null, buffered: null };

  const input = {
    keys: new Set(),
    joystick: null, // {linear, angular} while the knob is held
    joystickPointer: null,
    padStopHeld: false,
    padLatched: false, // after a stop the stick must return to centre before it drives again
    servoPending: new Map(), // name -> value not yet sent
    servoTouchedAt: new Map(), // name -> time the user last moved the slider
  };

  const drive = { seq: 0, active: false, viewerPressSeen: false };

  // The robot's microphone plays through the <video> element (muted until the
  // user asks: browsers only autoplay muted media). Push-to-talk sends this
  // page's microphone to the robot's speaker; getUserMedia needs a secure
  // context (https or localhost), so the button only shows where it can work.
  const audio = {
    transceiver: null,
    mic: null,
    canTalk: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
  };

  // ---- data channel -------------------------------------------------------

  function send(msg) {
    if (!net.dc || net.dc.readyState !== 'open') return false;
    net.dc.send(JSON.stringify(msg));
    return true;
  }

  // Drives are perishable: they go on the unordered channel without
  // retransmissions, stamped with the page's clock so the robot drops late
  // ones, and never queue (one still in the buffer means the link is stuck).
  function sendDrive(linear, angular) {
    const msg = { type: 'drive', linear, angular, seq: ++drive.seq, t: Math.round(performance.now()) };
    const dc = net.driveDc;
    if (!dc || dc.readyState !== 'open') return send(msg);
    if (dc.bufferedAmount > 0) return false;
    dc.send(JSON.stringify(msg));
    return true;
  }

  // The operator role comes with a token that takes it back from a new
  // connection (a reload, a reconnect after a long blip); kept per tab.
  function onRole(msg) {
    robot.role = msg.role;
    try {
      if (msg.resume) sessionStorage.setItem(RESUME_KEY, msg.resume);
      else if (msg.role === 'viewer') sessionStorage.removeItem(RESUME_KEY);
    } catch { /* storage off: no resuming */ }
  }

  function resumeRole() {
    let resume = null;
    try {
      resume = sessionStorage.getItem(RESUME_KEY);
    } catch { /* storage off */ }
    if (resume) send({ type: 'claim', resume, secret: secret || undefined });
  }

  function onMessage(event) {
    robot.heardAt = performance.now();
    // A message is proof the link is back, before ICE says so.
    if (net.heldSince !== null) linkBack();
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'pong': robot.rtt = performance.now() - msg.t; break;
      case 'role': onRole(msg); break;
      case 'presence': robot.peers = msg.peers || []; break;
      case 'telemetry': robot.telemetry = msg; renderTelemetry(); break;
      case 'controls': custom.setControls(msg); break;
      case 'cameras': cameras.names = msg.names || []; renderPip(); break;
      case 'layer': renderLayer(msg); break;
      case 'custom': custom.onCustom(msg); break;
      case 'error': toast(msg.reason); break;
      case 'bye': return onBye(msg);
      default: return;
    }
    renderControl();
  }

  // The robot closes this connection: reconnect (restart) or stay away (ejected).
  function onBye(msg) {
    toast(msg.reason);
    if (msg.reconnect) return scheduleReconnect(msg.reason);
    net.leaving = true;
    closePeer();
    setState('closed', `${msg.reason} — reload the page to reconnect`);
  }

  // ---- connection ---------------------------------------------------------

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

  function attachTrack(event) {
    if (event.transceiver === camera.transceiver) {
      driver.srcObject = new MediaStream([event.track]);
      driver.play().catch(() => {});
      return;
    }
    const target = event.transceiver === pipTransceiver ? pip : video;
    if (!(target.srcObject instanceof MediaStream)) target.srcObject = new MediaStream();
    target.srcObject.addTrack(event.track);
    target.play().catch(() => {}); // autoplay of a muted video is allowed; this only nudges it
  }

  // A robot with one camera never sends on the second m-line: the picture
  // stays hidden, and so does its switch. A camera turned off hides its picture.
  function renderPip() {
    const name = cameras.names[cameras.pip];
    const off = cameras.off.has(cameras.pip);
    pip.hidden = pip.videoWidth === 0 || off;
    pipToggle.hidden = name === undefined || (pip.hidden && !off);
    if (name === undefined) return;
    pipToggle.textContent = off ? `Show ${name}` : `Hide ${name}`;
    pipToggle.title = off ? `Turn camera ${name} back on` : `Turn camera ${name} off: the robot stops sending it (saves bandwidth)`;
    pipToggle.setAttribute('aria-pressed', String(!off));
  }
  pip.addEventListener('resize', renderPip);

  function togglePipCamera() {
    const camera = cameras.pip;
    const on = cameras.off.has(camera);
    if (!send({ type: 'camera', name: cameras.names[camera], on })) return;
    if (on) cameras.off.delete(camera);
    else cameras.off.add(camera);
    renderPip();
  }
  pipToggle.addEventListener('click', togglePipCamera);

  // Swaps the two cameras' video tracks; the main picture keeps the audio.
  function swapCameras() {
    if (!(video.srcObject instanceof MediaStream) || !(pip.srcObject instanceof MediaStream)) return;
    const [main] = video.srcObject.getVideoTracks();
    const [small] = pip.srcObject.getVideoTracks();
    if (!main || !small) return;
    video.srcObject = new MediaStream([small, ...video.srcObject.getAudioTracks()]);
    pip.srcObject = new MediaStream([main]);
    [cameras.main, cameras.pip] = [cameras.pip, cameras.main];
    video.play().catch(() => {});
    pip.play().catch(() => {});
    renderPip();
  }
  pip.addEventListener('click', swapCameras);

  function watchPeer(pc, dc) {
    const current = () => pc === net.pc;
    const addresses = new Set(); // of our candidates so far
    pc.addEventListener('track', (e) => current() && attachTrack(e));
    // The browser found an address it never had while the link is lost (on a
    // secure origin it learns of a new one seconds after the change, per
    // address): restart at once with it rather than at the next probe.
    // mDNS names (plain HTTP) say nothing about addresses.
    pc.addEventListener('icecandidate', (e) => {
      const address = e.candidate && e.candidate.address;
      if (!address || /\.local$/.test(address) || addresses.has(address)) return;
      const first = addresses.size === 0;
      addresses.add(address);
      if (first || !current() || net.heldSince === null || net.restarting) return;
      markStep('new address');
      restartIce().catch((err) => err.final && scheduleReconnect(err.message));
    });
    pc.addEventListener('connectionstatechange', () => {
      if (!current()) return;
      if (pc.connectionState === 'connected') linkBack();
      // A blip: keep the connection, the robot keeps us (and our role).
      if (pc.connectionState === 'disconnected') hold();
      if (pc.connectionState === 'failed') {
        restartIce().catch((err) => current() && scheduleReconnect(`connection failed, ${err.message}`));
      }
      if (pc.connectionState === 'closed') scheduleReconnect('connection closed');
    });
    dc.addEventListener('open', () => {
      if (!current()) return;
      net.retryMs = RETRY_MIN_MS;
      robot.heardAt = performance.now();
      resumeRole();
      sendPing();
      renderControl();
    });
    dc.addEventListener('close', () => current() && scheduleReconnect('data channel closed'));
    dc.addEventListener('message', (e) => current() && onMessage(e));
  }

  // STUN/TURN servers from the robot, with TURN credentials minted for this
  // connection. An older robot without the endpoint: LAN only.
  async function fetchIceServers() {
    if (broker) return (await broker.request(robotName, 'ice-servers', credentials())).iceServers || [];
    const res = await fetch('/api/ice-servers', { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
    if (res.status === 401 || res.status === 403) loggedOut();
    if (!res.ok) return [];
    return (await res.json()).iceServers || [];
  }

  // The session cookie is gone (new password, robot reinstalled): the robot
  // serves the login form in place of the page.
  function loggedOut() {
    net.leaving = true;
    location.reload();
    throw new Error('logged out');
  }

  // Driving wants the newest frame, not the smoothest: ask for the smallest
  // jitter buffer the browser allows (Chromium: jitterBufferTarget; older
  // builds: playoutDelayHint).
  function minimisePlayoutDelay(receiver) {
    if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0;
    else if ('playoutDelayHint' in receiver) receiver.playoutDelayHint = 0;
  }

  async function connect() {
    closePeer();
    if (broker && !robotName) return; // the fleet view picks one first
    setState('connecting');
    let iceServers = [];
    try {
      iceServers = await fetchIceServers();
    } catch (err) {
      if (net.leaving) return;
      // Through a broker nothing works without an answer: try again shortly.
      if (broker) return scheduleReconnect(err.message);
    }
    const pc = new RTCPeerConnection({ iceServers });
    const dc = pc.createDataChannel('default');
    net.pc = pc;
    net.dc = dc;
    net.driveDc = pc.createDataChannel('drive', { ordered: false, maxRetransmits: 0 });
    watchPeer(pc, dc);
    minimisePlayoutDelay(pc.addTransceiver('video', { direction: 'recvonly' }).receiver);
    // Each video m-line gets the robot's next camera.
    pipTransceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    minimisePlayoutDelay(pipTransceiver.receiver);
    camera.transceiver = pc.addTransceiver('video', { direction: 'sendrecv' });
    preferH264(camera.transceiver);
    minimisePlayoutDelay(camera.transceiver.receiver);
    // sendrecv without a track: push-to-talk later swaps a track in, no renegotiation.
    audio.transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
    // Audio and video of one stream are played in sync: the audio buffer must not hold video back.
    minimisePlayoutDelay(audio.transceiver.receiver);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc);
      const answer = await postOffer(pc.localDescription.sdp);
      if (pc !== net.pc) return;
      net.peer = answer.peer ?? null;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } catch (err) {
      if (pc === net.pc) scheduleReconnect(err.message);
    }
  }

  async function postOffer(sdp) {
    if (broker) {
      const reply = await broker.request(robotName, 'offer', { sdp, ...credentials() });
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

  // A new offer with new ICE credentials for the same session: the robot
  // keeps the peer, its role and its recording. It proves the session is ours
  // with the ICE ufrag of our current offer. Throws when the robot refuses
  // (the session ended: connect anew) or can't be reached.
  async function restartIce() {
    const { pc } = net;
    if (!pc || net.restarting) return;
    if (net.peer === null) throw new Error('no ICE restart here');
    net.restarting = true;
    net.restartAt = performance.now();
    net.restarts.tried += 1;
    try {
      const ufrag = (/^a=ice-ufrag:(.*)$/m.exec(pc.localDescription.sdp) || [])[1];
      pc.restartIce();
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      markStep('offered');
      // Without STUN or TURN servers the robot learns our new address from
      // our checks (peer-reflexive; on plain HTTP our host candidates are
      // mDNS names it can't resolve anyway): waiting for host candidates only
      // delays the offer.
      if (iceServerUrls(pc).length > 0) {
        await waitForIceGathering(pc);
        markStep('gathered');
      }
      const answer = await postRestart({ peer: net.peer, ufrag: ufrag && ufrag.trim(), sdp: pc.localDescription.sdp });
      if (pc === net.pc) await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      markStep('answered');
      net.restarts.done += 1;
    } catch (err) {
      net.restarts.last = err.message;
      markStep('failed');
      // Back to the last agreed description, so a later attempt can offer again.
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      throw err;
    } finally {
      net.restarting = false;
    }
  }

  // Stamps a step of getting the link back (stalled, probed, offered,
  // gathered, answered, failed, broker up / down) for the test hook, the
  // latest STEPS_KEPT: the roaming tests print where the time went.
  function markStep(step) {
    const { steps } = net.restarts;
    steps.push([step, performance.now()]);
    if (steps.length > STEPS_KEPT) steps.shift();
  }

  // Sends a restart offer the way the first offer went: to the robot, or
  // through the broker. A refusal that a retry can't mend (the session
  // ended, a bad offer) is `final`: connect anew.
  async function postRestart(restart) {
    if (broker) {
      const reply = await broker.request(robotName, 'restart', { ...restart, ...credentials() }).catch((err) => {
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

  function closePeer() {
    const { pc } = net;
    net.pc = null;
    audio.transceiver = null;
    stopSharing();
    camera.transceiver = null;
    net.dc = null;
    net.driveDc = null;
    net.heldSince = null;
    net.peer = null;
    drive.active = false;
    robot.rtt = null;
    Object.keys(link).forEach((k) => { link[k] = null; });
    robot.role = null;
    robot.peers = [];
    if (pc) pc.close();
    for (const element of [video, pip, driver]) {
      if (element.srcObject) {
        element.srcObject.getTracks().forEach((t) => t.stop());
        element.srcObject = null;
      }
    }
    Object.assign(cameras, { names: [], main: 0, pip: 1 });
    cameras.off.clear();
    renderPip();
    driver.hidden = true;
    renderControl();
  }

  function scheduleReconnect(reason) {
    if (net.retryTimer || net.leaving) return;
    closePeer();
    const delay = net.retryMs;
    net.retryMs = Math.min(net.retryMs * 2, RETRY_MAX_MS);
    setState('reconnecting', `${reason} — retry in ${(delay / 1000).toFixed(1)} s`);
    net.retryTimer = setTimeout(() => {
      net.retryTimer = null;
      connect();
    }, delay);
  }

  function leave() {
    net.leaving = true;
    clearTimeout(net.retryTimer);
    net.retryTimer = null;
    if (drive.active) send({ type: 'stop' });
    closePeer();
    setState('closed');
  }

  function resume(event) {
    if (!event.persisted) return; // a fresh load connects from start()
    net.leaving = false;
    net.retryMs = RETRY_MIN_MS;
    connect();
  }

  function setState(state, detail) {
    net.state = state;
    $('status-dot').dataset.state = state;
    $('status').textContent = detail ? `${state}: ${detail}` : state;
    document.body.dataset.link = state;
  }

  // The link is lost: the motors have stopped (the robot's deadman), the
  // controls are greyed and send nothing, and the connection is kept for when
  // it comes back; then what is held at that moment drives again.
  function hold() {
    if (net.heldSince !== null || !net.pc) return;
    net.heldSince = performance.now();
    net.heldFrames = framesDecoded();
    drive.active = false;
    renderHold();
  }

  function renderHold() {
    const s = ((performance.now() - net.heldSince) / 1000).toFixed(0);
    setState('holding', `link lost — holding (${s} s)`);
  }

  // Video or a message got through: the link is back. (Messages may lag: the
  // robot's reliable channel resends what it queued in the outage first.)
  function linkBack() {
    robot.heardAt = performance.now();
    net.heldSince = null;
    setState('connected');
  }

  // ---- teleop input -------------------------------------------------------

  const clamp = (v) => Math.max(-1, Math.min(1, v));
  const round3 = (v) => Math.round(v * 1000) / 1000;

  const KEY_AXES = {
    KeyW: [1, 0], ArrowUp: [1, 0],
    KeyS: [-1, 0], ArrowDown: [-1, 0],
    KeyA: [0, KEY_TURN], ArrowLeft: [0, KEY_TURN],
    KeyD: [0, -KEY_TURN], ArrowRight: [0, -KEY_TURN],
  };

  function keyboardCommand() {
    if (input.keys.size === 0) return null;
    let linear = 0;
    let angular = 0;
    for (const code of input.keys) {
      linear += KEY_AXES[code][0];
      angular += KEY_AXES[code][1];
    }
    return { linear: clamp(linear), angular: clamp(angular) };
  }

  function gamepadCommand() {
    const pad = [...(navigator.getGamepads ? navigator.getGamepads() : [])].find((p) => p && p.connected);
    if (!pad) return null;
    const stopPressed = Boolean(pad.buttons[0] && pad.buttons[0].pressed);
    if (stopPressed && !input.padStopHeld) emergencyStop();
    input.padStopHeld = stopPressed;
    if (stopPressed) return null;
    const [x = 0, y = 0] = pad.axes;
    if (Math.hypot(x, y) < PAD_DEADZONE) {
      input.padLatched = false;
      return null;
    }
    if (input.padLatched) return null;
    return { linear: clamp(-y), angular: clamp(-x) };
  }

  // The joystick wins over the gamepad, which wins over the keyboard.
  function currentCommand() {
    return input.joystick || gamepadCommand() || keyboardCommand();
  }

  // A viewer that grabs a control claims the robot if nobody operates it; the
  // drive starts once the robot answers with the operator role.
  function mayDrive() {
    if (robot.role !== 'viewer') return true;
    if (!drive.viewerPressSeen) {
      if (robot.peers.some((p) => p.role === 'operator')) toast('Someone else is driving — viewing only');
      else claim();
    }
    drive.viewerPressSeen = true;
    return false;
  }

  function claim() {
    send(secret ? { type: 'claim', secret } : { type: 'claim' });
  }

  function driveTick() {
    if (document.hidden) return;
    if (net.heldSince !== null && framesDecoded() > net.heldFrames) linkBack();
    flushServos();
    custom.flush();
    const cmd = currentCommand();
    if (!cmd) {
      drive.viewerPressSeen = false;
      if (drive.active) releaseDrive();
      return;
    }
    if (!mayDrive()) return;
    if (net.heldSince !== null) return;
    if (sendDrive(round3(cmd.linear), round3(cmd.angular))) drive.active = true;
  }

  function releaseDrive() {
    drive.active = false;
    sendDrive(0, 0);
    send({ type: 'stop' });
  }

  function emergencyStop() {
    clearInputs();
    drive.active = false;
    send({ type: 'stop' });
  }

  // Everything held is let go; each control must be pressed again to drive.
  function clearInputs() {
    input.keys.clear();
    input.padLatched = true;
    if (input.joystickPointer !== null && joystick.hasPointerCapture(input.joystickPointer)) {
      joystick.releasePointerCapture(input.joystickPointer);
    }
    input.joystickPointer = null;
    setJoystick(null);
  }

  function onVisibilityChange() {
    if (!document.hidden) {
      robot.heardAt = performance.now(); // fresh grace period for the silence check
      return;
    }
    clearInputs();
    drive.active = false;
    if (robot.role !== 'viewer') send({ type: 'stop' });
  }

  function isTyping(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
  }

  function onKeyDown(e) {
    if (e.code === 'Space' && !isTyping(e.target)) {
      e.preventDefault();
      emergencyStop();
      return;
    }
    if (custom.onKey(e, true)) return;
    if (!(e.code in KEY_AXES) || isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    e.preventDefault();
    if (e.repeat || input.keys.has(e.code)) return;
    input.keys.add(e.code);
    driveTick();
  }

  function onKeyUp(e) {
    if (custom.onKey(e, false)) return;
    if (!input.keys.delete(e.code)) return;
    driveTick();
  }

  // ---- on-screen joystick -------------------------------------------------

  const joystick = $('joystick');
  const knob = $('knob');

  function setJoystick(cmd, dx = 0, dy = 0) {
    input.joystick = cmd;
    knob.style.transform = `translate(${dx}px, ${dy}px)`;
    joystick.classList.toggle('active', cmd !== null);
  }

  function joystickMove(e) {
    if (e.pointerId !== input.joystickPointer) return;
    const rect = joystick.getBoundingClientRect();
    const radius = rect.width / 2;
    let x = (e.clientX - rect.left - radius) / radius;
    let y = (e.clientY - rect.top - radius) / radius;
    const len = Math.hypot(x, y);
    if (len > 1) {
      x /= len;
      y /= len;
    }
    const cmd = Math.hypot(x, y) < JOY_DEADZONE ? { linear: 0, angular: 0 } : { linear: -y, angular: -x };
    setJoystick(cmd, x * radius, y * radius);
  }

  function joystickDown(e) {
    if (input.joystickPointer !== null) return;
    e.preventDefault();
    input.joystickPointer = e.pointerId;
    joystick.setPointerCapture(e.pointerId);
    joystickMove(e);
    driveTick();
  }

  function joystickUp(e) {
    if (e.pointerId !== input.joystickPointer) return;
    input.joystickPointer = null;
    setJoystick(null);
    driveTick();
  }

  // ---- servos -------------------------------------------------------------

  function onServoInput(e) {
    const name = e.target.dataset.servo;
    const value = Number(e.target.value);
    input.servoPending.set(name, value);
    input.servoTouchedAt.set(name, performance.now());
    e.target.nextElementSibling.value = value.toFixed(2);
  }

  function flushServos() {
    for (const [name, value] of input.servoPending) {
      if (robot.role !== 'viewer') send({ type: 'servo', name, value });
    }
    input.servoPending.clear();
  }

  // ---- rendering ----------------------------------------------------------

  let toastTimer = null;
  function toast(text) {
    const el = $('toast');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
  }

  function renderMotor(side, value) {
    const v = clamp(Number(value) || 0);
    const fill = $(`motor-${side}`);
    fill.style.left = `${50 + Math.min(v, 0) * 50}%`;
    fill.style.width = `${Math.abs(v) * 50}%`;
    fill.classList.toggle('reverse', v < 0);
    $(`motor-${side}-value`).value = v.toFixed(2);
  }

  function renderServo(name, value) {
    const row = $(`servo-${name}`);
    row.hidden = typeof value !== 'number';
    if (row.hidden) return;
    const slider = row.querySelector('input');
    const touched = input.servoTouchedAt.get(name) || -Infinity;
    if (document.activeElement === slider || performance.now() - touched < 1000) return;
    slider.value = value;
    row.querySelector('output').value = value.toFixed(2);
  }

  function formatUptime(s) {
    if (s < 60) return `${Math.floor(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  // The motor controller's link (serial cable, I2C bus): said once when it
  // changes, and the motor readouts dimmed while it is lost.
  let driveLink = null;
  function renderDriveLink(state) {
    if (state === driveLink) return;
    if (state === 'lost') toast('Motor controller not answering: its own watchdog stops the motors');
    else if (state === 'ok' && driveLink === 'lost') toast('Motor controller answers again');
    driveLink = state;
    $('readouts').dataset.link = state || 'none';
  }

  // The big picture's (first camera's) layer: "low (slow link)", "low → main".
  const LAYER_WHY = { slow_link: 'slow link', starting: 'starting', no_estimate: 'no estimate' };
  function renderLayer(msg) {
    if (msg.camera !== 0) return;
    const why = LAYER_WHY[msg.why];
    let text = msg.switching_to ? `${msg.layer} → ${msg.switching_to}` : msg.layer;
    if (why && !msg.switching_to) text += ` (${why})`;
    $('layer').textContent = text;
    $('layer').title = msg.why;
  }

  function renderTelemetry() {
    const t = robot.telemetry;
    renderDriveLink(t.drive_link || null);
    const motors = t.motors || {};
    renderMotor('left', motors.left);
    renderMotor('right', motors.right);
    for (const name of SERVOS) renderServo(name, (t.servos || {})[name]);
    $('rec').hidden = !t.recording;
    $('temp').textContent = typeof t.cpu_temp_c === 'number' ? `${t.cpu_temp_c.toFixed(0)} °C` : '–';
    custom.renderTelemetry(t);
    $('uptime').textContent = typeof t.uptime_s === 'number' ? formatUptime(t.uptime_s) : '–';
  }

  function renderControl() {
    const open = Boolean(net.dc && net.dc.readyState === 'open');
    const role = $('role');
    role.textContent = robot.role || (open ? 'connected' : '—');
    role.dataset.role = robot.role || 'none';
    $('claim').hidden = !open || robot.role === 'operator';
    $('release').hidden = !open || robot.role !== 'operator';
    $('talk').hidden = !audio.canTalk || !open || robot.role !== 'operator';
    $('share-camera').hidden = !camera.canShare || !open || robot.role !== 'operator';
    // Only the operator's camera is used: a viewer's would be dropped by the robot.
    if (robot.role !== 'operator' && camera.track) stopSharing();
    const recording = Boolean(robot.telemetry && robot.telemetry.recording);
    $('record').hidden = !open || robot.role !== 'operator';
    $('record').textContent = recording ? 'Stop recording' : 'Record';
    $('record').setAttribute('aria-pressed', String(recording));
    // Recordings are files on the robot's own HTTP server: not through a broker.
    $('recordings-toggle').hidden = Boolean(broker) || robot.role !== 'operator';
    if (robot.role !== 'operator') $('recordings').hidden = true;
    custom.renderStates();

    const operator = robot.telemetry ? robot.telemetry.operator : null;
    const items = robot.peers.map((p) => {
      const li = document.createElement('li');
      li.textContent = `#${p.id} ${p.role}`;
      li.classList.toggle('operator', p.id === operator || p.role === 'operator');
      return li;
    });
    $('presence').replaceChildren(...items);
  }

  function framesDecoded() {
    return video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
  }

  function updateFps() {
    const now = performance.now();
    const frames = framesDecoded();
    if (fps.at && frames >= fps.frames) fps.value = ((frames - fps.frames) * 1000) / (now - fps.at);
    fps.frames = frames;
    fps.at = now;
  }

  async function updateLink() {
    const { pc } = net;
    if (!pc || pc.connectionState !== 'connected') return;
    const stats = await pc.getStats();
    let pair = null;
    let inbound = null;
    // Two video m-lines (the second camera): measure the one on the big picture.
    const [shown] = video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks() : [];
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.trackIdentifier === shown?.id) inbound = s;
    });
    if (pair) {
      link.localType = stats.get(pair.localCandidateId)?.candidateType ?? null;
      link.remoteType = stats.get(pair.remoteCandidateId)?.candidateType ?? null;
      link.rttMs = pair.currentRoundTripTime === undefined ? null : pair.currentRoundTripTime * 1000;
    }
    if (inbound && inbound.jitterBufferEmittedCount) {
      // Over the last second, not since the start: the buffer shrinks as it settles.
      const { jitterBufferDelay: delay, jitterBufferEmittedCount: count } = inbound;
      const prev = link.buffered;
      if (prev && count > prev.count) link.playoutMs = ((delay - prev.delay) / (count - prev.count)) * 1000;
      link.buffered = { delay, count };
    }
  }

  function renderHud() {
    $('rtt').textContent = robot.rtt === null ? '–' : `${robot.rtt.toFixed(0)} ms`;
    $('delay').textContent = link.playoutMs === null ? '–' : `${link.playoutMs.toFixed(0)} ms`;
    const path = link.localType === 'relay' || link.remoteType === 'relay' ? 'relay' : 'direct';
    $('path').textContent = link.localType === null ? '–' : path;
    $('fps').textContent = fps.value === null || !video.srcObject ? '–' : fps.value.toFixed(0);
    $('size').textContent = video.videoWidth ? `${video.videoWidth}×${video.videoHeight}` : '–';
  }

  function sendPing() {
    send({ type: 'ping', t: performance.now() });
  }

  // Telemetry comes 5 times a second: silence means the link is lost before
  // ICE says so. Hold on through a blip; a link lost for longer than the
  // robot keeps us gets a new connection. Hidden tabs have throttled
  // timers, so silence there proves nothing.
  function checkSilence() {
    const open = net.dc && net.dc.readyState === 'open';
    const silent = performance.now() - robot.heardAt > SILENCE_MS;
    if (open && !document.hidden && silent) hold();
    if (net.heldSince === null) return;
    // Heard since the hold began (watchStall may hold before telemetry lapses).
    if (robot.heardAt > net.heldSince) return linkBack();
    if (performance.now() - net.heldSince > HOLD_MS) return scheduleReconnect('link lost for too long');
    const now = performance.now();
    const silentFor = now - robot.heardAt;
    if (silentFor > SILENCE_MS + RESTART_AFTER_MS && now - net.restartAt > RESTART_AFTER_MS) {
      // Unreachable robot: keep holding; a refusal (session gone): start over.
      restartIce().catch((err) => err.final && scheduleReconnect(err.message));
    }
    renderHold();
  }

  // What getStats said last: the transports' bytes received, the frames
  // decoded and since when neither moved.
  const stall = { bytes: -1, frames: -1, since: 0, busy: false };

  // A dead media path is noticed within STALL_MS, not after SILENCE_MS on a
  // 1 s tick: the page holds at once. When the robot still answers over HTTP
  // meanwhile, only the media path is gone (our address changed, a NAT
  // rebinding): restart ICE at once. In a plain outage the probe gets no
  // answer and the page just holds, as before, until the link is back.
  async function watchStall() {
    const { pc } = net;
    const open = net.dc && net.dc.readyState === 'open';
    if (!pc || !open || document.hidden || stall.busy) {
      stall.since = 0;
      return;
    }
    stall.busy = true;
    try {
      let bytes = 0;
      (await pc.getStats()).forEach((r) => { if (r.type === 'transport') bytes += r.bytesReceived || 0; });
      const frames = framesDecoded();
      const now = performance.now();
      if (pc !== net.pc) return;
      if (bytes !== stall.bytes || frames !== stall.frames || !stall.since) {
        Object.assign(stall, { bytes, frames, since: now });
        return;
      }
      if (now - stall.since < STALL_MS) return;
      hold();
      // One probe per RESTART_AFTER_MS within a hold; a new hold probes at
      // once (a lull in a slow stream may have probed just before).
      const probedInHold = net.restartAt >= net.heldSince;
      if (net.restarting || (probedInHold && now - net.restartAt < RESTART_AFTER_MS)) return;
      net.restartAt = performance.now(); // not before heldSince
      markStep('stalled');
      const answers = await signalingAnswers();
      markStep(answers ? 'probed' : 'probed: no answer');
      if (!answers || pc !== net.pc || net.heldSince === null) return;
      await restartIce().catch((err) => err.final && scheduleReconnect(err.message));
    } finally {
      stall.busy = false;
    }
  }

  // Whether a restart offer could get through now: the robot answers over
  // HTTP within PROBE_TIMEOUT_MS, or the broker answers a round trip in that
  // time (or a new connection to it is made at once: the old one may have
  // died with our address).
  async function signalingAnswers() {
    if (broker) return broker.reachable(PROBE_TIMEOUT_MS);
    try {
      const res = await fetch('/api/status', { cache: 'no-store', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      return res.ok;
    } catch {
      return false;
    }
  }

  function slowTick() {
    checkSilence();
    sendPing();
    updateFps();
    updateDriver();
    updateLink().catch(() => {}).finally(renderHud);
  }

  // ---- audio --------------------------------------------------------------

  function toggleSound() {
    video.muted = !video.muted;
    const button = $('sound');
    button.textContent = video.muted ? 'Sound off' : 'Sound on';
    button.setAttribute('aria-pressed', String(!video.muted));
  }

  async function startTalking() {
    const { transceiver } = audio;
    if (!transceiver) return;
    try {
      if (!audio.mic) [audio.mic] = (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks();
      await transceiver.sender.replaceTrack(audio.mic);
      $('talk').classList.add('active');
    } catch (err) {
      toast(`microphone: ${err.message}`);
    }
  }

  function stopTalking() {
    $('talk').classList.remove('active');
    if (audio.transceiver) audio.transceiver.sender.replaceTrack(null).catch(() => {});
  }

  // ---- the operator's camera --------------------------------------------------

  // The robot takes H.264 only on this m-line (it records and forwards what
  // it gets without re-encoding): offer nothing else, Constrained Baseline first.
  function preferH264(transceiver) {
    if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
    const codecs = (RTCRtpReceiver.getCapabilities('video') || { codecs: [] }).codecs;
    const rank = (c) => (/packetization-mode=1/.test(c.sdpFmtpLine || '') ? 0 : 2)
      + (/profile-level-id=42e0/.test(c.sdpFmtpLine || '') ? 0 : 1);
    const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264').sort((a, b) => rank(a) - rank(b));
    if (h264.length) transceiver.setCodecPreferences(h264);
  }

  async function toggleSharing() {
    if (camera.track) return stopSharing();
    const { transceiver } = camera;
    if (!transceiver) return;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 } });
      const [track] = stream.getVideoTracks();
      if (camera.transceiver !== transceiver || robot.role !== 'operator') {
        track.stop();
        return;
      }
      await transceiver.sender.replaceTrack(track);
      camera.track = track;
      renderSharing();
    } catch (err) {
      toast(`camera: ${err.message}`);
    }
  }

  function stopSharing() {
    if (!camera.track) return;
    camera.track.stop();
    camera.track = null;
    if (camera.transceiver) camera.transceiver.sender.replaceTrack(null).catch(() => {});
    renderSharing();
  }

  function renderSharing() {
    const button = $('share-camera');
    button.textContent = camera.track ? 'Stop sharing' : 'Share my camera';
    button.setAttribute('aria-pressed', String(Boolean(camera.track)));
  }

  function driverFrames() {
    return driver.getVideoPlaybackQuality ? driver.getVideoPlaybackQuality().totalVideoFrames : 0;
  }

  // Shown while the operator's frames arrive; two quiet seconds hide it
  // (the operator stopped sharing, or left).
  function updateDriver() {
    const frames = driverFrames();
    camera.stillTicks = frames > camera.framesSeen ? 0 : camera.stillTicks + 1;
    camera.framesSeen = frames;
    driver.hidden = !driver.srcObject || driver.videoWidth === 0 || camera.stillTicks >= 2;
  }

  // ---- recordings ------------------------------------------------------------

  function toggleRecording() {
    const recording = Boolean(robot.telemetry && robot.telemetry.recording);
    send({ type: 'record', on: !recording });
  }

  // The operator secret, when the page has one, goes with every request for them.
  function withSecret(url) {
    return secret ? `${url}?secret=${encodeURIComponent(secret)}` : url;
  }

  async function toggleRecordings() {
    const panel = $('recordings');
    panel.hidden = !panel.hidden;
    $('recordings-toggle').setAttribute('aria-expanded', String(!panel.hidden));
    if (panel.hidden) return;
    $('recordings-state').textContent = 'loading…';
    try {
      const res = await fetch(withSecret('/api/recordings'), { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
      const body = await res.json();
      if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
      renderRecordings(body);
    } catch (e) {
      $('recordings-state').textContent = `cannot list recordings: ${e.message}`;
    }
  }

  function renderRecordings(body) {
    const files = body.files.slice().reverse(); // newest first
    const total = files.reduce((sum, f) => sum + f.bytes, 0);
    $('recordings-state').textContent = files.length
      ? `${files.length} file${files.length === 1 ? '' : 's'}, ${formatMegabytes(total)}${body.recording.file ? ` · writing ${body.recording.file}` : ''}`
      : 'no recordings yet';
    $('recordings-list').replaceChildren(...files.map((f) => {
      const item = document.createElement('li');
      const a = document.createElement('a');
      a.href = withSecret(f.url);
      a.download = f.name;
      a.textContent = f.name;
      const size = document.createElement('span');
      size.textContent = formatMegabytes(f.bytes);
      item.append(a, size);
      return item;
    }));
  }

  function formatMegabytes(bytes) {
    return `${(bytes / 1e6).toFixed(1)} MB`;
  }

  // ---- fleet (broker mode) -------------------------------------------------

  function renderFleet() {
    const list = $('fleet-list');
    $('fleet').hidden = !broker || Boolean(robotName);
    if (!broker) return;
    const state = broker.connected() ? 'connected' : `not connected${broker.error() ? `: ${broker.error()}` : ''}`;
    $('fleet-state').textContent = `broker ${state}`;
    const robots = broker.fleet().sort((a, b) => a.name.localeCompare(b.name));
    list.replaceChildren(...robots.map((r) => {
      const item = document.createElement('li');
      item.dataset.robot = r.name;
      item.dataset.online = String(Boolean(r.online));
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = r.name;
      button.disabled = !r.online;
      button.addEventListener('click', () => chooseRobot(r.name));
      const detail = document.createElement('span');
      detail.textContent = r.online
        ? `online · ${r.viewers ?? 0} connected${r.operator ? ' · being driven' : ''}`
        : 'offline';
      item.append(button, detail);
      return item;
    }));
    if (!robots.length) list.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'no robots yet' }));
  }

  function chooseRobot(name) {
    robotName = name;
    params.set('robot', name);
    history.replaceState(null, '', `${location.pathname}?${params}`);
    renderFleet();
    connect();
  }

  // ---- wiring -------------------------------------------------------------

  function bindUi() {
    $('stop').addEventListener('click', emergencyStop);
    $('claim').addEventListener('click', claim);
    $('release').addEventListener('click', () => send({ type: 'release' }));
    $('sound').addEventListener('click', toggleSound);
    $('record').addEventListener('click', toggleRecording);
    $('recordings-toggle').addEventListener('click', toggleRecordings);
    $('share-camera').addEventListener('click', toggleSharing);
    $('talk').addEventListener('pointerdown', startTalking);
    for (const end of ['pointerup', 'pointerleave', 'pointercancel']) $('talk').addEventListener(end, stopTalking);
    for (const slider of document.querySelectorAll('input[data-servo]')) {
      slider.addEventListener('input', onServoInput);
    }
    joystick.addEventListener('pointerdown', joystickDown);
    joystick.addEventListener('pointermove', joystickMove);
    joystick.addEventListener('pointerup', joystickUp);
    joystick.addEventListener('pointercancel', joystickUp);
    window.addEventListener('keydown', onKeyDown);
    window.addEventListener('keyup', onKeyUp);
    window.addEventListener('blur', () => { input.keys.clear(); driveTick(); });
    document.addEventListener('visibilitychange', onVisibilityChange);
    window.addEventListener('pagehide', leave);
    window.addEventListener('beforeunload', leave);
    window.addEventListener('pageshow', resume);
  }

  // Test hook for the browser test (tests/browser/).
  window.telepi = {
    state: () => net.state,
    // Messages sent per data channel label (the browser's own count).
    channelMessages: async () => {
      const sent = {};
      if (!net.pc) return sent;
      (await net.pc.getStats()).forEach((r) => {
        if (r.type === 'data-channel') sent[r.label] = (sent[r.label] || 0) + r.messagesSent;
      });
      return sent;
    },
    stats: () => ({
      state: net.state,
      connection: net.pc ? net.pc.connectionState : 'closed',
      dataChannel: net.dc ? net.dc.readyState : 'closed',
      driveChannel: net.driveDc ? net.driveDc.readyState : 'closed',
      holding: net.heldSince !== null,
      restarts: net.restarts,
      rtt: robot.rtt,
      role: robot.role,
      peers: robot.peers,
      telemetry: robot.telemetry,
      framesDecoded: framesDecoded(),
      path: { local: link.localType, remote: link.remoteType, rttMs: link.rttMs },
      playoutDelayMs: link.playoutMs,
      robot: robotName,
      controls: custom.controls(),
      customs: custom.received(),
      fleet: broker ? broker.fleet() : null,
      fps: fps.value,
      videoWidth: video.videoWidth,
      videoHeight: video.videoHeight,
      sharingCamera: Boolean(camera.track),
      driver: { hidden: driver.hidden, frames: driverFrames(), width: driver.videoWidth, height: driver.videoHeight },
    }),
  };

  // Links that heal: when the robot (re)publishes its presence while this page
  // waits to retry (its link or ours was down), retry now instead of at the
  // end of the back-off.
  function onBrokerChange() {
    renderFleet();
    const up = broker.connected();
    if (up !== net.brokerUp) markStep(up ? 'broker up' : 'broker down');
    net.brokerUp = up;
    const back = broker.fleet().some((r) => r.name === robotName && r.online);
    if (back && net.retryTimer && !net.leaving) {
      clearTimeout(net.retryTimer);
      net.retryTimer = null;
      connect();
    }
  }

  bindUi();
  if (broker) broker.onChange(onBrokerChange);
  renderFleet();
  setInterval(driveTick, DRIVE_INTERVAL_MS);
  setInterval(slowTick, SLOW_INTERVAL_MS);
  setInterval(watchStall, STALL_TICK_MS);
  connect();
})();
