// telepi page: this page's own media, for app.js: the robot's sound (on or
// off), push-to-talk to the robot's speaker, and the operator's camera sent
// to the robot and shown to everyone else as the small "who drives" picture.
// app.js makes the transceivers (`audio.transceiver`, `camera.transceiver`)
// with each connection. Plain script, no build step.
'use strict';

window.telepiMedia = ({ $, video, driver, toast, isOperator }) => {
  // The robot's microphone plays through the <video> element (muted until the
  // user asks: browsers only autoplay muted media). Push-to-talk sends this
  // page's microphone to the robot's speaker; getUserMedia needs a secure
  // context (https or localhost), so the button only shows where it can work.
  const audio = {
    transceiver: null,
    mic: null,
    canTalk: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
  };

  // The operator's camera: the third video m-line, sendrecv (the robot's
  // rule: a later video m-line the page sends on). The operator sends on it
  // (replaceTrack, no renegotiation); the robot forwards it to everyone else
  // on theirs, shown as the small "who drives" picture while frames arrive.
  const camera = {
    transceiver: null,
    track: null,
    canShare: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
    framesSeen: 0,
    stillTicks: 0,
  };

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
      if (camera.transceiver !== transceiver || !isOperator()) {
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

  function bind() {
    $('sound').addEventListener('click', toggleSound);
    $('share-camera').addEventListener('click', toggleSharing);
    $('talk').addEventListener('pointerdown', startTalking);
    for (const end of ['pointerup', 'pointerleave', 'pointercancel']) $('talk').addEventListener(end, stopTalking);
  }

  return { audio, camera, preferH264, stopSharing, driverFrames, updateDriver, bind };
};
