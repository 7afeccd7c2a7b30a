//! docs/benchmarks.md (the part between the bench markers) and the SVG plots,
//! from the JSON of `telepi-bench run` and of bench/browser/latency.mjs.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::svg::{Chart, Series};

pub const BEGIN: &str = "<!-- bench:begin -->";
pub const END: &str = "<!-- bench:end -->";

pub struct Inputs {
    pub run: Value,
    pub chromium: Option<Value>,
    pub command: String,
    pub telepi_bin: PathBuf,
    pub venv: PathBuf,
    pub plots: PathBuf,
}

const SERVERS: [&str; 3] = ["telepi", "baseline", "gstreamer"];
const FRAME_INTERVAL_MS: f64 = 1000.0 / 30.0;
/// 30 MB (decimal) in KiB.
const RSS_TARGET_KIB: f64 = 30e6 / 1024.0;

/// Median over rounds of a numeric field of the (server, viewers) scenarios.
fn metric(run: &Value, server: &str, viewers: u64, path: &[&str]) -> Option<f64> {
    let mut v: Vec<f64> = run["scenarios"]
        .as_array()?
        .iter()
        .filter(|s| s["server"] == server && s["viewers"] == viewers)
        .filter_map(|s| path.iter().fold(s, |v, k| &v[*k]).as_f64())
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

fn first_scenario<'a>(run: &'a Value, server: &str, viewers: u64) -> Option<&'a Value> {
    run["scenarios"]
        .as_array()?
        .iter()
        .find(|s| s["server"] == server && s["viewers"] == viewers)
}

fn viewer_counts(run: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = run["scenarios"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["viewers"].as_u64()).collect())
        .unwrap_or_default();
    v.sort_unstable();
    v.dedup();
    v
}

fn servers_present(run: &Value) -> Vec<&'static str> {
    SERVERS
        .into_iter()
        .filter(|name| {
            run["scenarios"]
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s["server"] == *name))
        })
        .collect()
}

/// A server's column heading.
fn title(server: &str) -> &str {
    match server {
        "baseline" => "baseline (aiortc)",
        "gstreamer" => "GStreamer (webrtcbin)",
        other => other,
    }
}

fn color(server: &str) -> &'static str {
    match server {
        "telepi" => "#1f6fb4",
        "gstreamer" => "#2e9a47",
        _ => "#e0701e",
    }
}

fn f(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "–".into(),
    }
}

fn mib(kib: Option<f64>) -> String {
    f(kib.map(|k| k / 1024.0), 1)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.abs() > 1e-12 && a.is_finite() && b.is_finite() => {
            format!("{:.2}×", a / b)
        }
        _ => "–".into(),
    }
}

pub fn write(inputs: &Inputs, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(&inputs.plots).map_err(|e| e.to_string())?;
    let plots = plots(inputs)?;
    let section = markdown(inputs, out, &plots);
    let existing = std::fs::read_to_string(out).unwrap_or_default();
    let doc = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let rest = existing[e + END.len()..].trim_start_matches('\n');
            let gap = if rest.is_empty() { "" } else { "\n" };
            format!("{}{section}{gap}{rest}", &existing[..b])
        }
        _ => format!("# Benchmarks\n\n{section}\n"),
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(out, doc).map_err(|e| format!("{}: {e}", out.display()))
}

