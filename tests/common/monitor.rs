//! The emulated machine's QEMU human monitor (`-monitor
//! unix:PATH,server,nowait`, PATH in `TELEPI_VM_MONITOR`, set by
//! tests/vm/*.sh): reads guest memory (the Pi's GPIO registers) and takes
//! screenshots of its display.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::Luma;

pub struct Monitor {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Monitor {
    pub fn connect() -> Monitor {
        let path = std::env::var("TELEPI_VM_MONITOR")
            .expect("TELEPI_VM_MONITOR is unset: run these tests through tests/vm/*.sh");
        let stream =
            UnixStream::connect(&path).unwrap_or_else(|e| panic!("QEMU monitor at {path}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut monitor = Monitor {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        };
        monitor.read_to_prompt();
        monitor
    }

    /// Everything up to the next `(qemu) ` prompt.
    fn read_to_prompt(&mut self) -> String {
        let mut out = Vec::new();
        while !out.ends_with(b"(qemu) ") {
            let buf = self.reader.fill_buf().expect("the monitor answers");
            assert!(!buf.is_empty(), "QEMU closed the monitor");
            // The prompt ends without a newline: take byte by byte up to it.
            let n = buf.len();
            out.extend_from_slice(buf);
            self.reader.consume(n);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Runs one monitor command; what it printed (with the command's echo).
    pub fn command(&mut self, line: &str) -> String {
        writeln!(self.writer, "{line}").unwrap();
        self.read_to_prompt()
    }

    /// What the guest's display shows now.
    pub fn screen(&mut self) -> Screen {
        let path = std::env::temp_dir().join(format!("guest-screen-{}.ppm", std::process::id()));
        let said = self.command(&format!("screendump {}", path.display()));
        let screen = Screen::read_ppm(&path).unwrap_or_else(|e| panic!("screendump: {e}; {said}"));
        let _ = std::fs::remove_file(&path);
        screen
    }
}

/// A screenshot: 8-bit RGB, rows top to bottom.
pub struct Screen {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Screen {
    /// A binary PPM (`P6`, maxval 255), as QEMU's `screendump` writes it.
    fn read_ppm(path: &Path) -> Result<Screen, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // The header is four whitespace-separated fields; one whitespace byte ends it.
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while data.get(at).is_some_and(u8::is_ascii_whitespace) {
                at += 1;
            }
            let start = at;
            while data.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
                at += 1;
            }
            if start == at {
                return Err("a short PPM header".into());
            }
            fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
        }
        let number = |i: usize| {
            fields[i]
                .parse::<usize>()
                .map_err(|e| format!("PPM {fields:?}: {e}"))
        };
        let (width, height) = (number(1)?, number(2)?);
        if fields[0] != "P6" || number(3)? != 255 {
            return Err(format!("not an 8-bit binary PPM: {fields:?}"));
        }
        let rgb = data.get(at + 1..).unwrap_or_default().to_vec();
        if rgb.len() != width * height * 3 {
            return Err(format!(
                "{} bytes of pixels for {width}x{height}",
                rgb.len()
            ));
        }
        Ok(Screen { width, height, rgb })
    }

    pub fn pixel(&self, x: usize, y: usize) -> (u8, u8, u8) {
        let at = (y * self.width + x) * 3;
        (self.rgb[at], self.rgb[at + 1], self.rgb[at + 2])
    }

    /// Whether row `y` is black (every channel under 16: no picture there).
    pub fn row_is_black(&self, y: usize) -> bool {
        (0..self.width).all(|x| {
            let (r, g, b) = self.pixel(x, y);
            r.max(g).max(b) < 16
        })
    }

    /// The rows that are not black: where the picture is.
    pub fn lit_rows(&self) -> Vec<usize> {
        (0..self.height)
            .filter(|&y| !self.row_is_black(y))
            .collect()
    }

    /// The BT.601 luma of rows `rows`, as a decoded picture's.
    pub fn luma(&self, rows: std::ops::Range<usize>) -> Luma {
        let pixels = rows
            .clone()
            .flat_map(|y| (0..self.width).map(move |x| (x, y)))
            .map(|(x, y)| {
                let (r, g, b) = self.pixel(x, y);
                ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b)) / 1000) as u8
            })
            .collect();
        Luma {
            width: self.width,
            height: rows.len(),
            pixels,
        }
    }
}
