//! The HTTPS listener. tiny_http only serves plain TCP, so TLS ends here: an
//! accept thread gives every connection its own thread, which does the
//! handshake and then shuttles the decrypted bytes to an internal tiny_http
//! server on 127.0.0.1. [`Bridges`] tells that server which real client
//! stands behind each bridge connection (and so that it came over TLS).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};

/// TLS connections open at once; more are refused (each holds a thread).
pub const MAX_CONNECTIONS: usize = 64;
/// A client that hasn't finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection with no traffic either way for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Bridge connection's local address → the real client behind it.
#[derive(Default)]
pub struct Bridges {
    clients: Mutex<HashMap<SocketAddr, SocketAddr>>,
}

impl Bridges {
    /// The client a request on the internal server really comes from, given
    /// the request's source address; `None` if it isn't one of our bridges.
    pub fn client(&self, bridge: SocketAddr) -> Option<SocketAddr> {
        self.table().get(&bridge).copied()
    }

    /// Records a bridge until the returned guard is dropped.
    fn register(self: &Arc<Self>, bridge: SocketAddr, client: SocketAddr) -> Registration {
        self.table().insert(bridge, client);
        Registration {
            bridges: self.clone(),
            bridge,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, SocketAddr>> {
        // A panic elsewhere can't leave a half-written map entry: keep going.
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Registration {
    bridges: Arc<Bridges>,
    bridge: SocketAddr,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.bridges.table().remove(&self.bridge);
    }
}

/// Counts a connection thread while it lives.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct TlsListener {
    listener: TcpListener,
    stopping: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener`, bridging each connection to `backend`.
    pub fn start(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        backend: SocketAddr,
        bridges: Arc<Bridges>,
    ) -> io::Result<TlsListener> {
        let stopping = Arc::new(AtomicBool::new(false));
        let accepting = listener.try_clone()?;
        let stop = stopping.clone();
        let acceptor = std::thread::Builder::new()
            .name("https-accept".into())
            .spawn(move || accept_loop(&accepting, &config, backend, &bridges, &stop))?;
        Ok(TlsListener {
            listener,
            stopping,
            acceptor,
        })
    }

    /// Stops accepting; open connections end when the internal server stops.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        // On Linux, shutdown(2) on a listening socket wakes a blocked accept(2).
        // SAFETY: the fd is owned by `self.listener`, alive for this call.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        let _ = self.acceptor.join();
    }
}

fn accept_loop(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    backend: SocketAddr,
    bridges: &Arc<Bridges>,
    stopping: &AtomicBool,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stopping.load(Ordering::SeqCst) {
        let (tcp, client) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) if stopping.load(Ordering::SeqCst) => break,
            Err(e) => {
                // Out of file descriptors, say: don't spin.
                tracing::warn!("https accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("https: {MAX_CONNECTIONS} connections open, refusing {client}");
            continue;
        }
        let slot = Slot(open.clone());
        let (config, bridges) = (config.clone(), bridges.clone());
        let spawned = std::thread::Builder::new()
            .name("https-conn".into())
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = serve_connection(tcp, client, config, backend, &bridges) {
                    tracing::debug!("https {client}: {e}");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("https: no thread for {client}: {e}");
        }
    }
}

fn serve_connection(
    mut tcp: TcpStream,
    client: SocketAddr,
    config: Arc<ServerConfig>,
    backend: SocketAddr,
    bridges: &Arc<Bridges>,
) -> io::Result<()> {
    let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
    handshake(&mut tls, &mut tcp)?;
    let mut inner = TcpStream::connect(backend)?;
    // Registered before any byte goes in, so the request always finds its client.
    let _registration = bridges.register(inner.local_addr()?, client);
    tcp.set_nodelay(true)?;
    inner.set_nodelay(true)?;
    pump(&mut tls, &mut tcp, &mut inner)
}

/// Completes the handshake within [`HANDSHAKE_TIMEOUT`] in all (a client
/// trickling bytes can't stretch it).
fn handshake(tls: &mut ServerConnection, tcp: &mut TcpStream) -> io::Result<()> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while tls.is_handshaking() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?;
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        tls.complete_io(tcp)?;
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)
}

/// Moves bytes both ways until either side closes. One thread polls both
/// sockets: a rustls connection is one state machine for both directions, so
/// two threads would have to share it under a lock and wake each other.
fn pump(tls: &mut ServerConnection, tcp: &mut TcpStream, inner: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    // The handshake may already have read the first request (TLS 1.3 clients
    // send it right behind their Finished): pass it on before waiting for more.
    if !forward_plaintext(tls, inner, &mut buf)? {
        return Ok(());
    }
    loop {
        while tls.wants_write() {
            tls.write_tls(tcp)?;
        }
        let mut fds = [tcp.as_raw_fd(), inner.as_raw_fd()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let timeout = IDLE_TIMEOUT.as_millis() as libc::c_int;
        // SAFETY: `fds` is a valid array of two pollfds for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        match ready {
            0 => return Ok(()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            _ => {}
        }
        if fds[0].revents != 0 && !from_client(tls, tcp, inner, &mut buf)? {
            return Ok(());
        }
        if fds[1].revents != 0 {
            let n = inner.read(&mut buf)?;
            if n == 0 {
                tls.send_close_notify();
                while tls.wants_write() {
                    tls.write_tls(tcp)?;
                }
                return Ok(());
            }
            tls.writer().write_all(&buf[..n])?;
        }
    }
}

/// Decrypts what the client sent and passes it on; false once the client is done.
fn from_client(
    tls: &mut ServerConnection,
    tcp: &mut TcpStream,
    inner: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<bool> {
    if tls.read_tls(tcp)? == 0 {
        return Ok(false);
    }
    if let Err(e) = tls.process_new_packets() {
        // Tell the client why (the alert) before hanging up.
        let _ = tls.write_tls(tcp);
        return Err(io::Error::other(e));
    }
    forward_plaintext(tls, inner, buf)
}

/// Passes every decrypted byte rustls holds to the internal server; false
/// once the client has said close_notify.
fn forward_plaintext(
    tls: &mut ServerConnection,
    inner: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<bool> {
    loop {
        match tls.reader().read(buf) {
            Ok(0) => return Ok(false), // close_notify
            Ok(n) => inner.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_map_to_their_client_only_while_registered() {
        let bridges = Arc::new(Bridges::default());
        let bridge: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let client: SocketAddr = "192.168.1.20:51000".parse().unwrap();
        let registration = bridges.register(bridge, client);
        assert_eq!(bridges.client(bridge), Some(client));
        let other_ip: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        assert_eq!(bridges.client(other_ip), None, "same port, other process");
        assert_eq!(bridges.client("127.0.0.1:40001".parse().unwrap()), None);
        drop(registration);
        assert_eq!(bridges.client(bridge), None);
    }
}
