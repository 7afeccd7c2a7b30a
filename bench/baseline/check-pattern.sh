#!/usr/bin/env bash
# Checks that the baseline's numpy pattern (pattern.py) is byte-identical to
# telepi's (src/media/source/pattern.rs and scene.rs, bars and camera-like): compiles pattern.rs alone with rustc behind
# a small shim of its parent module, dumps I420 frames, compares in Python.
#   bench/baseline/check-pattern.sh [python]
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${1:-bench/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Modules pattern.rs may use (the real-time pacer).
extra=""
[ -f src/media/pace.rs ] && extra="#[path = \"$PWD/src/media/pace.rs\"] pub mod pace;"
cat > "$tmp/main.rs" <<EOF
#[allow(dead_code)]
mod media {
    use std::time::Instant;
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PixelFormat { I420, H264 }
    pub struct Frame { pub width: u32, pub height: u32, pub format: PixelFormat, pub data: Vec<u8>, pub captured: Instant }
    impl Frame {
        pub fn black_i420(width: u32, height: u32) -> Frame {
            let luma = (width * height) as usize;
            let mut data = vec![16u8; luma + luma / 2];
            data[luma..].fill(128);
            Frame { width, height, format: PixelFormat::I420, data, captured: Instant::now() }
        }
    }
    pub struct SourceInfo { pub name: String, pub width: u32, pub height: u32, pub fps: u32, pub format: PixelFormat }
    pub trait VideoSource: Send { fn info(&self) -> SourceInfo; fn next_frame(&mut self) -> std::io::Result<Frame>; }
    $extra
    pub mod source {
        #[path = "$PWD/src/media/source/pattern.rs"]
        pub mod pattern;
        #[path = "$PWD/src/media/source/scene.rs"]
        pub mod scene;
    }
}
fn main() {
    use media::source::pattern::TestPattern;
    let bars = TestPattern::new(640, 480, 30).unwrap();
    let camera = TestPattern::new(640, 480, 30).unwrap().camera_like();
    for (kind, p) in [("bars", bars), ("camera", camera)] {
        for (n, ms) in [(0u64, 0u64), (123, 1_700_000_123_456), (1000, 1_795_221_349_205)] {
            let mut f = media::Frame::black_i420(640, 480);
            p.draw(n, ms, &mut f);
            std::fs::write(format!("$tmp/rust-{kind}-{n}.yuv"), &f.data).unwrap();
        }
    }
}
EOF
rustc -O --edition 2021 "$tmp/main.rs" -o "$tmp/dump"
"$tmp/dump"
PYTHONPATH=bench/baseline "$python" - "$tmp" <<'EOF'
import sys
import numpy as np
import pattern
tmp = sys.argv[1]
for kind in ("bars", "camera"):
    p = pattern.TestPattern(640, 480, camera=kind == "camera")
    for n, ms in [(0, 0), (123, 1_700_000_123_456), (1000, 1_795_221_349_205)]:
        rust = np.fromfile(f"{tmp}/rust-{kind}-{n}.yuv", dtype=np.uint8).reshape(720, 640)
        if not np.array_equal(rust, p.draw(n, ms)):
            sys.exit(f"pattern.py ({kind}) differs from src/media/source/ at frame {n}: {(rust != p.draw(n, ms)).sum()} bytes")
print("pattern.py is byte-identical to src/media/source/pattern.rs and scene.rs (bars and camera)")
EOF
