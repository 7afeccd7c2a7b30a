//! The local API's I/O: the Unix listener and one non-blocking stream per
//! program, all on the network loop's thread.
//!
//! Why the loop and not a thread of its own: the API's work is tiny (a few
//! lines per operator command), every message it carries comes from or goes
//! to the [`Session`](crate::session::Session) the loop owns, and
//! doing it here needs no channels or locks between them. What keeps a slow
//! or stuck program from holding the loop up is that nothing here ever
//! blocks: sockets are non-blocking, reads are budgeted per wake, and what a
//! program doesn't read waits in its bounded queue in the core (oldest
//! dropped, counted) rather than anywhere the loop could wait on it.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::task::Poll;
use std::time::Instant;

use smol::Async;

use super::core::{Api, ClientId};

/// Most bytes read from one program per wake, so one flooding program
/// can't hog the loop (the rest is read on the next wake).
const READ_BUDGET: usize = 64 * 1024;
/// Lines are moved from the core's queue into the write buffer up to this size.
const WRITE_CHUNK: usize = 64 * 1024;

struct Conn {
    id: ClientId,
    stream: Async<UnixStream>,
    /// Bytes taken from the core's queue, not yet accepted by the socket.
    unsent: Vec<u8>,
    closed: bool,
}

pub struct ApiSocket {
    path: PathBuf,
    listener: Async<UnixListener>,
    conns: Vec<Conn>,
}

impl ApiSocket {
    /// Binds `path` with file mode `mode` (who may connect). A socket left
    /// behind by a crash is replaced; one somebody still serves, or any other
    /// file, is an error.
    pub fn bind(path: &Path, mode: u32) -> Result<ApiSocket, String> {
        let shown = path.display();
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(format!(
                        "api socket {shown}: another program serves it (a second telepi?)"
                    ));
                }
                std::fs::remove_file(path)
                    .map_err(|e| format!("api socket {shown}: removing the stale socket: {e}"))?;
            }
            Ok(_) => {
                return Err(format!(
                    "api socket {shown}: a file that is not a socket is in the way"
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("api socket {shown}: {e}")),
        }
        let listener = UnixListener::bind(path).map_err(|e| {
            let hint = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => {
                    format!(" (the directory {} does not exist)", dir.display())
                }
                _ => String::new(),
            };
            format!("api socket {shown}: {e}{hint}")
        })?;
        // Until this runs the socket has the umask's mode; connecting needs
        // write permission, which umask 022 or 077 grants nobody but us.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("api socket {shown}: setting mode {mode:o}: {e}"))?;
        let listener = Async::new(listener).map_err(|e| format!("api socket {shown}: {e}"))?;
        Ok(ApiSocket {
            path: path.to_path_buf(),
            listener,
            conns: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves when a program connects, writes, hangs up, or can take more
    /// of what it is owed. Cancel-safe: it only registers interest.
    pub async fn ready(&self) {
        std::future::poll_fn(|cx| {
            let mut ready = self.listener.poll_readable(cx).is_ready();
            for conn in &self.conns {
                ready |= conn.stream.poll_readable(cx).is_ready();
                if !conn.unsent.is_empty() {
                    ready |= conn.stream.poll_writable(cx).is_ready();
                }
            }
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Accepts, reads and writes whatever is ready, without blocking.
    pub fn service(&mut self, now: Instant, api: &mut Api) {
        self.accept(now, api);
        let mut buf = [0u8; 8192];
        for conn in &mut self.conns {
            let mut budget = READ_BUDGET;
            while budget > 0 && !conn.closed {
                match conn.stream.get_ref().read(&mut buf) {
                    Ok(0) => conn.closed = true,
                    Ok(n) => {
                        api.receive(now, conn.id, &buf[..n]);
                        budget = budget.saturating_sub(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!("api: client {}: read: {e}", conn.id);
                        conn.closed = true;
                    }
                }
            }
        }
        self.flush(api);
    }

    /// Writes what the core queued for each program, as far as its socket
    /// takes it now, and forgets the programs that hung up.
    pub fn flush(&mut self, api: &mut Api) {
        for conn in &mut self.conns {
            while conn.unsent.len() < WRITE_CHUNK {
                let Some(line) = api.pop_line(conn.id) else {
                    break;
                };
                conn.unsent.extend_from_slice(line.as_bytes());
                conn.unsent.push(b'\n');
            }
            while !conn.unsent.is_empty() && !conn.closed {
                match conn.stream.get_ref().write(&conn.unsent) {
                    Ok(n) => {
                        conn.unsent.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!("api: client {}: write: {e}", conn.id);
                        conn.closed = true;
                    }
                }
            }
        }
        for conn in self.conns.iter().filter(|c| c.closed) {
            api.disconnect(conn.id);
        }
        self.conns.retain(|c| !c.closed);
    }

    fn accept(&mut self, now: Instant, api: &mut Api) {
        loop {
            let stream = match self.listener.get_ref().accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors, say: the next wake tries again.
                    tracing::warn!("api: accept on {}: {e}", self.path.display());
                    return;
                }
            };
            match api.connect(now) {
                Ok(id) => match Async::new(stream) {
                    Ok(stream) => self.conns.push(Conn {
                        id,
                        stream,
                        unsent: Vec::new(),
                        closed: false,
                    }),
                    Err(e) => {
                        tracing::warn!("api: client {id}: {e}");
                        api.disconnect(id);
                    }
                },
                // Best effort: the refusal fits any socket buffer.
                Err(refusal) => {
                    let _ = stream.set_nonblocking(true);
                    let _ = (&stream).write_all(format!("{refusal}\n").as_bytes());
                }
            }
        }
    }
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
