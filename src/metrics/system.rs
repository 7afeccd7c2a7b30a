//! The process's and the board's own figures, from `/proc` and `/sys` (no
//! `vcgencmd`): CPU time, memory, threads and open files of telepi, the SoC
//! temperature, and on a Raspberry Pi the firmware's throttling flags. The
//! parsers are pure; [`Snapshot::read`] is the only I/O.

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

/// Fields of `/proc/self/stat` that matter here.
#[derive(Debug, PartialEq)]
struct ProcStat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    threads: u64,
    /// Since boot, in clock ticks.
    start_ticks: u64,
}

/// `/proc/<pid>/stat`: the command name may hold spaces and parentheses, so
/// fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of proc(5), so field N is fields[N - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        cpu_ticks: field(14)? + field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
    })
}

/// `/proc/self/statm`: the second field is resident pages.
fn parse_statm_resident_pages(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// `/proc/stat`'s `btime`: boot time in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
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
    pub fn read() -> Snapshot {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        // SAFETY: sysconf only reads a configuration value.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let stat = read("/proc/self/stat").and_then(|t| parse_stat(&t));
        let ticks = (ticks > 0).then_some(ticks as f64);
        let boot = read("/proc/stat").and_then(|t| parse_boot_time(&t));
        Snapshot {
            cpu_seconds: stat
                .as_ref()
                .zip(ticks)
                .map(|(s, hz)| s.cpu_ticks as f64 / hz),
            resident_bytes: read("/proc/self/statm")
                .and_then(|t| parse_statm_resident_pages(&t))
                .filter(|_| page > 0)
                .map(|pages| pages * page as u64),
            threads: stat.as_ref().map(|s| s.threads),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.count() as u64),
            start_time_seconds: stat
                .as_ref()
                .zip(ticks)
                .zip(boot)
                .map(|((s, hz), boot)| boot as f64 + s.start_ticks as f64 / hz),
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
    if let Some(v) = s.resident_bytes {
        e.gauge(
            "process_resident_memory_bytes",
            "Resident memory of telepi.",
            v as f64,
        );
    }
    if let Some(v) = s.threads {
        e.gauge("process_threads", "Threads in telepi.", v as f64);
    }
    if let Some(v) = s.open_fds {
        e.gauge(
            "process_open_fds",
            "Open file descriptors of telepi.",
            v as f64,
        );
    }
    if let Some(v) = s.start_time_seconds {
        e.gauge(
            "process_start_time_seconds",
            "When telepi started, seconds since the epoch.",
            v,
        );
    }
    if let Some(v) = s.cpu_temperature_celsius {
        e.gauge(
            "telepi_cpu_temperature_celsius",
            "The SoC's temperature (thermal zone 0).",
            v,
        );
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
    fn proc_stat_fields_count_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as a thread may rename itself.
        let line = "4242 (tele pi) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    150 25 0 0 20 0 7 0 123456 1000000 2000 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                cpu_ticks: 175,
                threads: 7,
                start_ticks: 123456
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None, "too short");
    }

    #[test]
    fn statm_boot_time_temperature_and_throttle_flags_parse() {
        assert_eq!(
            parse_statm_resident_pages("5000 1234 300 1 0 800 0\n"),
            Some(1234)
        );
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1764633600\nprocesses 9\n"),
            Some(1764633600)
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
        let s = Snapshot::read();
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0));
        assert!(s.resident_bytes.is_some_and(|b| b > 1 << 20), "{s:?}");
        assert!(s.threads.is_some_and(|t| t >= 1));
        assert!(s.open_fds.is_some_and(|n| n >= 3));
        assert!(s.start_time_seconds.is_some_and(|t| t > 1.6e9));
    }
}
