//! Picture quality of the camera-like content: the luma PSNR of a decoded
//! frame against the frame the server's camera drew.
//!
//! Every server draws frame `n` of the same scene (telepi's
//! `src/media/source/scene.rs`, included below, and its numpy twin
//! `bench/baseline/pattern.py`), which repeats every 512 frames. A decoded
//! frame does not say its `n`, so it is found by matching a patch below the
//! stamp against each of the 512 possible frames; the whole picture between
//! the stamp (top) and the burned-in digits (bottom) is then compared.

#[path = "../../src/media/source/scene.rs"]
mod scene;

use scene::Scene;

/// Frames after which the scene repeats: the pan (4 px right, 2 down per
/// frame on a 1024-pixel tile) and the 8 noise patterns both cycle within it.
const CYCLE: usize = 512;
/// Rows at the top the stamp covers (`STAMP_HEIGHT`).
const STAMP_ROWS: usize = 16;
/// The patch matched to find a frame's number: 64 columns of the rows just
/// below the stamp.
const PATCH: usize = 64;

pub struct Reference {
    scene: Scene,
    /// Rows `STAMP_ROWS..PATCH` of each frame of the cycle, `PATCH` wide.
    patches: Vec<Vec<u8>>,
}

impl Default for Reference {
    fn default() -> Reference {
        let scene = Scene::default();
        let patches = (0..CYCLE)
            .map(|n| {
                let (luma, _, _) = draw(&scene, n as u64, PATCH, PATCH);
                luma[STAMP_ROWS * PATCH..].to_vec()
            })
            .collect();
        Reference { scene, patches }
    }
}

/// Frame `n` of the scene, `w`×`h`, as (luma, u, v).
fn draw(scene: &Scene, n: u64, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut luma = vec![0u8; w * h];
    let mut u = vec![0u8; w * h / 4];
    let mut v = vec![0u8; w * h / 4];
    scene.draw(n, w, &mut luma, &mut u, &mut v);
    (luma, u, v)
}

impl Reference {
    /// The frame number (modulo the cycle) whose patch is nearest the
    /// decoded picture's, by the sum of absolute differences.
    fn frame_number(&self, luma: &[u8], stride: usize) -> usize {
        let sad = |patch: &[u8]| -> u32 {
            patch
                .chunks_exact(PATCH)
                .enumerate()
                .map(|(row, want)| {
                    let got = &luma[(STAMP_ROWS + row) * stride..][..PATCH];
                    want.iter()
                        .zip(got)
                        .map(|(a, b)| u32::from(a.abs_diff(*b)))
                        .sum::<u32>()
                })
                .sum()
        };
        (0..CYCLE)
            .min_by_key(|&n| sad(&self.patches[n]))
            .unwrap_or(0)
    }

    /// Luma PSNR in dB of a decoded `width`×`height` picture against the
    /// frame drawn, over the rows between the stamp and the digits.
    /// `None` if the picture is too small to hold the patch.
    pub fn psnr(&self, luma: &[u8], width: usize, height: usize, stride: usize) -> Option<f64> {
        // The digits' band: `TestPattern::draw` blacks out 10 text rows of
        // `scale` pixels at the bottom.
        let scale = (height / 120).max(2);
        let bottom = height.checked_sub(10 * scale)?;
        if width < PATCH || bottom < PATCH || luma.len() < (height - 1) * stride + width {
            return None;
        }
        let n = self.frame_number(luma, stride);
        let (want, _, _) = draw(&self.scene, n as u64, width, height);
        let mut squared = 0u64;
        for row in STAMP_ROWS..bottom {
            let got = &luma[row * stride..][..width];
            let want = &want[row * width..][..width];
            squared += want
                .iter()
                .zip(got)
                .map(|(a, b)| u64::from(a.abs_diff(*b)).pow(2))
                .sum::<u64>();
        }
        let mse = squared as f64 / ((bottom - STAMP_ROWS) * width) as f64;
        Some(if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0 * 255.0 / mse).log10()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame `n` as a decoder would hand it over: padded rows, the stamp
    /// rows overwritten, and `error` added to every luma sample.
    fn decoded(reference: &Reference, n: u64, error: i16) -> (Vec<u8>, usize) {
        let (w, h, stride) = (320, 240, 352);
        let (luma, _, _) = draw(&reference.scene, n, w, h);
        let mut out = vec![0u8; stride * h];
        for row in 0..h {
            for col in 0..w {
                let value = if row < STAMP_ROWS {
                    235
                } else {
                    (i16::from(luma[row * w + col]) + error).clamp(0, 255) as u8
                };
                out[row * stride + col] = value;
            }
        }
        (out, stride)
    }

    #[test]
    fn finds_the_frame_and_measures_the_error() {
        let reference = Reference::default();
        let (luma, stride) = decoded(&reference, 700, 0);
        assert_eq!(reference.frame_number(&luma, stride), 700 % CYCLE);
        assert_eq!(reference.psnr(&luma, 320, 240, stride), Some(f64::INFINITY));

        // An error of 4 on every sample: MSE 16, PSNR 10·log10(255²/16).
        let (luma, stride) = decoded(&reference, 33, 4);
        let psnr = reference.psnr(&luma, 320, 240, stride).unwrap();
        assert!((psnr - 36.09).abs() < 0.05, "{psnr}");
    }

    #[test]
    fn a_picture_too_small_is_refused() {
        let reference = Reference::default();
        assert_eq!(reference.psnr(&[0; 32 * 32], 32, 32, 32), None);
    }
}
