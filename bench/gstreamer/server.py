"""The native peer: a camera-over-WebRTC server the way many Pi robot builders
write it with GStreamer's webrtcbin, driven from Python through python3-gi.

One encode shared by every viewer, as telepi does it:

    appsrc (the test pattern) ! x264enc tune=zerolatency speed-preset=ultrafast
        ! h264parse ! tee
    tee. ! queue ! rtph264pay ! webrtcbin      (one branch per viewer)

Same signaling as telepi and the aiortc baseline: `POST /connect` takes
{"type":"offer","sdp":...} and answers {"type":"answer","sdp":...} once ICE
gathering is complete (no trickle). The camera draws telepi's test pattern
(bench/baseline/pattern.py) at the same size, rate and bitrate, with the same
capture stamp, so the same viewers measure all three servers.

Only 127.0.0.1 is used: libnice is told to gather on loopback alone and no
STUN server is set.

    /usr/bin/python3 bench/gstreamer/server.py --http 127.0.0.1:8082

Needs Debian's python3-gi, python3-numpy, gir1.2-gst-plugins-bad-1.0,
gir1.2-nice-0.1, gstreamer1.0-plugins-{base,good,bad,ugly} and gstreamer1.0-nice.
"""

import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "baseline"))
from pattern import TestPattern, server_arguments  # noqa: E402

log = logging.getLogger("gst-server")


def h264_payload_type(offer_sdp: str) -> int:
    """The offer's H.264 payload type a constrained-baseline, packetization-mode=1
    stream fits (the viewers decode with openh264)."""
    rtpmap = {
        int(pt): name
        for pt, name in re.findall(r"^a=rtpmap:(\d+) ([^/\s]+)/", offer_sdp, re.M)
    }
    fmtp = dict(
        (int(pt), params) for pt, params in re.findall(r"^a=fmtp:(\d+) (.*)$", offer_sdp, re.M)
    )
    h264 = [pt for pt, name in rtpmap.items() if name.upper() == "H264"]
    # x264enc's stream here is constrained baseline (42e0..); plain baseline
    # (4200..) is the next best match.
    for profile in ("42e0", "4200"):
        for pt in h264:
            params = fmtp.get(pt, "")
            if "packetization-mode=1" in params and f"profile-level-id={profile}" in params:
                return pt
    if not h264:
        raise ValueError("the offer has no H.264")
    return h264[0]


def ecdsa_certificate():
    """A self-signed P-256 certificate and key, as one PEM, and its SHA-256
    fingerprint as SDP writes it."""
    out = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=gstreamer-bench", "-days", "30", "-keyout", "-", "-out", "-"],
        check=True, capture_output=True, text=True,
    ).stdout
    key = out[: out.index("-----BEGIN CERTIFICATE-----")]
    cert = out[len(key):]
    fingerprint = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
        input=cert, check=True, capture_output=True, text=True,
    ).stdout.strip().split("=", 1)[1]
    return cert + key, fingerprint


class Camera:
    """The test pattern pushed into appsrc at a fixed frame rate, on its own thread."""

    def __init__(self, appsrc, width: int, height: int, fps: int, camera: bool):
        self.appsrc = appsrc
        self.pattern = TestPattern(width, height, camera=camera)
        self.fps = fps
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="camera", daemon=True)

    def run(self):
        interval = 1.0 / self.fps
        duration = Gst.SECOND // self.fps
        n = 0
        next_due = time.monotonic()
        while not self.stopped.is_set():
            now = time.monotonic()
            if next_due > now:
                time.sleep(next_due - now)
            elif next_due + interval <= now:
                next_due = now  # behind: start a fresh schedule rather than catch up
            next_due += interval
            epoch_ms = time.time_ns() // 1_000_000
            frame = self.pattern.draw(n, epoch_ms)
            buf = Gst.Buffer.new_wrapped(frame.tobytes())
            buf.pts = n * duration
            buf.duration = duration
            flow = self.appsrc.emit("push-buffer", buf)
            if flow != Gst.FlowReturn.OK:
                log.warning("frame %d: %s", n, flow.value_nick)
            n += 1


