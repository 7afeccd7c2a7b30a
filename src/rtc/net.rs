//! The one UDP socket, and the local addresses we advertise as ICE candidates.
//!
//! Bound to a wildcard address on a multi-homed Pi (Wi-Fi + Ethernet), str0m
//! must be told the exact address each datagram arrived on (it drops STUN for
//! unknown destinations), so we read it from IP_PKTINFO and send replies from
//! the same address.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Binds the socket with large buffers (keyframe bursts to many peers) and,
/// when bound to 0.0.0.0, per-packet destination reporting.
pub fn bind(addr: SocketAddr) -> io::Result<RtcSocket> {
    let SocketAddr::V4(_) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the RTC socket must be IPv4",
        ));
    };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let socket: UdpSocket = socket.into();
    if addr.ip().is_unspecified() {
        set_pktinfo(&socket)?;
    }
    let local = socket.local_addr()?;
    Ok(RtcSocket { socket, local })
}

/// The UDP socket with its bound address remembered: asking the kernel
/// (getsockname) per datagram was a fifth of all syscalls at ten viewers.
pub struct RtcSocket {
    socket: UdpSocket,
    local: SocketAddr,
}

impl AsFd for RtcSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl RtcSocket {
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Receives one datagram: (length, source, destination). The destination is
    /// the address the packet was sent to, or the bound address if that is specific.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        recv(&self.socket, self.local, buf)
    }

    /// Sends `data` to `destination` from the local address `source` (which
    /// matters on a wildcard-bound socket of a multi-homed host).
    pub fn send(&self, source: SocketAddr, destination: SocketAddr, data: &[u8]) -> io::Result<()> {
        if self.local.ip().is_unspecified() {
            send_from(&self.socket, source, destination, data)
        } else {
            self.socket.send_to(data, destination).map(|_| ())
        }
    }
}

fn set_pktinfo(socket: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: valid fd, option value points to a c_int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn recv(
    socket: &UdpSocket,
    local: SocketAddr,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, SocketAddr)> {
    // SAFETY: all-zero is a valid bit pattern for these C structs.
    let mut source: libc::sockaddr_in = unsafe { zeroed() };
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut source as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;
    // SAFETY: msg points at live buffers of the sizes given above.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let source = SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(source.sin_addr.s_addr)),
        u16::from_be(source.sin_port),
    ));
    let mut destination = local;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IP && (*cmsg).cmsg_type == libc::IP_PKTINFO {
                let info = libc::CMSG_DATA(cmsg) as *const libc::in_pktinfo;
                let ip = Ipv4Addr::from(u32::from_be((*info).ipi_addr.s_addr));
                destination = SocketAddr::new(IpAddr::V4(ip), local.port());
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, source, destination))
}

/// sendmsg with IP_PKTINFO naming the source address.
fn send_from(
    socket: &UdpSocket,
    source: SocketAddr,
    destination: SocketAddr,
    data: &[u8],
) -> io::Result<()> {
    let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (source, destination) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "IPv6 is not supported",
        ));
    };
    // SAFETY: all-zero is a valid bit pattern for these C structs.
    let mut to: libc::sockaddr_in = unsafe { zeroed() };
    to.sin_family = libc::AF_INET as libc::sa_family_t;
    to.sin_port = dst.port().to_be();
    to.sin_addr.s_addr = u32::from(*dst.ip()).to_be();
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut to as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: one IP_PKTINFO control message fits the 64-byte buffer.
    unsafe {
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::IPPROTO_IP;
        (*cmsg).cmsg_type = libc::IP_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
        let info = libc::CMSG_DATA(cmsg) as *mut libc::in_pktinfo;
        *info = zeroed();
        (*info).ipi_spec_dst.s_addr = u32::from(*src.ip()).to_be();
        if libc::sendmsg(socket.as_raw_fd(), &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The addresses to advertise for a socket bound to `bound`: itself if specific,
/// else every IPv4 address of every interface that is up (loopback last, so
/// remote browsers try real interfaces first).
pub fn candidate_addrs(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let mut addrs: Vec<SocketAddr> = interface_ipv4s()
        .into_iter()
        .filter(|ip| !ip.is_link_local() && !ip.is_unspecified())
        .map(|ip| SocketAddr::new(IpAddr::V4(ip), bound.port()))
        .collect();
    addrs.sort_by_key(|a| a.ip().is_loopback());
    addrs.dedup();
    addrs
}

/// Whether `ip` is still an address of this host: a connection from an
/// address that went away (Wi-Fi rejoined, DHCP gave another one) is dead
/// even though its socket does not say so yet.
pub fn is_host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || interface_ipv4s().contains(&v4),
        // Not listed by interface_ipv4s: assume it stays.
        IpAddr::V6(_) => true,
    }
}

fn interface_ipv4s() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            tracing::warn!("getifaddrs: {}", io::Error::last_os_error());
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & libc::IFF_UP as libc::c_uint != 0;
            if up
                && !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// A datagram from the socket as str0m input; `None` if str0m cannot take
/// it (too large or empty).
pub fn udp_input(
    now: std::time::Instant,
    source: SocketAddr,
    destination: SocketAddr,
    data: &[u8],
) -> Option<str0m::Input<'_>> {
    let contents = data.try_into().ok()?;
    let receive = str0m::net::Receive {
        proto: str0m::net::Protocol::Udp,
        source,
        destination,
        contents,
    };
    Some(str0m::Input::Receive(now, receive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_bind_advertises_itself_only() {
        let a: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(candidate_addrs(a), vec![a]);
    }

    #[test]
    fn wildcard_bind_lists_interfaces_with_loopback_last() {
        let addrs = candidate_addrs("0.0.0.0:50000".parse().unwrap());
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
        assert!(addrs.last().unwrap().ip().is_loopback());
        assert!(addrs.iter().all(|a| a.port() == 50000));
    }

    #[test]
    fn wildcard_socket_reports_the_real_destination_and_replies_from_it() {
        let server = bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = server.local_addr().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        client.send_to(b"hi", target).unwrap();
        let mut buf = [0u8; 16];
        let (n, source, destination) = loop {
            match server.recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(source, client.local_addr().unwrap());
        assert_eq!(
            destination, target,
            "pktinfo gives the address, not 0.0.0.0"
        );
        server.send(destination, source, b"yo").unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"yo"[..], target));
    }
}
