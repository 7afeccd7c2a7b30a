// telepi page: the heads-up display, for app.js: toasts, the motor and servo
// readouts from the robot's telemetry, the layer the big picture gets, and
// the link figures (round trip, playout delay, path, fps, size) read from
// getStats once a second. Plain script, no build step.
'use strict';

window.telepiHud = ({ $, video, robot, servoTouchedAt, renderCustom }) => {
  const TOAST_MS = 3000;
  const SERVOS = ['pan', 'tilt'];
  const clamp = (v) => Math.max(-1, Math.min(1, v));

  const fps = { frames: 0, at: 0, value: null };

  // From getStats once a second: the path ICE chose and what the browser's
  // jitter buffer adds before a frame is shown (the part of the delay the
  // page can ask to shrink: see minimisePlayoutDelay in app.js).
  const link = { localType: null, remoteType: null, rttMs: null, playoutMs: null, buffered: null };

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
    const touched = servoTouchedAt.get(name) || -Infinity;
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
    renderCustom(t);
    $('uptime').textContent = typeof t.uptime_s === 'number' ? formatUptime(t.uptime_s) : '–';
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

  async function updateLink(pc) {
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

  // A new connection: nothing known about its path yet.
  function forgetLink() {
    Object.keys(link).forEach((k) => { link[k] = null; });
  }

  return { toast, renderTelemetry, renderLayer, framesDecoded, updateFps, updateLink, renderHud, forgetLink, link, fps };
};
