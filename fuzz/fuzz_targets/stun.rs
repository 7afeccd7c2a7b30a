//! The robot's STUN client (`telepi::rtc::nat::stun::StunClient`) on arbitrary
//! answers from the servers it asked, and from strangers.
//!
//! Input: records of a flags byte, a length byte and that many bytes of
//! datagram. Flags: bit 0 keeps the datagram's own transaction id (else the
//! pending request's id is written into bytes 8..20, so answers get past the
//! id check), bits 1-2 pick the source (the pending server, the other
//! server, a stranger), bits 3-7 let time pass (x 100 ms) first.
//!
//! Properties: only the asked server's answers are taken; a learned address
//! is IPv4 with the receiving address as its base; a request always goes to a
//! configured server and is a 20-byte Binding request.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use telepi::rtc::nat::stun::StunClient;

fuzz_target!(|data: &[u8]| {
    let servers: [SocketAddr; 2] = [
        "198.51.100.1:3478".parse().unwrap(),
        "198.51.100.2:3478".parse().unwrap(),
    ];
    let stranger: SocketAddr = "203.0.113.9:3478".parse().unwrap();
    let local: SocketAddr = "192.168.1.20:50000".parse().unwrap();
    let mut now = Instant::now();
    let mut stun = StunClient::new(now);
    stun.set_servers(now, servers.to_vec());
    // (server, transaction id) of the request in flight.
    let mut pending: Option<(SocketAddr, [u8; 12])> = None;

    let mut rest = data;
    while let [flags, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(take);
        rest = next;

        now += Duration::from_millis(100 * u64::from(flags >> 3));
        stun.handle_timeout(now);
        while let Some((to, request)) = stun.poll_transmit() {
            assert!(servers.contains(&to), "request to {to}");
            assert_eq!(&request[0..2], &[0, 1], "not a Binding request");
            assert_eq!(&request[2..4], &[0, 0], "a request without attributes");
            pending = Some((to, request[8..20].try_into().unwrap()));
        }
        if let Some(at) = stun.next_timeout() {
            assert!(
                at > now,
                "handle_timeout left a timeout that is already due"
            );
        }

        let mut datagram = datagram.to_vec();
        if let (Some((_, id)), true) = (pending, flags & 1 == 0 && datagram.len() >= 20) {
            datagram[8..20].copy_from_slice(&id);
        }
        let source = match (flags >> 1) & 3 {
            0 | 3 => pending.map_or(servers[0], |(s, _)| s),
            1 => pending.map_or(servers[1], |(s, _)| {
                if s == servers[0] {
                    servers[1]
                } else {
                    servers[0]
                }
            }),
            _ => stranger,
        };
        let taken = stun.receive(now, source, local, &datagram);
        if taken {
            let (server, id) = pending.take().expect("an answer without a request");
            assert_eq!(source, server, "took an answer from another address");
            assert_eq!(datagram[8..20], id, "took an answer to another transaction");
        }
        if let Some(r) = stun.reflexive() {
            assert!(r.mapped.is_ipv4(), "{r:?}");
            assert_eq!(r.base, local);
        }
    }
});
