//! Camera-like content for the test pattern (`[video] pattern = "camera"`):
//! a textured scene the "camera" pans across (global motion, every pixel
//! moves every frame) with sensor noise on top (±8 on luma, new each frame).
//! Colour bars compress far better than anything a real camera sees, which
//! flatters every encoder's CPU and bitrate figures; this doesn't.
//!
//! Integer arithmetic only, so `bench/baseline/pattern.py` draws the same
//! bytes (`bench/baseline/check-pattern.sh` compares them).

/// The scene repeats every `TILE` pixels (luma) in both directions.
const TILE: usize = 1024;
const NOISE_TILE: usize = 256;
/// Noise patterns cycled through, so consecutive frames never share noise.
const NOISE_FRAMES: usize = 8;

/// A small integer hash (wrapping 32-bit arithmetic, as numpy's uint32).
fn hash(x: u32, y: u32, k: u32) -> u32 {
    let mut h =
        x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ k.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^ (h >> 12)
}

/// Scene luma at (x, y) of the tile: 32-pixel blocks of different brightness
/// (objects), a diagonal ramp with hard edges every 256 pixels, and 4-pixel
/// texture.
fn scene_luma(x: u32, y: u32) -> u8 {
    let blocks = hash(x >> 5, y >> 5, 1) & 0xFF;
    let ramp = ((x + y) & 0xFF) >> 2;
    let texture = hash(x >> 2, y >> 2, 2) & 0x1F;
    (20 + (blocks >> 1) + ramp + (texture >> 1)) as u8
}

/// Scene chroma (k = 3 for U, 4 for V) at chroma coordinates: 16-sample patches.
fn scene_chroma(cx: u32, cy: u32, k: u32) -> u8 {
    (96 + (hash(cx >> 4, cy >> 4, k) & 0x3F)) as u8
}

pub struct Scene {
    luma: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    noise: Vec<i8>,
}

impl Default for Scene {
    /// Draws the tiles once (about 1.8 MB); frames then only copy and add.
    fn default() -> Scene {
        let tile = |n: usize, f: &dyn Fn(u32, u32) -> u8| -> Vec<u8> {
            (0..n * n)
                .map(|i| f((i % n) as u32, (i / n) as u32))
                .collect()
        };
        let noise = (0..NOISE_FRAMES * NOISE_TILE * NOISE_TILE)
            .map(|i| {
                let k = (i / (NOISE_TILE * NOISE_TILE)) as u32;
                let at = i % (NOISE_TILE * NOISE_TILE);
                let (x, y) = ((at % NOISE_TILE) as u32, (at / NOISE_TILE) as u32);
                (hash(x, y, 16 + k) & 15) as i8 - 8
            })
            .collect();
        Scene {
            luma: tile(TILE, &scene_luma),
            u: tile(TILE / 2, &|x, y| scene_chroma(x, y, 3)),
            v: tile(TILE / 2, &|x, y| scene_chroma(x, y, 4)),
            noise,
        }
    }
}

impl Scene {
    /// Frame `n`'s background into I420 planes of a `w`-wide picture: the
    /// view moves 4 pixels right and 2 down per frame.
    pub fn draw(&self, n: u64, w: usize, luma: &mut [u8], u_plane: &mut [u8], v_plane: &mut [u8]) {
        let (dx, dy) = ((n * 4) as usize % TILE, (n * 2) as usize % TILE);
        let noise_base = (n as usize % NOISE_FRAMES) * NOISE_TILE * NOISE_TILE;
        for (y, row) in luma.chunks_exact_mut(w).enumerate() {
            let src = &self.luma[((y + dy) % TILE) * TILE..][..TILE];
            let noise = &self.noise[noise_base + (y % NOISE_TILE) * NOISE_TILE..][..NOISE_TILE];
            for (x, px) in row.iter_mut().enumerate() {
                let value = i16::from(src[(x + dx) % TILE]) + i16::from(noise[x % NOISE_TILE]);
                *px = value.clamp(16, 235) as u8;
            }
        }
        let (cdx, cdy, ct) = (dx / 2, dy / 2, TILE / 2);
        for (plane, tile) in [(u_plane, &self.u), (v_plane, &self.v)] {
            for (y, row) in plane.chunks_exact_mut(w / 2).enumerate() {
                let src = &tile[((y + cdy) % ct) * ct..][..ct];
                for (x, px) in row.iter_mut().enumerate() {
                    *px = src[(x + cdx) % ct];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(scene: &Scene, n: u64) -> Vec<u8> {
        let (w, h) = (64, 48);
        let mut data = vec![0u8; w * h * 3 / 2];
        let (luma, chroma) = data.split_at_mut(w * h);
        let (u, v) = chroma.split_at_mut(w * h / 4);
        scene.draw(n, w, luma, u, v);
        data
    }

    #[test]
    fn the_view_pans_and_the_noise_changes() {
        let scene = Scene::default();
        let (a, b) = (frame(&scene, 10), frame(&scene, 11));
        let w = 64;
        // Frame 11 is frame 10 moved 4 left and 2 up, up to the noise (±8 each).
        let (mut moved, mut same) = (0, 0);
        for y in 0..40 {
            for x in 0..56 {
                let (now, before) = (b[y * w + x], a[(y + 2) * w + x + 4]);
                if now.abs_diff(before) <= 16 {
                    moved += 1;
                }
                if b[y * w + x] == a[y * w + x] {
                    same += 1;
                }
            }
        }
        let total = 40 * 56;
        assert!(moved > total * 95 / 100, "{moved}/{total} follow the pan");
        assert!(same < total / 4, "{same}/{total} unchanged in place");
        assert!(a.iter().take(64 * 48).all(|&y| (16..=235).contains(&y)));
    }

    #[test]
    fn the_hash_wraps_instead_of_overflowing() {
        assert_eq!(hash(0, 0, 0), 0);
        assert_ne!(hash(u32::MAX, 7, 3), hash(7, u32::MAX, 3));
    }
}
