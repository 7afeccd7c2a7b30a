"""The baseline: a camera-over-WebRTC server written the way RTCBot does it.

Python + aiohttp + aiortc: `POST /connect` takes {"type":"offer","sdp":...}
and answers {"type":"answer","sdp":...} (non-trickle, like telepi); one
RTCPeerConnection per viewer, each with aiortc's own H.264 encoder (libx264
through PyAV), fed from one shared synthetic camera through a MediaRelay
subscription per viewer -- RTCBot's camera.subscribe() per connection.

The camera draws telepi's test pattern (pattern.py) at the same size, rate
and bitrate target, with the same capture stamp in the top rows.

No STUN server, and one host candidate: 127.0.0.1 unless --ice-address
names another (tests/link/run.sh: the robot namespace's address).

    python server.py --http 127.0.0.1:8081 [--ice-address 127.0.0.1] [--page viewer.html]
"""

import asyncio
import fractions
import json
import time

import aioice.ice
import av
from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.codecs import h264
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from pattern import TestPattern, server_arguments

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)


class PatternCamera(VideoStreamTrack):
    """A synthetic 'camera': telepi's test pattern at a fixed frame rate."""

    def __init__(self, width: int, height: int, fps: int, camera: bool):
        super().__init__()
        self.pattern = TestPattern(width, height, camera=camera)
        self.fps = fps
        self.n = 0
        self.next_due = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.fps
        now = loop.time()
        # After an idle pause start a fresh schedule rather than catching up (as telepi).
        if self.next_due is None or self.next_due + interval <= now:
            self.next_due = now
        if self.next_due > now:
            await asyncio.sleep(self.next_due - now)
        self.next_due += interval
        epoch_ms = time.time_ns() // 1_000_000
        frame = av.VideoFrame.from_ndarray(self.pattern.draw(self.n, epoch_ms), format="yuv420p")
        frame.pts = int(self.n * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self.n += 1
        return frame


def one_address(address: str):
    """aioice gathers every interface address (never loopback) and aiortc
    adds Google's STUN server by default; keep everything on one address."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]
    return RTCConfiguration(iceServers=[])


def own_arguments(parser):
    parser.add_argument("--ice-address", default="127.0.0.1", help="the one ICE host candidate's address")
    parser.add_argument("--page", help="an HTML page to serve at / (as an RTCBot app serves its own)")


def main():
    args = server_arguments("127.0.0.1:8081", extra=own_arguments)

    # Same start and ceiling as telepi's [video] bitrate (aiortc: 1 Mbit/s start, 3 max).
    h264.DEFAULT_BITRATE = args.bitrate
    h264.MAX_BITRATE = args.bitrate
    h264.MIN_BITRATE = min(h264.MIN_BITRATE, args.bitrate)

    config = one_address(args.ice_address)
    camera = PatternCamera(args.width, args.height, args.fps, args.content == "camera")
    relay = MediaRelay()
    peers = set()
    h264_codecs = [
        c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"
    ]

    async def connect(request: web.Request) -> web.Response:
        params = await request.json()
        if params.get("type") != "offer":
            return web.json_response({"error": "type must be offer"}, status=400)
        pc = RTCPeerConnection(configuration=config)
        peers.add(pc)

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                peers.discard(pc)
                await pc.close()

        @pc.on("datachannel")
        def on_datachannel(channel):
            @channel.on("message")
            def on_message(message):
                try:
                    msg = json.loads(message)
                except (TypeError, ValueError):
                    return
                if isinstance(msg, dict) and msg.get("type") == "ping":
                    channel.send(json.dumps({"type": "pong", "t": msg.get("t")}))

        if "m=video" in params["sdp"]:
            # One subscription (and so one encoder) per viewer; newest frame wins.
            # aiortc applies codec preferences when the offer is set, so add first.
            sender = pc.addTrack(relay.subscribe(camera, buffered=False))
            transceiver = next(t for t in pc.getTransceivers() if t.sender == sender)
            transceiver.setCodecPreferences(h264_codecs)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=params["sdp"], type="offer"))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        return web.json_response(
            {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}
        )

    async def status(request: web.Request) -> web.Response:
        return web.json_response(
            {"peers": [{"state": pc.connectionState} for pc in peers], "video": {"encoder": "aiortc/libx264"}}
        )

    async def on_shutdown(app):
        await asyncio.gather(*(pc.close() for pc in list(peers)))
        peers.clear()

    app = web.Application()
    app.router.add_post("/connect", connect)
    app.router.add_get("/api/status", status)
    if args.page:
        app.router.add_get("/", lambda request: web.FileResponse(args.page))
    app.on_shutdown.append(on_shutdown)
    host, port = args.http.rsplit(":", 1)
    web.run_app(app, host=host, port=int(port), print=None, access_log=None)


if __name__ == "__main__":
    main()
