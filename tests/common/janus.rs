//! Janus's plain HTTP API and VideoRoom subscribers: a str0m answerer per
//! subscriber on its own thread, decoding only until it has seen one
//! picture's size, then counting frames (a busy 2-core machine decoding 20
//! streams would lose packets and ask for keyframes).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openh264::formats::YUVSource;
use serde_json::{json, Value};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{header, request_full};

pub struct Janus {
    pub api: SocketAddr,
}

impl Janus {
    /// A POST to the API; `None` if Janus does not answer.
    pub fn call(&self, path: &str, mut body: Value) -> Option<Value> {
        body["transaction"] = json!(format!("t{}", rand_u32()));
        let headers = [("Content-Type", "application/json")];
        self.send("POST", path, &headers, body.to_string().as_bytes())
    }

    /// Janus answers chunked: the body de-chunked, as JSON.
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Value> {
        let (_, response_headers, mut text) = request_full(self.api, method, path, headers, body)?;
        if header(&response_headers, "transfer-encoding") == Some("chunked") {
            let mut plain = String::new();
            let mut rest = text.as_str();
            while let Some((size, after)) = rest.split_once("\r\n") {
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                if size == 0 || after.len() < size {
                    break;
                }
                plain.push_str(&after[..size]);
                rest = after[size..].trim_start_matches("\r\n");
            }
            text = plain;
        }
        serde_json::from_str(&text).ok()
    }

    pub fn is_up(&self) -> bool {
        self.send("GET", "/janus/info", &[], b"").is_some()
    }

    /// A session with the VideoRoom plugin attached: (session, handle).
    pub fn attach(&self) -> (u64, u64) {
        let session = self
            .call("/janus", json!({"janus": "create"}))
            .expect("create");
        let session = session["data"]["id"].as_u64().expect("session id");
        let attach = json!({"janus": "attach", "plugin": "janus.plugin.videoroom"});
        let handle = self
            .call(&format!("/janus/{session}"), attach)
            .expect("attach");
        (session, handle["data"]["id"].as_u64().expect("handle id"))
    }

    /// A message to the plugin; the synchronous reply.
    pub fn message(&self, session: u64, handle: u64, body: Value, jsep: Option<Value>) -> Value {
        let mut message = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        self.call(&format!("/janus/{session}/{handle}"), message)
            .expect("janus answers")
    }

    /// The publishers' feed ids in `room`.
    pub fn publishers(&self, room: u64) -> Vec<u64> {
        let (session, handle) = self.attach();
        let body = json!({"request": "listparticipants", "room": room});
        let reply = self.message(session, handle, body, None);
        let list = reply["plugindata"]["data"]["participants"]
            .as_array()
            .cloned();
        (list.unwrap_or_default().iter())
            .filter(|p| p["publisher"] == true)
            .filter_map(|p| p["id"].as_u64())
            .collect()
    }

    /// The next event on `session`'s long poll that carries a JSEP.
    fn wait_for_jsep(&self, session: u64, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let path = format!("/janus/{session}?maxev=1&rid={}", rand_u32());
            let Some(event) = self.send("GET", &path, &[], b"") else {
                continue;
            };
            if event["jsep"].is_object() {
                return Some(event["jsep"].clone());
            }
        }
        None
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() as u32
}

/// What a subscriber thread reports.
#[derive(Default)]
pub struct Seen {
    pub frames: AtomicUsize,
    pub size: Mutex<Option<(usize, usize)>>,
    pub connected: AtomicBool,
}

/// One VideoRoom subscriber, running until dropped.
pub struct Subscriber {
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Joins `feed` in `room`, answering Janus's offer from a socket on `ip`.
    pub fn join(janus: &Janus, room: u64, feed: u64, ip: &str) -> Subscriber {
        let (session, handle) = janus.attach();
        let join = json!({"request": "join", "ptype": "subscriber", "room": room,
            "streams": [{"feed": feed}]});
        janus.message(session, handle, join, None);
        let offer = janus
            .wait_for_jsep(session, Duration::from_secs(10))
            .expect("Janus's offer for the subscriber");
        let socket = UdpSocket::bind(format!("{ip}:0")).unwrap();
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(4 << 20);
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let offer = SdpOffer::from_sdp_string(offer["sdp"].as_str().unwrap()).unwrap();
        let answer = rtc.sdp_api().accept_offer(offer).unwrap().to_sdp_string();
        let jsep = json!({"type": "answer", "sdp": answer});
        janus.message(session, handle, json!({"request": "start"}), Some(jsep));
        let trickle = json!({"janus": "trickle", "candidate": {"completed": true}});
        janus.call(&format!("/janus/{session}/{handle}"), trickle);
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_seen, thread_stop) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            run(rtc, socket, local, &thread_seen, &thread_stop);
        });
        Subscriber {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn frames(&self) -> usize {
        self.seen.frames.load(Ordering::Relaxed)
    }

    pub fn size(&self) -> Option<(usize, usize)> {
        *self.seen.size.lock().unwrap()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut rtc: Rtc, socket: UdpSocket, local: SocketAddr, seen: &Seen, stop: &AtomicBool) {
    let mut decoder = Some(openh264::decoder::Decoder::new().unwrap());
    let mut buf = vec![0u8; 2000];
    while !stop.load(Ordering::Relaxed) && rtc.is_alive() {
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::Connected)) => {
                    seen.connected.store(true, Ordering::Relaxed)
                }
                Ok(Output::Event(Event::MediaData(m))) if m.params.spec().codec == Codec::H264 => {
                    seen.frames.fetch_add(1, Ordering::Relaxed);
                    // One picture's size is all we check; then stop decoding.
                    let decoded = decoder
                        .as_mut()
                        .and_then(|d| d.decode(&m.data).ok().flatten());
                    if let Some(yuv) = decoded {
                        let (w, h) = yuv.dimensions();
                        *seen.size.lock().unwrap() = Some((w, h));
                        decoder = None;
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        };
        let wait = timeout.saturating_duration_since(Instant::now());
        let wait = wait.clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait)).unwrap();
        let input = match socket.recv_from(&mut buf) {
            Ok((n, source)) => match buf[..n].try_into() {
                Ok(contents) => Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    },
                ),
                Err(_) => continue,
            },
            Err(_) => Input::Timeout(Instant::now()),
        };
        if rtc.handle_input(input).is_err() {
            return;
        }
    }
}
