//! One headless viewer: a str0m client on its own loopback UDP socket and
//! thread, signalling with RTCBot's `POST /connect`, decoding every frame with
//! openh264 and reading the capture stamp back from the decoded luma.
//!
//! Each datagram's arrival time is the kernel's receive timestamp
//! (SO_TIMESTAMPNS, CLOCK_REALTIME), so "capture → received" does not include
//! this client's own scheduling: on loopback it is the server's capture → sent.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openh264::formats::YUVSource;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::quality::Reference;
use crate::stamp;

/// Decoded frames per quality sample: two a second at 30 fps keeps the
/// viewers' own CPU low with ten of them.
const QUALITY_EVERY: usize = 15;

/// One decoded frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameRecord {
    /// When it was decoded (monotonic), to place it in the measurement window.
    pub at: Instant,
    /// Capture → last datagram of the frame received (kernel timestamp), ms.
    pub received_ms: f64,
    /// Capture → decoded by this client, ms.
    pub decoded_ms: f64,
    /// Size of the access unit.
    pub bytes: usize,
    /// Luma PSNR against the frame drawn (camera-like content, sampled frames).
    pub psnr: Option<f64>,
}

#[derive(Debug, Default)]
pub struct ViewerResult {
    pub error: Option<String>,
    /// POST /connect sent → first decoded frame.
    pub first_frame: Option<Duration>,
    pub frames: Vec<FrameRecord>,
    pub decode_errors: u64,
    /// Frames whose stamp gave an implausible latency (corrupt picture).
    pub bad_stamps: u64,
    pub lossy_frames: u64,
    /// Access units received on the other video m-lines (other cameras):
    /// counted, not decoded, so the viewers' cost stays that of one camera.
    pub other_camera_frames: u64,
    /// (receive time, datagram size) of everything received, for the wire rate.
    pub datagrams: Vec<(Instant, u32)>,
}

pub struct ViewerHandle {
    pub first_frame: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<ViewerResult>,
}

impl ViewerHandle {
    pub fn join(self) -> ViewerResult {
        self.thread.join().unwrap_or_else(|_| ViewerResult {
            error: Some("viewer thread panicked".into()),
            ..ViewerResult::default()
        })
    }
}

/// Starts a viewer on its own thread; it runs until `stop` is set.
/// With a `reference`, every `QUALITY_EVERY`th decoded frame is compared with it.
/// The offer has `video_lines` video m-lines (telepi sends camera n on the n-th);
/// only the first is decoded and measured.
pub fn spawn(
    http: SocketAddr,
    stop: Arc<AtomicBool>,
    index: usize,
    reference: Option<Arc<Reference>>,
    video_lines: usize,
) -> ViewerHandle {
    let first_frame = Arc::new(AtomicBool::new(false));
    let flag = first_frame.clone();
    let thread = std::thread::Builder::new()
        .name(format!("viewer-{index}"))
        .spawn(move || {
            let mut result = ViewerResult::default();
            let measured = Measured {
                first_flag: &flag,
                reference: reference.as_deref(),
                video_lines,
            };
            if let Err(e) = run(http, &stop, &measured, &mut result) {
                result.error = Some(e);
            }
            if std::env::var_os("BENCH_DEBUG").is_some() {
                eprintln!(
                    "viewer {index}: {} datagrams, {} frames decoded, {} decode errors, {:?}",
                    result.datagrams.len(),
                    result.frames.len(),
                    result.decode_errors,
                    result.error
                );
            }
            result
        })
        .expect("spawning a viewer thread");
    ViewerHandle {
        first_frame,
        thread,
    }
}

/// What one viewer measures, and where it says so.
struct Measured<'a> {
    first_flag: &'a AtomicBool,
    reference: Option<&'a Reference>,
    video_lines: usize,
}