class Viewer:
    """One webrtcbin and the tee branch that feeds it."""

    def __init__(self, server: "Server", offer_sdp: str, done):
        self.server = server
        self.done = done
        self.answered = False
        pt = h264_payload_type(offer_sdp)
        # The SSRC fixed up front: the payloader otherwise picks its own, and
        # when its caps settle before the answer is made, the answer announces
        # another one and the viewer drops every packet.
        ssrc = random.getrandbits(32)
        rtp_caps = Gst.Caps.from_string(
            "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,"
            f"payload={pt},ssrc=(uint){ssrc}"
        )
        self.queue = Gst.ElementFactory.make("queue")
        # Drop old frames rather than let a slow viewer hold the encoder back.
        self.queue.set_property("leaky", 2)
        self.queue.set_property("max-size-buffers", 30)
        self.pay = Gst.ElementFactory.make("rtph264pay")
        self.pay.set_property("config-interval", -1)
        self.pay.set_property("pt", pt)
        self.pay.set_property("ssrc", ssrc)
        self.pay.set_property("aggregate-mode", "zero-latency")
        self.caps = Gst.ElementFactory.make("capsfilter")
        self.caps.set_property("caps", rtp_caps)
        self.webrtc = Gst.ElementFactory.make("webrtcbin")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        # GStreamer 1.22's getter hands out its ice-agent without a reference
        # of its own: hold it for as long as the webrtcbin lives (see remove).
        self.ice = self.webrtc.get_property("ice-agent")
        loopback = Nice.Address()
        loopback.set_from_string("127.0.0.1")
        self.ice.get_property("agent").add_local_address(loopback)
        self.elements = [self.queue, self.pay, self.caps, self.webrtc]
        pipeline = server.pipeline
        for e in self.elements:
            pipeline.add(e)
        self.queue.link(self.pay)
        self.pay.link(self.caps)
        # Requested with its caps, so the transceiver knows its kind and codec
        # when the answer is made, before any frame has crossed the branch.
        template = self.webrtc.get_pad_template("sink_%u")
        sink = self.webrtc.request_pad(template, None, rtp_caps)
        self.caps.get_static_pad("src").link(sink)
        sink.get_property("transceiver").set_property(
            "direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY
        )
        self.tee_pad = server.tee.request_pad_simple("src_%u")
        self.tee_pad.link(self.queue.get_static_pad("sink"))
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::connection-state", self.on_connection)
        self.webrtc.connect("on-data-channel", self.on_data_channel)
        self.webrtc.connect("deep-element-added", self.on_element_added)
        for e in self.elements:
            e.sync_state_with_parent()

        _, sdp = GstSdp.SDPMessage.new_from_text(offer_sdp)
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp)
        promise = Gst.Promise.new_with_change_func(self.on_remote_set, None)
        self.webrtc.emit("set-remote-description", offer, promise)

    def on_remote_set(self, promise, _):
        promise = Gst.Promise.new_with_change_func(self.on_answer, None)
        self.webrtc.emit("create-answer", None, promise)

    def on_answer(self, promise, _):
        reply = promise.get_reply()
        answer = reply.get_value("answer") if reply is not None else None
        if answer is None:
            self.finish(None, "webrtcbin made no answer")
            return
        self.webrtc.emit("set-local-description", answer, Gst.Promise.new())
        self.on_gathering(self.webrtc, None)

    def on_element_added(self, _bin, _sub_bin, element):
        # webrtcbin's own certificate is RSA; a DTLS client asked (as str0m
        # asks) for an ECDSA one then sends none and the handshake fails. The
        # decoder creates the connection the encoder takes when it starts, so
        # the certificate goes in as the decoder joins its bin, before that.
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "dtlsdec":
            element.set_property("pem", self.server.certificate)

    def on_gathering(self, webrtc, _):
        state = webrtc.get_property("ice-gathering-state")
        local = webrtc.get_property("local-description")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and local is not None:
            # The answer names the certificate webrtcbin made; ours is in use.
            sdp = re.sub(
                r"^a=fingerprint:sha-256 .*$",
                f"a=fingerprint:sha-256 {self.server.fingerprint}",
                local.sdp.as_text(),
                flags=re.M,
            )
            self.finish(sdp, None)

    def finish(self, sdp, error):
        if not self.answered:
            self.answered = True
            self.done(sdp, error)

    def on_connection(self, webrtc, _):
        state = webrtc.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            # A new viewer needs a keyframe now, not at the next periodic one
            # (one sent before DTLS is up never reaches it); its RTP session
            # sends nothing until the pipeline's latency is known again.
            GLib.idle_add(self.server.viewer_connected)
        if state in (
            GstWebRTC.WebRTCPeerConnectionState.FAILED,
            GstWebRTC.WebRTCPeerConnectionState.CLOSED,
        ):
            GLib.idle_add(self.remove)

    def on_data_channel(self, _webrtc, channel):
        def on_message(chan, text):
            try:
                msg = json.loads(text)
            except ValueError:
                return
            if isinstance(msg, dict) and msg.get("type") == "ping":
                chan.emit("send-string", json.dumps({"type": "pong", "t": msg.get("t")}))

        channel.connect("on-message-string", on_message)

    def state(self) -> str:
        return self.webrtc.get_property("connection-state").value_nick

    def remove(self):
        if self not in self.server.viewers:
            return False
        self.server.viewers.remove(self)
        self.tee_pad.unlink(self.queue.get_static_pad("sink"))
        self.server.tee.release_request_pad(self.tee_pad)
        for e in self.elements:
            e.set_state(Gst.State.NULL)
            self.server.pipeline.remove(e)
        # Never finalized: that would drop the ice-agent reference it never took.
        self.server.retired.append(self)
        return False


