"""telepi's test pattern (src/media/source/pattern.rs) in numpy: scrolling colour
bars and a bouncing grey square (or, with camera=True, the panning noisy scene
of src/media/source/scene.rs), the frame number and capture time as digits, and
the machine-readable stamp -- the top 16 rows hold 32 black/white cells with
the capture time in ms since the Unix epoch modulo 2^32, most significant bit
first -- so the baseline's frames carry the same content and the same stamp."""

import argparse
import logging

import numpy as np

STAMP_BITS = 32
STAMP_HEIGHT = 16
Y_BLACK = 16
Y_WHITE = 235

DIGITS = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
]

BARS = np.array(
    [
        (235, 128, 128),
        (210, 16, 146),
        (170, 166, 16),
        (145, 54, 34),
        (106, 202, 222),
        (81, 90, 240),
        (41, 240, 110),
        (16, 128, 128),
    ],
    dtype=np.uint8,
)


def _hash(x, y, k):
    """scene.rs's hash on uint32 arrays (wrapping arithmetic)."""
    x, y, k = (np.asarray(a, dtype=np.uint32) for a in (x, y, k))
    with np.errstate(over="ignore"):
        h = (x * np.uint32(0x9E3779B1)) ^ (y * np.uint32(0x85EBCA77)) ^ (k * np.uint32(0xC2B2AE3D))
        h ^= h >> np.uint32(15)
        h = h * np.uint32(0x2C1B3C6D)
    return h ^ (h >> np.uint32(12))


