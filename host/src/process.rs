//! The `process_*` metrics, read from Linux's /proc at scrape time, as Prometheus's Go client
//! exports them for CoreDNS, read at scrape time; the parsing is pure and tested.

use std::path::Path;

use gatherdns_core::metrics::families;
use gatherdns_core::metrics::snapshot::{Snapshot, Value};

/// Clock ticks per second of /proc's CPU times (`USER_HZ`, 100 on every Linux ABI).
const CLOCK_TICKS: f64 = 100.0;

/// What /proc says about the process; `None` where it could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Process {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit of open file descriptors.
    pub max_fds: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_memory: Option<u64>,
    /// Resident set size, bytes.
    pub resident_memory: Option<u64>,
    /// Start time, seconds since the Unix epoch.
    pub start_time: Option<f64>,
    /// OS threads.
    pub threads: Option<u64>,
}

impl Process {
    /// Reads /proc/self (and /proc/stat for the boot time). Fields that cannot be read stay
    /// `None` (another OS, a restricted /proc): a scrape never fails for them.
    pub fn read() -> Process {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let mut process = Process::default();
        if let Some(stat) = read("/proc/self/stat") {
            let boot = read("/proc/stat").and_then(|s| boot_time(&s));
            process.apply_stat(&stat, boot);
        }
        if let Some(status) = read("/proc/self/status") {
            process.resident_memory = status_kib(&status, "VmRSS:").map(|k| k * 1024);
        }
        if let Some(limits) = read("/proc/self/limits") {
            process.max_fds = max_open_files(&limits);
        }
        process.open_fds = std::fs::read_dir(Path::new("/proc/self/fd"))
            .ok()
            .map(|dir| dir.count() as u64);
        process
    }

    fn apply_stat(&mut self, stat: &str, boot_time: Option<u64>) {
        // The command name is in parentheses and may contain anything: fields start after
        // the last ')'. Field N of proc(5) is rest[N - 3].
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            self.cpu_seconds = Some((utime + stime) as f64 / CLOCK_TICKS);
        }
        self.threads = field(20);
        if let (Some(start), Some(boot)) = (field(22), boot_time) {
            self.start_time = Some(boot as f64 + start as f64 / CLOCK_TICKS);
        }
        self.virtual_memory = field(23);
    }

    /// Adds the `process_*` families to `snapshot`.
    pub fn add_to(&self, snapshot: &mut Snapshot) {
        let gauge = |s: &mut Snapshot, def, v: Option<u64>| {
            if let Some(v) = v {
                s.gauge(def, &[], v as f64);
            }
        };
        if let Some(cpu) = self.cpu_seconds {
            snapshot.put(&families::PROCESS_CPU, Vec::new(), Value::FloatCounter(cpu));
        }
        gauge(snapshot, &families::PROCESS_OPEN_FDS, self.open_fds);
        gauge(snapshot, &families::PROCESS_MAX_FDS, self.max_fds);
        gauge(
            snapshot,
            &families::PROCESS_VIRTUAL_MEMORY,
            self.virtual_memory,
        );
        gauge(
            snapshot,
            &families::PROCESS_RESIDENT_MEMORY,
            self.resident_memory,
        );
        gauge(snapshot, &families::PROCESS_THREADS, self.threads);
        if let Some(start) = self.start_time {
            snapshot.gauge(&families::PROCESS_START_TIME, &[], start);
        }
    }
}

/// `btime` of /proc/stat: boot time, seconds since the epoch.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A `Key:   123 kB` line of /proc/self/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The soft limit of `Max open files` in /proc/self/limits.
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (gatherdns (x) y) S 1 4242 4242 0 -1 4194560 300 0 0 0 \
                    150 50 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615";
        let mut p = Process::default();
        p.apply_stat(stat, Some(1_700_000_000));
        assert_eq!(p.cpu_seconds, Some(2.0));
        assert_eq!(p.threads, Some(3));
        assert_eq!(p.start_time, Some(1_700_000_123.45));
        assert_eq!(p.virtual_memory, Some(104_857_600));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert_eq!(
            status_kib("Name:\tx\nVmRSS:\t   5120 kB\n", "VmRSS:"),
            Some(5120)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[test]
    fn reading_this_process_never_fails() {
        let p = Process::read();
        if cfg!(target_os = "linux") {
            assert!(p.open_fds.is_some_and(|n| n > 0));
            assert!(p.resident_memory.is_some_and(|n| n > 0));
        }
    }
}