class Server:
    def __init__(self, args):
        self.pipeline = Gst.parse_launch(
            # appsrc's own thread feeds the encoder; when it falls behind,
            # the oldest frames are dropped rather than queued without bound.
            "appsrc name=camera is-live=true format=time do-timestamp=false "
            "max-buffers=2 leaky-type=downstream "
            f"caps=video/x-raw,format=I420,width={args.width},height={args.height},"
            f"framerate={args.fps}/1 "
            "! x264enc name=encoder tune=zerolatency speed-preset=ultrafast "
            f"bitrate={args.bitrate // 1000} key-int-max={args.fps * 10} "
            "! video/x-h264,profile=constrained-baseline "
            "! h264parse config-interval=-1 ! tee name=tee allow-not-linked=true"
        )
        self.tee = self.pipeline.get_by_name("tee")
        self.encoder = self.pipeline.get_by_name("encoder")
        self.camera = Camera(
            self.pipeline.get_by_name("camera"),
            args.width,
            args.height,
            args.fps,
            args.content == "camera",
        )
        self.viewers = []
        self.retired = []
        self.certificate, self.fingerprint = ecdsa_certificate()
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)
        # Branches join a running pipeline: their RTP sessions only send once
        # the pipeline's latency has been worked out again.
        bus.connect("message::latency", lambda *_: self.pipeline.recalculate_latency())

    def start(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        self.camera.thread.start()

    def on_error(self, _bus, message):
        err, debug = message.parse_error()
        log.error("pipeline error: %s (%s)", err.message, debug)

    def viewer_connected(self):
        self.pipeline.recalculate_latency()
        self.request_keyframe()
        return False

    def request_keyframe(self):
        event = Gst.Event.new_custom(
            Gst.EventType.CUSTOM_UPSTREAM,
            Gst.Structure.new_from_string("GstForceKeyUnit, all-headers=(boolean)true"),
        )
        self.encoder.get_static_pad("src").send_event(event)

    def connect(self, offer_sdp: str, done):
        """On the GLib thread: a new viewer; `done(sdp, error)` is called once."""
        try:
            self.viewers.append(Viewer(self, offer_sdp, done))
        except (ValueError, GLib.Error) as e:
            done(None, str(e))
        return False


def serve_http(server: Server, address):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path != "/api/status":
                self.reply(404, {"error": "not found"})
                return
            states = []
            ready = threading.Event()

            def collect():
                states.extend(v.state() for v in server.viewers)
                ready.set()
                return False

            GLib.idle_add(collect)
            ready.wait(5)
            self.reply(
                200,
                {
                    "peers": [{"state": s} for s in states],
                    "video": {"encoder": "gstreamer/x264enc"},
                },
            )

        def do_POST(self):
            if self.path != "/connect":
                self.reply(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                params = json.loads(self.rfile.read(length))
            except ValueError as e:
                self.reply(400, {"error": f"bad JSON: {e}"})
                return
            if not isinstance(params, dict) or params.get("type") != "offer":
                self.reply(400, {"error": "type must be offer"})
                return
            result = {}
            ready = threading.Event()

            def done(sdp, error):
                result.update(sdp=sdp, error=error)
                ready.set()

            GLib.idle_add(server.connect, str(params.get("sdp", "")), done)
            if not ready.wait(10):
                self.reply(504, {"error": "no answer within 10 s"})
            elif result["error"]:
                self.reply(400, {"error": result["error"]})
            else:
                self.reply(200, {"type": "answer", "sdp": result["sdp"]})

        def log_message(self, *_):
            pass

    httpd = ThreadingHTTPServer(address, Handler)
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()


def main():
    args = server_arguments("127.0.0.1:8082")
    Gst.init(None)
    server = Server(args)
    server.start()
    host, port = args.http.rsplit(":", 1)
    serve_http(server, (host, int(port)))
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)  # SIGTERM
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2, loop.quit)  # SIGINT
    loop.run()
    server.camera.stopped.set()
    server.pipeline.set_state(Gst.State.NULL)
    # Skip finalizers: the retired webrtcbins' ice-agents (above) must not be freed twice.
    os._exit(0)


if __name__ == "__main__":
    main()
