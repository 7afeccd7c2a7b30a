//! Just enough SVG for line charts: linear or log10 x, linear y, a legend.

use std::fmt::Write;

pub struct Series {
    pub label: String,
    pub color: &'static str,
    /// SVG stroke-dasharray, "" for a solid line.
    pub dash: &'static str,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    /// Explicit x ticks (else chosen automatically).
    pub x_ticks: Option<Vec<f64>>,
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    pub series: Vec<Series>,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

fn nice_step(range: f64, target: usize) -> f64 {
    let raw = range / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Chart {
    pub fn render(&self) -> String {
        let pts = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_x || *x > 0.0));
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let y0 = self.y_min.unwrap_or(y0.min(0.0));
        let mut y1 = self.y_max.unwrap_or(y1 * 1.1);
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let (lx0, lx1) = if self.log_x {
            // Snap to 1-2-5 steps so the plot is not mostly empty decades.
            let snap_down = |v: f64| {
                let e = v.log10().floor();
                let m = v / 10f64.powf(e);
                let m = if m >= 5.0 {
                    5.0
                } else if m >= 2.0 {
                    2.0
                } else {
                    1.0
                };
                (m * 10f64.powf(e)).log10()
            };
            let snap_up = |v: f64| {
                let e = v.log10().floor();
                let m = v / 10f64.powf(e);
                let m = if m <= 1.0 {
                    1.0
                } else if m <= 2.0 {
                    2.0
                } else if m <= 5.0 {
                    5.0
                } else {
                    10.0
                };
                (m * 10f64.powf(e)).log10()
            };
            let lo = snap_down(x0);
            (lo, snap_up(x1).max(lo + 0.3))
        } else {
            (x0, if x1 > x0 { x1 } else { x0 + 1.0 })
        };
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| {
            let v = if self.log_x { x.log10() } else { x };
            LEFT + (v - lx0) / (lx1 - lx0) * pw
        };
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;

        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" font-size="15" font-weight="bold">{}</text>
"#,
            LEFT,
            esc(&self.title)
        );
        // Grid and ticks.
        let step = nice_step(y1 - y0, 6);
        let mut y = (y0 / step).ceil() * step;
        while y <= y1 + step * 1e-9 {
            let py = sy(y);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                py + 4.0,
                fmt_num(y)
            );
            y += step;
        }
        let xticks: Vec<f64> = match &self.x_ticks {
            Some(t) => t.clone(),
            None if self.log_x => (lx0.floor() as i32..=lx1.ceil() as i32)
                .flat_map(|e| {
                    let b = 10f64.powi(e);
                    [b, 2.0 * b, 5.0 * b]
                })
                .filter(|v| v.log10() >= lx0 - 1e-9 && v.log10() <= lx1 + 1e-9)
                .collect(),
            None => {
                let step = nice_step(lx1 - lx0, 8);
                let mut v = Vec::new();
                let mut x = (lx0 / step).ceil() * step;
                while x <= lx1 + 1e-9 {
                    v.push(x);
                    x += step;
                }
                v
            }
        };
        for x in xticks {
            let px = sx(x);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 16.0,
                fmt_num(x)
            );
        }
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
            LEFT + pw / 2.0,
            H - 14.0,
            esc(&self.x_label),
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        // Series and legend.
        for (i, series) in self.series.iter().enumerate() {
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_x || *x > 0.0))
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y.clamp(y0, y1))))
                .collect();
            let dash = if series.dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{}""#, series.dash)
            };
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                path.join(" "),
                series.color
            );
            if series.points.len() <= 12 {
                for p in &path {
                    let (x, y) = p.split_once(',').unwrap();
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{}"/>"#,
                        series.color
                    );
                }
            }
            let ly = TOP + 10.0 + i as f64 * 20.0;
            let lx = LEFT + pw + 14.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 24.0,
                series.color,
                lx + 30.0,
                ly + 4.0,
                esc(&series.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}
