//! The SVG plots of the report: CPU, memory and scaling against viewers,
//! and the per-frame latency CDFs.

use super::{first_scenario, metric, servers_present, viewer_counts, Inputs};
use crate::svg::{Chart, Series};

fn color(server: &str) -> &'static str {
    match server {
        "telepi" => "#1f6fb4",
        "gstreamer" => "#2e9a47",
        _ => "#e0701e",
    }
}

/// Writes the SVGs; returns their paths relative to the markdown file.
pub fn plots(inputs: &Inputs) -> Result<Vec<(String, String)>, String> {
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