fn run(
    http: SocketAddr,
    stop: &AtomicBool,
    measured: &Measured,
    result: &mut ViewerResult,
) -> Result<(), String> {
    let Measured {
        first_flag,
        reference,
        video_lines,
    } = *measured;
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    enable_timestamps(&socket)?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
    let mut api = rtc.sdp_api();
    let first_camera = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    for _ in 1..video_lines {
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    }
    api.add_channel("default".into());
    let (offer, pending) = api.apply().ok_or("str0m made no offer")?;

    let body = serde_json::json!({ "type": "offer", "sdp": offer.to_sdp_string() }).to_string();
    let started = Instant::now();
    let (code, answer) = crate::http::request(
        http,
        "POST",
        "/connect",
        Some("application/json"),
        body.as_bytes(),
    )
    .map_err(|e| format!("POST /connect: {e}"))?;
    if code != 200 {
        return Err(format!("POST /connect: {code} {answer}"));
    }
    let answer: serde_json::Value =
        serde_json::from_str(&answer).map_err(|e| format!("answer JSON: {e}"))?;
    let sdp = answer["sdp"].as_str().ok_or("answer without sdp")?;
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!("offer:\n{}\nanswer:\n{sdp}", offer.to_sdp_string());
    }
    let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("answer SDP: {e}"))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| format!("accept answer: {e}"))?;

    let debug = std::env::var_os("BENCH_DEBUG").is_some();
    let mut decoder = openh264::decoder::Decoder::new().map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 2048];
    // Kernel receive time of the last datagram fed to str0m, ns since the epoch.
    let mut last_rx_ns: u128 = wall_ns();
    // As a browser does: until a picture decodes, ask for a keyframe (PLI)
    // whenever media arrives that can't be decoded, at most every 500 ms.
    let mut last_keyframe_request: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        // Drain str0m's output.
        let wake = loop {
            match rtc.poll_output().map_err(|e| format!("str0m: {e}"))? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::MediaData(m)) if m.mid != first_camera => {
                    result.other_camera_frames += 1;
                }
                Output::Event(Event::MediaData(m)) => {
                    if !m.contiguous {
                        result.lossy_frames += 1;
                    }
                    let bytes = m.data.len();
                    let decoded = decoder.decode(&m.data);
                    if result.first_frame.is_none()
                        && !matches!(decoded, Ok(Some(_)))
                        && last_keyframe_request
                            .is_none_or(|t| t.elapsed() >= Duration::from_millis(500))
                    {
                        if let Some(mut writer) = rtc.writer(m.mid) {
                            let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
                        }
                        last_keyframe_request = Some(Instant::now());
                    }
                    match decoded {
                        Ok(Some(yuv)) => {
                            let decoded_ns = wall_ns();
                            let (w, _) = yuv.dimensions();
                            let (stride, _, _) = yuv.strides();
                            let Some(st) = stamp::read_stamp(yuv.y(), w, stride) else {
                                result.bad_stamps += 1;
                                continue;
                            };
                            let received_ms = stamp::latency_ms(st, last_rx_ns);
                            let decoded_ms = stamp::latency_ms(st, decoded_ns);
                            // A corrupt picture reads as a random stamp.
                            if !(-5.0..60_000.0).contains(&received_ms) {
                                result.bad_stamps += 1;
                                continue;
                            }
                            if result.first_frame.is_none() {
                                result.first_frame = Some(started.elapsed());
                                first_flag.store(true, Ordering::SeqCst);
                            }
                            let psnr = reference
                                .filter(|_| result.frames.len().is_multiple_of(QUALITY_EVERY))
                                .and_then(|r| {
                                    let (_, h) = yuv.dimensions();
                                    r.psnr(yuv.y(), w, h, stride)
                                });
                            result.frames.push(FrameRecord {
                                at: Instant::now(),
                                received_ms,
                                decoded_ms,
                                bytes,
                                psnr,
                            });
                        }
                        Ok(None) => {}
                        Err(_) => result.decode_errors += 1,
                    }
                }
                Output::Event(Event::IceConnectionStateChange(
                    str0m::IceConnectionState::Disconnected,
                )) => return Err("ICE disconnected".into()),
                Output::Event(e) => {
                    if debug {
                        eprintln!("viewer {local}: {e:?}");
                    }
                }
            }
        };
        if result.first_frame.is_none() && started.elapsed() > Duration::from_secs(30) {
            return Err("no decoded frame within 30 s".into());
        }
        let now = Instant::now();
        let wait = wake
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        match recv_timestamped(&socket, &mut buf, wait) {
            Ok(Some((n, source, rx_ns))) => {
                last_rx_ns = rx_ns;
                result.datagrams.push((Instant::now(), n as u32));
                let Ok(contents) = buf[..n].try_into() else {
                    continue;
                };
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    },
                );
                rtc.handle_input(input).map_err(|e| format!("str0m: {e}"))?;
            }
            Ok(None) => rtc
                .handle_input(Input::Timeout(Instant::now()))
                .map_err(|e| format!("str0m: {e}"))?,
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    rtc.disconnect();
    while let Ok(Output::Transmit(t)) = rtc.poll_output() {
        let _ = socket.send_to(&t.contents, t.destination);
    }
    Ok(())
}

pub fn wall_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn enable_timestamps(socket: &UdpSocket) -> Result<(), String> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own with a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "SO_TIMESTAMPNS: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Waits up to `timeout` for one datagram; returns its length, source and
/// kernel receive time (ns since the epoch). `None` on timeout.
fn recv_timestamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    timeout: Duration,
) -> std::io::Result<Option<(usize, SocketAddr, u128)>> {
    let fd = socket.as_raw_fd();
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    if ready < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if ready == 0 {
        return Ok(None);
    }
    // SAFETY: zeroed plain-old-data structs, pointers into live local buffers
    // whose sizes are passed alongside.
    unsafe {
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = std::ptr::addr_of_mut!(addr).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(None),
                // ICMP port unreachable from a departed peer: not fatal.
                std::io::ErrorKind::ConnectionRefused => Ok(None),
                _ => Err(e),
            };
        }
        let mut rx_ns = wall_ns();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                rx_ns = ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128;
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        let source = SocketAddr::from((ip, u16::from_be(addr.sin_port)));
        Ok(Some((n as usize, source, rx_ns)))
    }
}
