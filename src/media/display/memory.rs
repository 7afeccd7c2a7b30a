//! A framebuffer in memory: the screen nobody sees, for tests and for
//! trying a `[display]` configuration on a machine without one.

use std::io;
use std::sync::{Arc, Mutex};

use super::{Framebuffer, Geometry, PixelLayout};

/// What `device = "memory"` opens: a small 32 bpp screen.
pub const DEFAULT_GEOMETRY: Geometry = Geometry {
    width: 320,
    height: 240,
    stride: 320 * 4,
    layout: PixelLayout::XRGB8888,
};

pub struct MemoryFramebuffer {
    geometry: Geometry,
    image: Arc<Mutex<Vec<u8>>>,
}

impl MemoryFramebuffer {
    /// A screen of `geometry`, black, and a handle to read what it shows.
    pub fn new(geometry: Geometry) -> (MemoryFramebuffer, Arc<Mutex<Vec<u8>>>) {
        let image = Arc::new(Mutex::new(vec![0; geometry.image_len()]));
        let screen = MemoryFramebuffer {
            geometry,
            image: image.clone(),
        };
        (screen, image)
    }
}

impl Framebuffer for MemoryFramebuffer {
    fn name(&self) -> &str {
        "memory"
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn show(&mut self, image: &[u8]) -> io::Result<()> {
        let mut shown = self.image.lock().unwrap_or_else(|e| e.into_inner());
        let len = shown.len();
        let Some(image) = image.get(..len) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes for a {len}-byte screen", image.len()),
            ));
        };
        shown.copy_from_slice(image);
        Ok(())
    }
}
