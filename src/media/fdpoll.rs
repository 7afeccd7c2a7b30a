//! poll(2) on one descriptor, for the blocking readers of pipes and V4L2 devices.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Waits up to `timeout` for `events` on `fd`; returns the events that
/// happened (0 on timeout). Retries when a signal interrupts the wait.
pub fn poll(fd: RawFd, events: i16, timeout: Duration) -> io::Result<i16> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 => return Ok(0),
            _ => return Ok(pfd.revents),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_readiness_and_timeouts() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let quiet = poll(b.as_raw_fd(), libc::POLLIN, Duration::from_millis(10)).unwrap();
        assert_eq!(quiet, 0);
        a.write_all(b"x").unwrap();
        let ready = poll(b.as_raw_fd(), libc::POLLIN, Duration::from_secs(1)).unwrap();
        assert_ne!(ready & libc::POLLIN, 0);
    }
}