/// Writes the SVGs; returns their paths relative to the markdown file.
fn plots(inputs: &Inputs) -> Result<Vec<(String, String)>, String> {
    let run = &inputs.run;
    let counts = viewer_counts(run);
    let servers = servers_present(run);
    let xt = Some(counts.iter().map(|&n| n as f64).collect::<Vec<_>>());
    let per_viewer = |path: &[&str], scale: f64| -> Vec<Series> {
        servers
            .iter()
            .map(|s| Series {
                label: s.to_string(),
                color: color(s),
                dash: "",
                points: counts
                    .iter()
                    .filter_map(|&n| metric(run, s, n, path).map(|v| (n as f64, v * scale)))
                    .collect(),
            })
            .collect()
    };
    let mut charts = vec![
        (
            "bench-cpu.svg",
            "Server CPU vs viewers",
            Chart {
                title: "Server CPU while streaming (lower is better)".into(),
                x_label: "viewers".into(),
                y_label: "CPU seconds per second (cores)".into(),
                log_x: false,
                x_ticks: xt.clone(),
                y_min: Some(0.0),
                y_max: None,
                series: per_viewer(&["cpu"], 1.0),
            },
        ),
        (
            "bench-rss.svg",
            "Server RSS vs viewers",
            Chart {
                title: "Server memory while streaming (VmRSS, median)".into(),
                x_label: "viewers".into(),
                y_label: "MiB".into(),
                log_x: false,
                x_ticks: xt,
                y_min: Some(0.0),
                y_max: None,
                series: per_viewer(&["rss_steady_kib"], 1.0 / 1024.0),
            },
        ),
    ];
    // CPU relative to the fewest viewers: how the cost grows per viewer.
    let lo = counts.first().copied().unwrap_or(1);
    let mut scaling: Vec<Series> = servers
        .iter()
        .map(|s| {
            let base = metric(run, s, lo, &["cpu"]);
            Series {
                label: s.to_string(),
                color: color(s),
                dash: "",
                points: counts
                    .iter()
                    .filter_map(|&n| {
                        Some((
                            n as f64,
                            metric(run, s, n, &["cpu"])? / base.filter(|b| *b > 0.0)?,
                        ))
                    })
                    .collect(),
            }
        })
        .collect();
    scaling.push(Series {
        label: "target for telepi (1.3×)".into(),
        color: "#888",
        dash: "5 4",
        points: vec![
            (lo as f64, 1.3),
            (counts.last().copied().unwrap_or(lo) as f64, 1.3),
        ],
    });
    charts.insert(
        1,
        (
            "bench-cpu-scaling.svg",
            "Server CPU relative to one viewer",
            Chart {
                title: format!("Server CPU relative to {lo} viewer"),
                x_label: "viewers".into(),
                y_label: format!("CPU / CPU at {lo} viewer"),
                log_x: false,
                x_ticks: Some(counts.iter().map(|&n| n as f64).collect()),
                y_min: Some(0.0),
                y_max: None,
                series: scaling,
            },
        ),
    );
    let dashes = ["", "7 4", "2 3", "10 3 2 3"];
    for (file, field, what) in [
        (
            "bench-latency.svg",
            "latency_received_ms",
            "capture → received",
        ),
        (
            "bench-latency-decoded.svg",
            "latency_decoded_ms",
            "capture → decoded",
        ),
    ] {
        let mut series = Vec::new();
        for s in &servers {
            for (i, &n) in counts.iter().enumerate() {
                let Some(pct) =
                    first_scenario(run, s, n).and_then(|sc| sc[field]["percentiles"].as_array())
                else {
                    continue;
                };
                series.push(Series {
                    label: format!("{s}, {n} viewer{}", if n == 1 { "" } else { "s" }),
                    color: color(s),
                    dash: dashes[i.min(dashes.len() - 1)],
                    points: pct
                        .iter()
                        .enumerate()
                        .filter_map(|(p, v)| v.as_f64().map(|v| (v.max(0.1), p as f64 / 100.0)))
                        .collect(),
                });
            }
        }
        charts.push((
            file,
            what,
            Chart {
                title: format!("Per-frame latency, {what} (CDF, all viewers)"),
                x_label: "ms (log scale)".into(),
                y_label: "fraction of frames".into(),
                log_x: true,
                x_ticks: None,
                y_min: Some(0.0),
                y_max: Some(1.0),
                series,
            },
        ));
    }
    let mut written = Vec::new();
    for (file, alt, chart) in charts {
        let path = inputs.plots.join(file);
        std::fs::write(&path, chart.render()).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push((alt.to_string(), file.to_string()));
    }
    Ok(written)
}

