//! The Linux framebuffer (`/dev/fb0`): the geometry from the
//! FBIOGET_VSCREENINFO / FBIOGET_FSCREENINFO ioctls, each picture written
//! with one `pwrite` at the visible area's offset (DRM's fbdev emulation
//! turns the write into damage it flushes to the real display).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{DisplayError, Framebuffer, Geometry, PixelLayout};

const FBIOGET_VSCREENINFO: libc::c_ulong = 0x4600;
const FBIOGET_FSCREENINFO: libc::c_ulong = 0x4602;
const FB_TYPE_PACKED_PIXELS: u32 = 0;
const FB_VISUAL_TRUECOLOR: u32 = 2;

/// `struct fb_bitfield` of linux/fb.h.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct Bitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

/// `struct fb_var_screeninfo` of linux/fb.h.
#[repr(C)]
#[derive(Debug, Default)]
struct VarScreenInfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: Bitfield,
    green: Bitfield,
    blue: Bitfield,
    transp: Bitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    timings: [u32; 11],
    reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo` of linux/fb.h.
#[repr(C)]
#[derive(Debug, Default)]
struct FixScreenInfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    kind: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

pub struct LinuxFramebuffer {
    file: File,
    name: String,
    geometry: Geometry,
    /// Where the visible screen starts in the device's memory.
    offset: u64,
}

impl LinuxFramebuffer {
    /// Opens `device` and reads its geometry; a missing device, no
    /// permission or a pixel format telepi cannot draw is an error naming it.
    pub fn open(device: &Path) -> Result<LinuxFramebuffer, DisplayError> {
        let name = device.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => DisplayError::NoDevice(name.clone()),
                io::ErrorKind::PermissionDenied => DisplayError::PermissionDenied(name.clone()),
                _ => DisplayError::Open {
                    device: name.clone(),
                    source: e,
                },
            })?;
        let mut var = VarScreenInfo::default();
        let mut fix = FixScreenInfo::default();
        // SAFETY: both ioctls fill the struct they are given, which matches
        // the kernel's layout (linux/fb.h) and lives across the call.
        let ok = unsafe {
            libc::ioctl(file.as_raw_fd(), FBIOGET_VSCREENINFO as _, &mut var) == 0
                && libc::ioctl(file.as_raw_fd(), FBIOGET_FSCREENINFO as _, &mut fix) == 0
        };
        if !ok {
            return Err(DisplayError::NotFramebuffer {
                device: name,
                source: io::Error::last_os_error(),
            });
        }
        let geometry = geometry(&name, &var, &fix)?;
        let offset = u64::from(var.yoffset) * u64::from(fix.line_length)
            + u64::from(var.xoffset) * geometry.layout.bytes_per_pixel() as u64;
        Ok(LinuxFramebuffer {
            file,
            name,
            geometry,
            offset,
        })
    }
}

/// The geometry telepi can draw in, or why not.
fn geometry(
    name: &str,
    var: &VarScreenInfo,
    fix: &FixScreenInfo,
) -> Result<Geometry, DisplayError> {
    let field = |f: Bitfield| (f.offset, f.length);
    let layout = PixelLayout {
        bits_per_pixel: var.bits_per_pixel,
        red: field(var.red),
        green: field(var.green),
        blue: field(var.blue),
    };
    if fix.kind != FB_TYPE_PACKED_PIXELS || fix.visual != FB_VISUAL_TRUECOLOR {
        return Err(DisplayError::NotTrueColour {
            device: name.into(),
            kind: fix.kind,
            visual: fix.visual,
        });
    }
    if !layout.is_supported() {
        return Err(DisplayError::Depth {
            device: name.into(),
            layout,
        });
    }
    let geometry = Geometry {
        width: var.xres,
        height: var.yres,
        stride: fix.line_length as usize,
        layout,
    };
    if geometry.width == 0
        || geometry.height == 0
        || geometry.stride < geometry.width as usize * layout.bytes_per_pixel()
    {
        return Err(DisplayError::Nonsense {
            device: name.into(),
            width: var.xres,
            height: var.yres,
            stride: fix.line_length,
        });
    }
    Ok(geometry)
}

impl Framebuffer for LinuxFramebuffer {
    fn name(&self) -> &str {
        &self.name
    }

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn show(&mut self, image: &[u8]) -> io::Result<()> {
        self.file.write_all_at(image, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(bits: u32, rgb: [u32; 3], line_length: u32) -> (VarScreenInfo, FixScreenInfo) {
        let length = if bits == 16 { [5, 6, 5] } else { [8, 8, 8] };
        let field = |i: usize| Bitfield {
            offset: rgb[i],
            length: length[i],
            msb_right: 0,
        };
        let var = VarScreenInfo {
            xres: 800,
            yres: 600,
            bits_per_pixel: bits,
            red: field(0),
            green: field(1),
            blue: field(2),
            ..VarScreenInfo::default()
        };
        let fix = FixScreenInfo {
            visual: FB_VISUAL_TRUECOLOR,
            line_length,
            ..FixScreenInfo::default()
        };
        (var, fix)
    }

    #[test]
    fn the_kernel_structs_have_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<VarScreenInfo>(), 160);
        let fix = if cfg!(target_pointer_width = "64") {
            80
        } else {
            68
        };
        assert_eq!(std::mem::size_of::<FixScreenInfo>(), fix);
    }

    #[test]
    fn rgb565_and_xrgb8888_are_read_with_the_stride_of_the_fixed_info() {
        let (var, fix) = screen(16, [11, 5, 0], 1664);
        let g = geometry("/dev/fb0", &var, &fix).unwrap();
        assert_eq!((g.width, g.height, g.stride), (800, 600, 1664));
        assert_eq!(g.layout, PixelLayout::RGB565);
        let (var, fix) = screen(32, [16, 8, 0], 3200);
        assert_eq!(
            geometry("/dev/fb0", &var, &fix).unwrap().layout,
            PixelLayout::XRGB8888
        );
    }

    #[test]
    fn what_cannot_be_drawn_is_an_error_naming_the_device() {
        let (mut var, fix) = screen(16, [11, 5, 0], 1600);
        var.bits_per_pixel = 8;
        let e = geometry("/dev/fb1", &var, &fix).unwrap_err().to_string();
        assert!(
            e.contains("/dev/fb1") && e.contains("8 bits per pixel"),
            "{e}"
        );
        let (var, mut fix) = screen(32, [16, 8, 0], 3200);
        fix.visual = 3; // pseudocolour: a palette
        let e = geometry("/dev/fb1", &var, &fix).unwrap_err().to_string();
        assert!(e.contains("visual 3"), "{e}");
        let (var, fix) = screen(32, [16, 8, 0], 3000);
        let e = geometry("/dev/fb1", &var, &fix).unwrap_err().to_string();
        assert!(e.contains("3000 bytes per line"), "{e}");
        let e = LinuxFramebuffer::open(Path::new("/nonexistent/fb9"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent/fb9: no such device"), "{e}");
        let e = LinuxFramebuffer::open(Path::new("/dev/null"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/dev/null: not a framebuffer"), "{e}");
    }
}
