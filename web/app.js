// telepi page: WebRTC video from the robot plus teleop over the "default" data channel
// (drives over the lossy "drive" one).
// Plain script, no build step. Protocol: JSON text messages tagged by "type".
'use strict';

(() => {
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 5000;
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
  // Nothing at all received (video, RTCP, 5 Hz telemetry) and no new frame
  // for this long: the path is dead, checked this often (see watchStall).
  const STALL_MS = 400;
  const STALL_TICK_MS = 100;
  const STEPS_KEPT = 32;

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
  // The operator's camera, from the robot (web/media.js).
  const driver = $('driver');
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

  const isOperator = () => robot.role === 'operator';
  // What the user holds (web/input.js), the display (web/hud.js), the
  // robot's [[controls]] and [[readings]] (web/controls.js), this page's own
  // media (web/media.js), recordings (web/recordings.js), signaling
  // (web/signal.js) and the fleet view (web/fleet.js).
  const inputs = window.telepiInput({
    $, onCustomKey: (e, down) => custom.onKey(e, down), onChange: driveTick, onStop: emergencyStop,
  });
  const hud = window.telepiHud({
    $, video, robot, servoTouchedAt: inputs.servoTouchedAt, renderCustom: (t) => custom.renderTelemetry(t),
  });
  const { toast, framesDecoded } = hud;
  const custom = window.telepiControls({ send, toast, isTyping: inputs.isTyping, isOperator });
  const media = window.telepiMedia({ $, video, driver, toast, isOperator });
  const { audio, camera, preferH264, stopSharing } = media;
  const recordings = window.telepiRecordings({
    $, send, secret, isRecording: () => Boolean(robot.telemetry && robot.telemetry.recording),
  });
  const signal = window.telepiSignal({ broker, robotName: () => robotName, credentials, secret, loggedOut });
  const { waitForIceGathering, iceServerUrls, fetchIceServers, postOffer, postRestart } = signal;
  const fleet = window.telepiFleet({ $, broker, chosen: () => robotName, choose: chooseRobot });

  const drive = { seq: 0, active: false, viewerPressSeen: false };

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
      case 'telemetry': robot.telemetry = msg; hud.renderTelemetry(); break;
      case 'controls': custom.setControls(msg); break;
      case 'cameras': cameras.names = msg.names || []; renderPip(); break;
      case 'layer': hud.renderLayer(msg); break;
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
    hud.forgetLink();
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

  const round3 = (v) => Math.round(v * 1000) / 1000;

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
    const cmd = inputs.command();
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
    inputs.clear();
    drive.active = false;
    send({ type: 'stop' });
  }

  function onVisibilityChange() {
    if (!document.hidden) {
      robot.heardAt = performance.now(); // fresh grace period for the silence check
      return;
    }
    inputs.clear();
    drive.active = false;
    if (robot.role !== 'viewer') send({ type: 'stop' });
  }

  // Servo slider moves go out with the drive tick, the operator's only.
  function flushServos() {
    for (const [name, value] of inputs.takeServos()) {
      if (robot.role !== 'viewer') send({ type: 'servo', name, value });
    }
  }

  // ---- rendering ----------------------------------------------------------

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
      const answers = await signal.reachable();
      markStep(answers ? 'probed' : 'probed: no answer');
      if (!answers || pc !== net.pc || net.heldSince === null) return;
      await restartIce().catch((err) => err.final && scheduleReconnect(err.message));
    } finally {
      stall.busy = false;
    }
  }

  function slowTick() {
    checkSilence();
    sendPing();
    hud.updateFps();
    media.updateDriver();
    hud.updateLink(net.pc).catch(() => {}).finally(hud.renderHud);
  }

  // ---- fleet (broker mode) -------------------------------------------------

  function chooseRobot(name) {
    robotName = name;
    params.set('robot', name);
    history.replaceState(null, '', `${location.pathname}?${params}`);
    fleet.render();
    connect();
  }

  // ---- wiring -------------------------------------------------------------

  function bindUi() {
    $('stop').addEventListener('click', emergencyStop);
    $('claim').addEventListener('click', claim);
    $('release').addEventListener('click', () => send({ type: 'release' }));
    inputs.bind();
    media.bind();
    recordings.bind();
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
      path: { local: hud.link.localType, remote: hud.link.remoteType, rttMs: hud.link.rttMs },
      playoutDelayMs: hud.link.playoutMs,
      robot: robotName,
      controls: custom.controls(),
      customs: custom.received(),
      fleet: broker ? broker.fleet() : null,
      fps: hud.fps.value,
      videoWidth: video.videoWidth,
      videoHeight: video.videoHeight,
      sharingCamera: Boolean(camera.track),
      driver: { hidden: driver.hidden, frames: media.driverFrames(), width: driver.videoWidth, height: driver.videoHeight },
    }),
  };

  // Links that heal: when the robot (re)publishes its presence while this page
  // waits to retry (its link or ours was down), retry now instead of at the
  // end of the back-off.
  function onBrokerChange() {
    fleet.render();
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
  fleet.render();
  setInterval(driveTick, DRIVE_INTERVAL_MS);
  setInterval(slowTick, SLOW_INTERVAL_MS);
  setInterval(watchStall, STALL_TICK_MS);
  connect();
})();