class Scene:
    """src/media/source/scene.rs: a 1024-pixel tile the view pans across (4 right,
    2 down per frame) with 8 cycled 256-pixel noise tiles (±8) on the luma."""

    TILE = 1024
    NOISE_TILE = 256
    NOISE_FRAMES = 8

    def __init__(self, width: int, height: int):
        t = self.TILE
        y, x = np.mgrid[0:t, 0:t].astype(np.uint32)
        blocks = _hash(x >> 5, y >> 5, 1) & 0xFF
        ramp = ((x + y) & 0xFF) >> 2
        texture = _hash(x >> 2, y >> 2, 2) & 0x1F
        self.luma = (20 + (blocks >> 1) + ramp + (texture >> 1)).astype(np.int16)
        cy, cx = np.mgrid[0 : t // 2, 0 : t // 2].astype(np.uint32)
        self.u = (96 + (_hash(cx >> 4, cy >> 4, 3) & 0x3F)).astype(np.uint8)
        self.v = (96 + (_hash(cx >> 4, cy >> 4, 4) & 0x3F)).astype(np.uint8)
        n = self.NOISE_TILE
        ny, nx = np.mgrid[0:n, 0:n].astype(np.uint32)
        reps = (-(-height // n), -(-width // n))
        # Each noise tile repeated over the whole frame once, here, not per frame.
        self.noise = [
            np.tile((_hash(nx, ny, 16 + k) & 15).astype(np.int16) - 8, reps)[:height, :width]
            for k in range(self.NOISE_FRAMES)
        ]
        self.xs = np.arange(width)
        self.ys = np.arange(height)
        self.cxs = np.arange(width // 2)
        self.cys = np.arange(height // 2)

    def draw(self, n: int, luma: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        t = self.TILE
        dx, dy = (n * 4) % t, (n * 2) % t
        rows = (self.ys + dy) % t
        cols = (self.xs + dx) % t
        view = self.luma[rows[:, None], cols[None, :]] + self.noise[n % self.NOISE_FRAMES]
        luma[:] = np.clip(view, 16, 235).astype(np.uint8)
        ct = t // 2
        crow = (self.cys + dy // 2) % ct
        ccol = (self.cxs + dx // 2) % ct
        u[:] = self.u[crow[:, None], ccol[None, :]]
        v[:] = self.v[crow[:, None], ccol[None, :]]


class TestPattern:
    def __init__(self, width: int, height: int, camera: bool = False):
        if width % 2 or height % 2 or width < 64 or height < 64:
            raise ValueError(f"test pattern needs even size >= 64x64, got {width}x{height}")
        self.width = width
        self.height = height
        self.scene = Scene(width, height) if camera else None
        self.scale = max(height // 120, 2)
        # Each glyph pre-scaled to a (7*scale, 5*scale) mask.
        s = self.scale
        self.glyphs = []
        for rows in DIGITS:
            bits = np.array([[(r >> (4 - c)) & 1 for c in range(5)] for r in rows], dtype=bool)
            self.glyphs.append(np.kron(bits, np.ones((s, s), dtype=bool)))

    def draw(self, n: int, epoch_ms: int) -> np.ndarray:
        """Frame n captured at epoch_ms, as an I420 array of shape (h*3/2, w)."""
        w, h = self.width, self.height
        frame = np.empty((h * 3 // 2, w), dtype=np.uint8)
        luma = frame[:h]
        # Chroma planes, each (h/2, w/2), laid out after the luma as in I420.
        chroma = frame[h:].reshape(-1)
        u = chroma[: w * h // 4].reshape(h // 2, w // 2)
        v = chroma[w * h // 4 :].reshape(h // 2, w // 2)

        if self.scene is not None:
            self.scene.draw(n, luma, u, v)
        else:
            bar_width = -(-w // len(BARS))
            bar = ((np.arange(w) + n) % w) // bar_width
            luma[:] = BARS[bar, 0][None, :]
            u[:] = BARS[bar[0::2], 1][None, :]
            v[:] = BARS[bar[0::2], 2][None, :]

            side = h // 6
            span = h - side - STAMP_HEIGHT
            phase = (n * 4) % (2 * span)
            top = STAMP_HEIGHT + (phase if phase < span else 2 * span - phase)
            left = w // 2 - side // 2
            luma[top : top + side, left : left + side] = 128

        cell = w // STAMP_BITS
        for bit in range(STAMP_BITS):
            on = (epoch_ms >> (STAMP_BITS - 1 - bit)) & 1
            luma[:STAMP_HEIGHT, bit * cell : (bit + 1) * cell] = Y_WHITE if on else Y_BLACK

        s = self.scale
        text_top = h - 9 * s
        luma[text_top - s : text_top - s + 10 * s, :] = Y_BLACK
        # Grey chroma under the stamp and the text, so they read black and white.
        for top_row, rows in ((0, STAMP_HEIGHT), (text_top - s, 10 * s)):
            u[top_row // 2 : top_row // 2 + -(-rows // 2), :] = 128
            v[top_row // 2 : top_row // 2 + -(-rows // 2), :] = 128
        self._number(luma, s, text_top, n)
        ms_width = 14 * 6 * s
        self._number(luma, max(w - (ms_width + s), 0), text_top, epoch_ms)
        return frame

    def _number(self, luma: np.ndarray, x: int, y: int, n: int) -> None:
        s = self.scale
        w = self.width
        for i, ch in enumerate(str(n)):
            gx = x + i * 6 * s
            if gx >= w:
                break
            glyph = self.glyphs[ord(ch) - 48][:, : w - gx]
            region = luma[y : y + 7 * s, gx : gx + glyph.shape[1]]
            region[glyph[: region.shape[0]]] = Y_WHITE


def read_stamp(luma: np.ndarray) -> int:
    """The stamp read back from a luma plane, like telepi's read_stamp."""
    w = luma.shape[1]
    cell = w // STAMP_BITS
    row = luma[STAMP_HEIGHT // 2]
    value = 0
    for bit in range(STAMP_BITS):
        value = (value << 1) | int(row[bit * cell + cell // 2] > 128)
    return value


if __name__ == "__main__":
    # Self-check: the stamp reads back, and the picture changes frame to frame.
    p = TestPattern(640, 480)
    ms = 1_700_000_123_456
    f = p.draw(42, ms)
    assert read_stamp(f[:480]) == ms % (1 << 32), hex(read_stamp(f[:480]))
    assert not np.array_equal(p.draw(1, 0), p.draw(2, 0))
    c = TestPattern(640, 480, camera=True)
    assert read_stamp(c.draw(42, ms)[:480]) == ms % (1 << 32)
    assert not np.array_equal(c.draw(1, 0), c.draw(2, 0))
    print("pattern ok")


def server_arguments(default_http: str, extra=None) -> argparse.Namespace:
    """The command line of every Python server in the benchmark (what
    bench/src/server.rs passes), with logging set up as they all want it;
    `extra(parser)` adds a server's own options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", default=default_http)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=1_500_000)
    # As telepi's [video] pattern: bars, or the camera-like panning scene with noise.
    parser.add_argument("--content", choices=["bars", "camera"], default="bars")
    if extra:
        extra(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    return args
