//! The process's and the board's own figures, from `getrusage`, `/proc` and
//! `/sys` (no `vcgencmd`): CPU time, memory, threads and open files of
//! telepi, the SoC temperature, and on a Raspberry Pi the firmware's
//! throttling flags. The parsers are pure; [`Snapshot::read`] is the only I/O.
//!
//! Not `/proc/self/stat`: qemu-user (how CI runs the arm builds) fakes that
//! file with zeros for CPU time and threads, while `getrusage`,
//! `/proc/self/status` and `statm` reach the real process.

use super::Exposition;

/// The firmware's `get_throttled` bits (Raspberry Pi kernels): the low ones
/// are "now", the same ones 16 bits up "since boot".
const THROTTLE_FLAGS: [(u32, &str); 4] = [
    (0, "under_voltage"),
    (1, "arm_frequency_capped"),
    (2, "throttled"),
    (3, "soft_temperature_limit"),
];
const THROTTLED_FILE: &str = "/sys/devices/platform/soc/soc:firmware/get_throttled";
const TEMPERATURE_FILE: &str = "/sys/class/thermal/thermal_zone0/temp";

/// What one scrape read; `None` where the file is missing (not a Pi, no
/// thermal zone) or unreadable, so the metric is left out rather than faked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub cpu_temperature_celsius: Option<f64>,
    pub throttled: Option<u32>,
}

/// `/proc/self/status`'s `Threads:` line.
fn parse_status_threads(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// `/proc/self/statm`: the second field is resident pages.
fn parse_statm_resident_pages(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Millidegrees, as the thermal zone gives them.
fn parse_temperature(text: &str) -> Option<f64> {
    Some(text.trim().parse::<f64>().ok()? / 1000.0)
}

/// The firmware prints the flags in hex, with or without `0x`.
fn parse_throttled(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u32::from_str_radix(digits, 16).ok()
}

impl Snapshot {
    /// `started` is when telepi started, in seconds since the epoch.
    pub fn read(started: f64) -> Snapshot {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        // SAFETY: sysconf reads a configuration value; getrusage fills the
        // zeroed struct we own.
        let (page, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let ok = libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0;
            (libc::sysconf(libc::_SC_PAGESIZE), ok.then_some(usage))
        };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Snapshot {
            cpu_seconds: usage.map(|u| seconds(u.ru_utime) + seconds(u.ru_stime)),
            resident_bytes: read("/proc/self/statm")
                .and_then(|t| parse_statm_resident_pages(&t))
                .filter(|_| page > 0)
                .map(|pages| pages * page as u64),
            threads: read("/proc/self/status").and_then(|t| parse_status_threads(&t)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.count() as u64),
            start_time_seconds: Some(started),
            cpu_temperature_celsius: read(TEMPERATURE_FILE).and_then(|t| parse_temperature(&t)),
            throttled: read(THROTTLED_FILE).and_then(|t| parse_throttled(&t)),
        }
    }
}

pub(super) fn render(e: &mut Exposition, s: &Snapshot) {
    if let Some(v) = s.cpu_seconds {
        e.counter(
            "process_cpu_seconds_total",
            "User and system CPU time telepi used.",
            v,
        );
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory of telepi.",
            s.resident_bytes.map(|v| v as f64),
        ),
        (
            "process_threads",
            "Threads in telepi.",
            s.threads.map(|v| v as f64),
        ),
        (
            "process_open_fds",
            "Open file descriptors of telepi.",
            s.open_fds.map(|v| v as f64),
        ),
        (
            "process_start_time_seconds",
            "When telepi started, seconds since the epoch.",
            s.start_time_seconds,
        ),
        (
            "telepi_cpu_temperature_celsius",
            "The SoC's temperature (thermal zone 0).",
            s.cpu_temperature_celsius,
        ),
    ];
    // A figure whose source is missing is left out, not reported as 0.
    for (name, help, value) in gauges {
        if let Some(v) = value {
            e.gauge(name, help, v);
        }
    }
    if let Some(bits) = s.throttled {
        for (name, shift, help) in [
            (
                "telepi_throttled",
                0,
                "Raspberry Pi firmware flags active now (get_throttled).",
            ),
            (
                "telepi_throttled_since_boot",
                16,
                "Raspberry Pi firmware flags seen since boot (get_throttled).",
            ),
        ] {
            let mut f = e.family(name, "gauge", help);
            for (bit, flag) in THROTTLE_FLAGS {
                let on = bits >> (bit + shift) & 1;
                f.sample(&[("flag", flag)], f64::from(on));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_come_from_the_status_file() {
        let status = "Name:\ttelepi\nState:\tS (sleeping)\nThreads:\t7\nSigQ:\t0/1\n";
        assert_eq!(parse_status_threads(status), Some(7));
        assert_eq!(parse_status_threads("Name:\tx\n"), None);
    }

    #[test]
    fn statm_temperature_and_throttle_flags_parse() {
        assert_eq!(
            parse_statm_resident_pages("5000 1234 300 1 0 800 0\n"),
            Some(1234)
        );
        assert_eq!(parse_temperature("48312\n"), Some(48.312));
        assert_eq!(parse_temperature("n/a"), None);
        assert_eq!(parse_throttled("0x50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("50005"), Some(0x50005));
        assert_eq!(parse_throttled("zz"), None);
    }

    #[test]
    fn throttle_flags_split_into_now_and_since_boot() {
        let mut e = Exposition::default();
        render(
            &mut e,
            &Snapshot {
                throttled: Some(0x50005),
                ..Snapshot::default()
            },
        );
        let has = |line: &str| e.out.lines().any(|l| l == line);
        assert!(
            has(r#"telepi_throttled{flag="under_voltage"} 1"#),
            "{}",
            e.out
        );
        assert!(has(r#"telepi_throttled{flag="throttled"} 1"#));
        assert!(has(r#"telepi_throttled{flag="arm_frequency_capped"} 0"#));
        assert!(has(
            r#"telepi_throttled_since_boot{flag="under_voltage"} 1"#
        ));
        assert!(has(r#"telepi_throttled_since_boot{flag="throttled"} 1"#));
        assert!(has(
            r#"telepi_throttled_since_boot{flag="soft_temperature_limit"} 0"#
        ));
    }

    #[test]
    fn this_process_reads_itself() {
        let s = Snapshot::read(1.7e9);
        assert!(s.cpu_seconds.is_some_and(|c| c > 0.0), "{s:?}");
        assert!(s.resident_bytes.is_some_and(|b| b > 1 << 20), "{s:?}");
        assert!(s.threads.is_some_and(|t| t >= 1));
        assert!(s.open_fds.is_some_and(|n| n >= 3));
        assert_eq!(s.start_time_seconds, Some(1.7e9));
    }
}
