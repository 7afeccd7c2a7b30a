//! `telepi`: wires the modules together. All behaviour lives in the library.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use telepi::access::Access;
use telepi::api::LocalApi;
use telepi::broker::client::BrokerClient;
use telepi::config::{self, Action, Config};
use telepi::drive::Drive;
use telepi::http::cert::Identity;
use telepi::http::{Context, HttpServer, Https};
use telepi::media::display::{self, Display};
use telepi::media::pipeline::Pipeline;
use telepi::media::record::{RecordWhen, RecordedCamera, RecordingService};
use telepi::media::{audio, devices, select};
use telepi::metrics::HttpCounts;
use telepi::rtc::hub::{Hub, HubConfig};
use telepi::rtc::layers::{LayerConfig, LayerPicker, Limits};
use telepi::rtc::nat::turn_check;
use telepi::rtc::publish::client::HttpWorkers;
use telepi::rtc::publish::{self, Destination, Publishers, Timing};
use telepi::rtc::server::{CameraLinks, MediaLinks, RtcServer};
use telepi::rtc::{ice, net};
use telepi::session::Session;

fn main() -> ExitCode {
    init_logging();
    let result = match config::from_args(std::env::args().skip(1)) {
        Ok(Action::Help) => {
            print!("{}", config::USAGE);
            Ok(())
        }
        Ok(Action::ListBoards) => {
            for (name, _) in config::BOARDS {
                println!("{name}");
            }
            Ok(())
        }
        Ok(Action::ListDevices) => {
            print!("{}", devices::list_devices());
            Ok(())
        }
        Ok(Action::ExportPage(dir)) => telepi::http::export_page(&dir)
            .map(|()| {
                println!(
                    "wrote the page to {}: open {}/index.html?broker=ws://HOST:PORT",
                    dir.display(),
                    dir.display()
                )
            })
            .map_err(|e| format!("export-page {}: {e}", dir.display())),
        Ok(Action::Version) => {
            println!("telepi {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Action::Run(config)) => run(&config),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telepi: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Each module's error in its words. Not `Box<dyn Error>`: its vtables kept
/// every error type's `Debug` (and their sources') in the binary, 16 KB on
/// x86_64 (docs/benchmarks.md).
fn run(config: &Config) -> Result<(), String> {
    // First, so a bad certificate stops us before anything else starts.
    let https = match config.https.listen {
        None => None,
        Some(listen) => {
            let (cert, key) = (config.https.cert.as_deref(), config.https.key.as_deref());
            let identity = Identity::load(cert, key, || config.state_dir())
                .map_err(|e| format!("https: {e}"))?;
            Some(Https { listen, identity })
        }
    };
    let socket =
        net::bind(config.rtc.listen).map_err(|e| format!("udp {}: {e}", config.rtc.listen))?;
    let videos = select::open_cameras(config.cameras())?;
    let pipelines: Vec<Pipeline> = config
        .cameras()
        .zip(videos)
        .map(|(camera, (source, encoder))| {
            let low = (encoder.as_deref()).and_then(|main| select::open_low_encoder(camera, main));
            Pipeline::spawn(source, encoder, camera.keyframe_interval(), low)
        })
        .collect();
    if pipelines.is_empty() {
        return Err("no camera configured".into());
    }
    // A peer's link carries every camera it asked for.
    let hub = Hub::new(HubConfig {
        max_peers: config.rtc.max_peers,
        silence_timeout: config.rtc.peer_timeout(),
        min_bitrate: config.cameras().map(|c| c.min_bitrate).sum(),
        max_bitrate: config.cameras().map(|c| c.bitrate).sum(),
        congestion_control: config.rtc.congestion_control,
        ..HubConfig::default()
    });
    let (drive, motor_port) = Drive::open(&config.drive).map_err(|e| format!("motors: {e}"))?;
    let controls = Arc::new(config.checked_controls()?);
    let api = LocalApi::open(
        &config.api,
        drive.backend_name(),
        controls.clone(),
        motor_port,
    )?;
    let session = Session::new(Instant::now(), &config.control, drive)
        .with_controls(controls.clone())
        .with_cameras(config.cameras().map(|c| c.name.clone()).collect());
    let audio = audio::open(&config.audio).map_err(|e| e.to_string())?;
    let record_audio = config.record.audio && audio.shared.source.is_some();
    let recorder = RecordingService::start(
        config.record_dir(),
        config.record.limits(),
        record_audio,
        config
            .cameras()
            .map(|c| RecordedCamera {
                name: c.name.clone(),
                always: c.record == RecordWhen::Always,
            })
            .collect(),
    )
    .map_err(|e| e.to_string())?;
    if config.record.always {
        recorder
            .recordings
            .set_recording(true)
            .map_err(|e| e.to_string())?;
    }
    let cameras = config
        .cameras()
        .zip(&pipelines)
        .map(|(camera, pipeline)| CameraLinks {
            name: camera.name.clone(),
            video: pipeline.shared.clone(),
            frames: pipeline.frames.clone(),
            low_frames: pipeline.low_frames.clone(),
            layers: LayerPicker::new(LayerConfig {
                main: Limits {
                    min: camera.min_bitrate,
                    max: camera.bitrate,
                },
                // Without estimates nobody could be placed on a layer.
                low: (pipeline.shared.low.as_ref())
                    .filter(|_| config.rtc.congestion_control)
                    .map(|_| {
                        let (min, max) = camera.low_bitrate_range();
                        Limits { min, max }
                    }),
            }),
        })
        .collect();
    let display = match (config.display_shows()?, &config.display.device) {
        (Some(show), Some(device)) => Some(Arc::new(Display::start(
            display::open_framebuffer(device).map_err(|e| e.to_string())?,
            show,
            display::IDLE_CLEAR,
        ))),
        _ => None,
    };
    let media = MediaLinks {
        cameras,
        audio: audio.shared.clone(),
        microphone: audio.packets.clone(),
        talkback: audio.talkback.clone(),
        recordings: recorder.recordings.clone(),
        display,
    };
    let (server, robot) = RtcServer::new(socket, config.rtc.public_addr, hub, session, api, media)
        .map_err(|e| e.to_string())?;
    let destinations = config.publish_destinations()?;
    let whip = HttpWorkers::new(
        publish::tls_for(&destinations).map_err(|e| format!("[[publish]] https: {e}"))?,
    );
    let server = server.with_publishers(publish_to(config, destinations), whip);
    ice::spawn_stun_resolver(config.rtc.ice_servers.clone(), robot.clone());
    turn_check::spawn(&config.rtc);
    let access = Arc::new(Access::new(
        config.access.viewer_password.clone(),
        config.control.operator_secret.clone(),
    ));
    let broker = BrokerClient::start(&config.broker, &config.rtc, robot.clone(), access.clone())
        .map_err(|e| e.to_string())?;
    let context = Arc::new(Context {
        robot: robot.clone(),
        cameras: config
            .cameras()
            .zip(&pipelines)
            .map(|(camera, pipeline)| (camera.name.clone(), pipeline.shared.clone()))
            .collect(),
        rtc: config.rtc.clone(),
        access,
        broker: broker.as_ref().map(|b| b.stats.clone()),
        controls,
        recordings: recorder.recordings.clone(),
        http_counts: HttpCounts::default(),
    });
    if let Some(https) = &https {
        let origin = if https.identity.self_signed {
            "self-signed, kept in"
        } else {
            "from"
        };
        tracing::info!(
            "https://{} (certificate SHA-256 {}; {origin} {})",
            https.listen,
            https.identity.fingerprint,
            https.identity.cert_path.display()
        );
    }
    let http = HttpServer::start(config.http.listen, config.http.plain, https, context)
        .map_err(|e| e.to_string())?;
    tracing::info!(
        "telepi {}: {}; rtc udp {}",
        env!("CARGO_PKG_VERSION"),
        config.http.describe_plain(),
        config.rtc.listen,
    );
    for (camera, pipeline) in config.cameras().zip(&pipelines) {
        let source = &pipeline.shared.source;
        tracing::info!(
            "camera {}: video {}x{}@{} from {} via {}",
            camera.name,
            source.width,
            source.height,
            source.fps,
            source.name,
            pipeline.shared.encoder
        );
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("signals: {e}"))?;
    let signal_robot = robot.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!(signal, "shutting down");
            signal_robot.shutdown();
        }
    });
    server.run();
    if let Some(broker) = broker {
        broker.stop();
    }
    http.stop();
    // The recorder first: it writes the last fragment and closes the file.
    drop(recorder);
    drop(pipelines);
    drop(audio);
    Ok(())
}

/// The `[[publish]]` destinations, each one more consumer of its camera's encode.
fn publish_to(config: &Config, destinations: Vec<Destination>) -> Publishers {
    for d in &destinations {
        tracing::info!(url = %d.url, camera = d.camera, audio = d.audio, "will publish over WHIP");
    }
    let cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .expect("the aws-lc-rs provider generates DTLS certificates");
    let timing = Timing {
        min_bitrate: config.cameras().map(|c| c.min_bitrate).sum(),
        max_bitrate: config.cameras().map(|c| c.bitrate).sum(),
        ..Timing::default()
    };
    Publishers::new(destinations, timing, cert, Instant::now())
}

fn init_logging() {
    let level = std::env::var("TELEPI_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing::Level::INFO);
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