fn markdown(inputs: &Inputs, out: &Path, plots: &[(String, String)]) -> String {
    let run = &inputs.run;
    let m = &run["machine"];
    let counts = viewer_counts(run);
    let servers = servers_present(run);
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "<!-- Generated by `telepi-bench report`; bench/run.sh rewrites everything between the bench markers. -->\n"
    );
    let _ = writeln!(s, "### Machine and run\n");
    let _ = writeln!(
        s,
        "- {} logical CPUs (`nproc`), {}, {:.1} GiB RAM, Linux {} ({}), {}",
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or("unknown CPU"),
        m["mem_total_kib"].as_f64().unwrap_or(0.0) / 1024.0 / 1024.0,
        m["kernel"].as_str().unwrap_or("?"),
        m["arch"].as_str().unwrap_or("?"),
        m["rustc"].as_str().unwrap_or("rustc ?"),
    );
    if let Some(c) = m["telepi_commit"].as_str() {
        let _ = writeln!(
            s,
            "- telepi at commit `{c}`{}",
            if c.ends_with("-dirty") {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
    }
    if let Some(b) = run["baseline_versions"].as_str() {
        let _ = writeln!(s, "- baseline: {b}");
    }
    if let Some(g) = run["gstreamer_versions"].as_str() {
        let _ = writeln!(s, "- GStreamer peer: {g}");
    }
    let cfg = &run["config"];
    let _ = writeln!(
        s,
        "- {} UTC; video {}, {}; per scenario a fresh server, {} s idle, all viewers join at once, {} s warm-up after the last first frame, then a {} s window{}",
        m["date_utc"].as_str().unwrap_or("?"),
        cfg["video"].as_str().unwrap_or("?"),
        match cfg["content"].as_str() {
            Some("camera") => "camera-like content (a panning scene with sensor noise, `[video] pattern = \"camera\"`)",
            _ => "the colour-bar test pattern",
        },
        cfg["idle"].as_f64().map_or("2".into(), |v| v.to_string()),
        cfg["warmup"],
        cfg["seconds"],
        match cfg["repeat"].as_u64() {
            Some(r) if r > 1 => format!("; {r} rounds, medians shown"),
            _ => String::new(),
        }
    );
    if let (Some(s_cpus), Some(v_cpus)) =
        (cfg["server_cpus"].as_array(), cfg["viewer_cpus"].as_array())
    {
        let list = |a: &Vec<Value>| {
            a.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = writeln!(
            s,
            "- the server pinned to CPU {}, the viewers to CPU {} (so their decoding doesn't evict the server's caches); Chromium unpinned",
            list(s_cpus),
            list(v_cpus)
        );
    }
    let other: Vec<f64> = run["scenarios"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["other_cpu"].as_f64()).collect())
        .unwrap_or_default();
    let other_max = other.iter().copied().fold(0.0f64, f64::max);
    let _ = writeln!(
        s,
        "- background load from other processes during the windows: up to {other_max:.2} cores{}\n",
        if other_max > 0.3 {
            " (noisy: re-run for tighter numbers)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "Reproduce (from the repository root):\n\n```sh\n{}\n```\n",
        inputs.command
    );

    // ---- the main table: telepi, each other server, and telepi's ratio to each ----
    let _ = writeln!(s, "### Figures\n");
    let others: Vec<&str> = servers.iter().copied().filter(|&x| x != "telepi").collect();
    let mut head = String::from("| metric | viewers | telepi |");
    for o in &others {
        let _ = write!(head, " {} |", title(o));
    }
    for o in &others {
        let _ = write!(head, " telepi / {o} |");
    }
    let _ = writeln!(
        s,
        "{head}\n| --- | ---: |{}",
        " ---: |".repeat(1 + 2 * others.len())
    );
    let row = |s: &mut String, label: &str, n: u64, shown_n: u64, path: &[&str], fmt: Fmt| {
        let t = metric(run, "telepi", n, path);
        let values: Vec<Option<f64>> = others.iter().map(|o| metric(run, o, n, path)).collect();
        let mut line = format!("| {label} | {shown_n} | {} |", fmt(t));
        for v in &values {
            let _ = write!(line, " {} |", fmt(*v));
        }
        for v in &values {
            let _ = write!(line, " {} |", ratio(t, *v));
        }
        let _ = writeln!(s, "{line}");
    };
    type Fmt = fn(Option<f64>) -> String;
    let rows: [(&str, &[&str], Fmt); 16] = [
        ("server CPU, s per s of streaming", &["cpu"], |v| f(v, 3)),
        (
            "server cycles per s (perf), millions",
            &["cycles_per_s"],
            |v| f(v.map(|x| x / 1e6), 0),
        ),
        (
            "server instructions per s (perf), millions",
            &["instructions_per_s"],
            |v| f(v.map(|x| x / 1e6), 0),
        ),
        ("RSS steady (median VmRSS), MiB", &["rss_steady_kib"], mib),
        ("RSS peak (VmHWM), MiB", &["rss_peak_kib"], mib),
        ("frames/s per viewer (mean)", &["fps_mean"], |v| f(v, 1)),
        ("frames/s, slowest viewer", &["fps_min"], |v| f(v, 1)),
        ("video received per viewer, kbit/s", &["kbps_mean"], |v| {
            f(v, 0)
        }),
        (
            "UDP received per viewer (all of it), kbit/s",
            &["wire_kbps_mean"],
            |v| f(v, 0),
        ),
        (
            "luma PSNR of decoded frames p50, dB",
            &["psnr_db", "p50"],
            |v| f(v, 1),
        ),
        (
            "capture → received p50, ms",
            &["latency_received_ms", "p50"],
            |v| f(v, 1),
        ),
        (
            "capture → received p99, ms",
            &["latency_received_ms", "p99"],
            |v| f(v, 1),
        ),
        (
            "capture → decoded p50, ms",
            &["latency_decoded_ms", "p50"],
            |v| f(v, 1),
        ),
        (
            "capture → decoded p99, ms",
            &["latency_decoded_ms", "p99"],
            |v| f(v, 1),
        ),
        (
            "POST /connect → first frame p50, ms",
            &["first_frame_ms", "p50"],
            |v| f(v, 0),
        ),
        (
            "POST /connect → first frame max, ms",
            &["first_frame_ms", "max"],
            |v| f(v, 0),
        ),
    ];
    for (label, path, fmt) in rows {
        // Rows nobody has a figure for (PSNR on the colour bars) are left out.
        if !counts.iter().any(|&n| {
            servers
                .iter()
                .any(|srv| metric(run, srv, n, path).is_some())
        }) {
            continue;
        }
        for &n in &counts {
            row(&mut s, label, n, n, path, fmt);
        }
    }
    let idle_rows: [(&str, &[&str], Fmt); 2] = [
        ("idle RSS (started, no viewer), MiB", &["idle_rss_kib"], mib),
        ("idle CPU, s per s", &["idle_cpu"], |v| f(v, 3)),
    ];
    for (label, path, fmt) in idle_rows {
        let n = counts.first().copied().unwrap_or(1);
        row(&mut s, label, n, 0, path, fmt);
    }
    let _ = writeln!(
        s,
        "\nCPU is utime + stime of the server process over the window; cycles and instructions \
         come from `perf stat` on the server over the same window (cycles track CPU time but \
         are not inflated by the hypervisor; instructions count work and barely move with \
         other load). \"received\" is the kernel receive timestamp (SO_TIMESTAMPNS) of the \
         frame's last datagram at the viewer's socket: on loopback, the server's capture → \
         sent. \"decoded\" adds the viewer's wait and its openh264 decode.\n"
    );
    // Viewer-side cost and sanity counters.
    let _ = writeln!(
        s,
        "<details><summary>Viewer cost and sanity counters</summary>\n"
    );
    let _ = writeln!(
        s,
        "| server | viewers | viewers connected | viewer CPU (all viewers, decoding), s/s | other load, cores | decode errors | unreadable stamps | frames with loss |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for &n in &counts {
        for srv in &servers {
            let g = |k: &str| metric(run, srv, n, &[k]);
            let _ = writeln!(
                s,
                "| {srv} | {n} | {} | {} | {} | {} | {} | {} |",
                f(g("viewers_connected"), 0),
                f(g("client_cpu"), 3),
                f(g("other_cpu"), 2),
                f(g("decode_errors"), 0),
                f(g("bad_stamps"), 0),
                f(g("lossy_frames"), 0),
            );
        }
    }
    let errors: Vec<String> = run["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sc| {
            let e = sc["errors"].as_array()?;
            (!e.is_empty()).then(|| {
                format!(
                    "{} × {}: {}",
                    sc["server"],
                    sc["viewers"],
                    Value::Array(e.clone())
                )
            })
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(s, "\nViewer errors: {}", errors.join("; "));
    }
    let _ = writeln!(s, "\n</details>\n");

    // ---- targets ----
    let _ = writeln!(
        s,
        "### Targets\n\n| target | measured | |\n| --- | --- | --- |"
    );
    let mark = |ok: Option<bool>| match ok {
        Some(true) => "✅ met",
        Some(false) => "❌ missed",
        None => "–",
    };
    let (lo, hi) = (
        counts.first().copied().unwrap_or(1),
        counts.last().copied().unwrap_or(1),
    );
    let c_lo = metric(run, "telepi", lo, &["cpu"]);
    let c_hi = metric(run, "telepi", hi, &["cpu"]);
    let scale = c_lo.zip(c_hi).map(|(a, b)| b / a);
    let cycles_ratio = |a: (&str, u64), b: (&str, u64)| {
        metric(run, a.0, a.1, &["cycles_per_s"])
            .zip(metric(run, b.0, b.1, &["cycles_per_s"]))
            .map(|(x, y)| format!("; in cycles {:.2}×", x / y))
            .unwrap_or_default()
    };
    let _ = writeln!(
        s,
        "| telepi CPU at {hi} viewers ≤ 1.3 × CPU at {lo} | {}× ({} vs {} s/s{}) | {} |",
        f(scale, 2),
        f(c_hi, 3),
        f(c_lo, 3),
        cycles_ratio(("telepi", hi), ("telepi", lo)),
        mark(scale.map(|r| r <= 1.3))
    );
    if servers.contains(&"baseline") {
        let b_lo = metric(run, "baseline", lo, &["cpu"]);
        let r = c_lo.zip(b_lo).map(|(t, b)| t / b);
        let _ = writeln!(
            s,
            "| telepi CPU ≤ 0.25 × baseline at {lo} viewer | {}× ({} vs {} s/s{}) | {} |",
            f(r, 2),
            f(c_lo, 3),
            f(b_lo, 3),
            cycles_ratio(("telepi", lo), ("baseline", lo)),
            mark(r.map(|r| r <= 0.25))
        );
    }
    let rss4 = counts.iter().copied().find(|&n| n == 4).unwrap_or(hi);
    let peak = metric(run, "telepi", rss4, &["rss_peak_kib"]);
    let steady = metric(run, "telepi", rss4, &["rss_steady_kib"]);
    let _ = writeln!(
        s,
        "| telepi RSS with {rss4} viewers ≤ 30 MB (28.6 MiB) | steady {} MiB, peak {} MiB | {} |",
        mib(steady),
        mib(peak),
        mark(peak.map(|p| p <= RSS_TARGET_KIB))
    );
    let worst = counts
        .iter()
        .filter_map(|&n| metric(run, "telepi", n, &["latency_received_ms", "p99"]).map(|v| (n, v)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let _ = writeln!(
        s,
        "| telepi p99 capture → sent ≤ one frame interval ({FRAME_INTERVAL_MS:.1} ms) | worst p99 {} ms (at {} viewers) | {} |\n",
        f(worst.map(|w| w.1), 1),
        worst.map_or("–".into(), |w| w.0.to_string()),
        mark(worst.map(|w| w.1 <= FRAME_INTERVAL_MS))
    );

    // ---- plots ----
    let _ = writeln!(s, "### Plots\n");
    let rel = relative_dir(out, &inputs.plots);
    for (alt, file) in plots {
        let _ = writeln!(s, "![{alt}]({rel}{file})\n");
    }

    // ---- Chromium ----
    if let Some(c) = &inputs.chromium {
        let _ = writeln!(
            s,
            "### Headless Chromium\n\n{} viewing each server for {} s (one tab). The page reads the stamp from each \
             decoded `<video>` frame (requestVideoFrameCallback → drawImage → getImageData of the top rows); \
             \"received\" uses the callback's `receiveTime`, \"presented\" `Date.now()` in the callback.\n",
            c["chromium"].as_str().unwrap_or("Chromium"),
            c["seconds"]
        );
        let _ = writeln!(
            s,
            "| server | frames/s | capture → received p50 / p99, ms | capture → presented p50 / p99, ms | first frame, ms | unreadable stamps |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for r in c["runs"].as_array().into_iter().flatten() {
            if let Some(e) = r["error"].as_str() {
                let _ = writeln!(
                    s,
                    "| {} | error: {e} | | | | |",
                    r["server"].as_str().unwrap_or("?")
                );
                continue;
            }
            let g = |k: &str, p: &str| r[k][p].as_f64();
            let _ = writeln!(
                s,
                "| {} | {} | {} / {} | {} / {} | {} | {} |",
                r["server"].as_str().unwrap_or("?"),
                f(r["fps"].as_f64(), 1),
                f(g("received_ms", "p50"), 1),
                f(g("received_ms", "p99"), 1),
                f(g("presented_ms", "p50"), 1),
                f(g("presented_ms", "p99"), 1),
                f(r["first_frame_ms"].as_f64(), 0),
                r["bad_stamps"].as_u64().unwrap_or(0),
            );
        }
        let _ = writeln!(s);
    }

    // ---- sizes ----
    let _ = writeln!(s, "### Size on disk\n\n| artifact | size |\n| --- | ---: |");
    for (what, bytes) in sizes(inputs) {
        let _ = writeln!(s, "| {what} | {} |", human(bytes));
    }
    let _ = writeln!(s, "\n{END}");
    s
}

fn relative_dir(doc: &Path, plots: &Path) -> String {
    let doc_dir = doc.parent().unwrap_or(Path::new(""));
    match plots.strip_prefix(doc_dir) {
        Ok(p) if p.as_os_str().is_empty() => String::new(),
        Ok(p) => format!("{}/", p.display()),
        Err(_) => format!("{}/", plots.display()),
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!(
            "{:.2} MiB ({bytes} bytes)",
            bytes as f64 / f64::from(1 << 20)
        )
    } else {
        format!("{:.0} KiB ({bytes} bytes)", bytes as f64 / 1024.0)
    }
}

/// The stripped telepi binary (host and any cross-built targets) and the baseline's venv.
fn sizes(inputs: &Inputs) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut bins = vec![(
        std::env::consts::ARCH.to_string(),
        inputs.telepi_bin.clone(),
    )];
    // Cross builds (board/build-cross.sh) land in target/<triple>/release/telepi.
    let target_dir = inputs
        .telepi_bin
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"));
    if let Ok(entries) = std::fs::read_dir(&target_dir) {
        let mut cross: Vec<_> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains('-'))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path().join("release/telepi"),
                )
            })
            .filter(|(_, p)| p.is_file())
            .collect();
        cross.sort();
        bins.extend(cross);
    }
    for (target, path) in bins {
        if let Some(size) = stripped_size(&path) {
            out.push((
                format!("telepi, stripped, {target} (`{}`)", path.display()),
                size,
            ));
        }
    }
    let venv = dir_size(&inputs.venv);
    if venv > 0 {
        out.push((
            format!(
                "baseline: Python venv with aiortc, aiohttp, numpy (`{}`)",
                inputs.venv.display()
            ),
            venv,
        ));
    }
    out
}

/// Size after `strip` (a copy; the release profile already strips, so
/// normally the same). Falls back to the file size when strip can't read it.
fn stripped_size(path: &Path) -> Option<u64> {
    let size = std::fs::metadata(path).ok()?.len();
    let tmp = std::env::temp_dir().join(format!("telepi-bench-strip-{}", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&tmp)
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let stripped = if ok {
        std::fs::metadata(&tmp).map(|m| m.len()).ok()
    } else {
        None
    };
    let _ = std::fs::remove_file(&tmp);
    Some(stripped.unwrap_or(size))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Today's date (UTC) as YYYY-MM-DD HH:MM.
pub fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mth = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mth <= 2);
    format!(
        "{y:04}-{mth:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}
