//! The standard `process_*` metrics, read from Linux's /proc (no libc calls, no unsafe).
//!
//! Names, help texts and units follow client_golang's process collector, so stock
//! Grafana panels work: `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_virtual_memory_max_bytes`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`. Go has no thread
//! gauge here (its `go_threads` comes from the runtime collector); `process_threads` is
//! what the Rust `prometheus` crate's process collector exposes, so we reuse that name
//! rather than invent a `qprom_` one.
//!
//! Read errors leave the previous values in place (client_golang's default): process
//! metrics are a mix-in and must never break a scrape.

use crate::error::Result;
use crate::metric::MetricType;
use crate::registry::{FamilyDesc, Registry, Series};
use parking_lot::Mutex;
use std::io::Read;
use std::sync::Arc;

/// `AT_PAGESZ` and `AT_CLKTCK` in the ELF auxiliary vector (linux/auxvec.h).
const AT_PAGESZ: u64 = 6;
const AT_CLKTCK: u64 = 17;

/// Handles on the registered `process_*` series; [`ProcessMetrics::update`] refreshes them.
#[derive(Debug)]
pub struct ProcessMetrics {
    cpu: Arc<Series>,
    rss: Arc<Series>,
    vsize: Arc<Series>,
    vmax: Arc<Series>,
    open_fds: Arc<Series>,
    max_fds: Arc<Series>,
    start: Arc<Series>,
    threads: Arc<Series>,
    clk_tck: f64,
    page_size: f64,
    boot_time: Option<f64>,
    /// Reused for every /proc read, so an update allocates (almost) nothing.
    scratch: Mutex<Vec<u8>>,
}

/// Registers the `process_*` families (re-registering returns the existing ones) and
/// fills them once.
pub fn register(reg: &Registry) -> Result<ProcessMetrics> {
    let one = |name: &str, mtype, help: &str| -> Result<Arc<Series>> {
        reg.register(&FamilyDesc::new(name, mtype, help, &[]))?;
        let no_labels: [&str; 0] = [];
        reg.get_or_create(name, &no_labels, None)
    };
    use MetricType::{Counter, Gauge};
    let m = ProcessMetrics {
        cpu: one("process_cpu_seconds_total", Counter, "Total user and system CPU time spent in seconds.")?,
        rss: one("process_resident_memory_bytes", Gauge, "Resident memory size in bytes.")?,
        vsize: one("process_virtual_memory_bytes", Gauge, "Virtual memory size in bytes.")?,
        vmax: one("process_virtual_memory_max_bytes", Gauge, "Maximum amount of virtual memory available in bytes.")?,
        open_fds: one("process_open_fds", Gauge, "Number of open file descriptors.")?,
        max_fds: one("process_max_fds", Gauge, "Maximum number of open file descriptors.")?,
        start: one("process_start_time_seconds", Gauge, "Start time of the process since unix epoch in seconds.")?,
        threads: one("process_threads", Gauge, "Number of OS threads in the process.")?,
        // Linux has reported USER_HZ = 100 in /proc on every mainstream architecture for
        // decades, and 4 KiB pages on x86_64; the auxiliary vector gives the real values.
        clk_tck: auxv_value(AT_CLKTCK).filter(|v| *v > 0).unwrap_or(100) as f64,
        page_size: auxv_value(AT_PAGESZ).filter(|v| *v > 0).unwrap_or(4096) as f64,
        boot_time: boot_time(),
        scratch: Mutex::new(Vec::with_capacity(4096)),
    };
    m.update();
    Ok(m)
}

impl ProcessMetrics {
    /// Re-reads /proc/self and sets every value (called once per scrape).
    pub fn update(&self) {
        let mut buf = self.scratch.lock();
        if read_into("/proc/self/stat", &mut buf).is_ok() {
            if let Some(st) = parse_stat(&buf) {
                let _ = self.cpu.set((st.utime + st.stime) as f64 / self.clk_tck);
                let _ = self.rss.set(st.rss_pages as f64 * self.page_size);
                let _ = self.vsize.set(st.vsize as f64);
                let _ = self.threads.set(st.num_threads as f64);
                if let Some(bt) = self.boot_time {
                    let _ = self.start.set(bt + st.start_ticks as f64 / self.clk_tck);
                }
            }
        }
        if read_into("/proc/self/limits", &mut buf).is_ok() {
            let text = String::from_utf8_lossy(&buf);
            if let Some(v) = soft_limit(&text, "Max open files") {
                let _ = self.max_fds.set(v);
            }
            if let Some(v) = soft_limit(&text, "Max address space") {
                let _ = self.vmax.set(v);
            }
        }
        // Counts the descriptor read_dir itself holds, as client_golang and the Python
        // client do.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let _ = self.open_fds.set(dir.count() as f64);
        }
    }
}

/// The fields of /proc/self/stat we use (proc(5) numbering in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub utime: u64,       // 14
    pub stime: u64,       // 15
    pub num_threads: u64, // 20
    pub start_ticks: u64, // 22
    pub vsize: u64,       // 23, bytes
    pub rss_pages: u64,   // 24
}

/// Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat(b: &[u8]) -> Option<Stat> {
    let close = b.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(&b[close + 1..]).ok()?;
    // After the `)`, index 0 is field 3 (state): field n is at index n - 3.
    let mut f = rest.split_ascii_whitespace();
    let mut at = |skip: usize| -> Option<u64> { f.nth(skip)?.parse().ok() };
    let utime = at(11)?;
    let stime = at(0)?;
    let num_threads = at(4)?;
    let start_ticks = at(1)?;
    let vsize = at(0)?;
    let rss_pages = at(0)?;
    Some(Stat { utime, stime, num_threads, start_ticks, vsize, rss_pages })
}

/// The soft limit from a /proc/<pid>/limits row; `unlimited` is u64::MAX, as the procfs
/// library behind client_golang reports it.
pub fn soft_limit(limits: &str, row: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(row))?;
    match line[row.len()..].split_ascii_whitespace().next()? {
        "unlimited" => Some(u64::MAX as f64),
        v => v.parse::<u64>().ok().map(|v| v as f64),
    }
}

/// A value from this process's ELF auxiliary vector (/proc/self/auxv: native-endian
/// `(type, value)` word pairs, ended by type 0). This is where libc's `sysconf` gets
/// `_SC_CLK_TCK` and `_SC_PAGESIZE`.
pub fn auxv_value(key: u64) -> Option<u64> {
    let mut buf = Vec::new();
    read_into("/proc/self/auxv", &mut buf).ok()?;
    const W: usize = std::mem::size_of::<usize>();
    let word = |c: &[u8]| -> u64 {
        let mut a = [0u8; W];
        a.copy_from_slice(c);
        usize::from_ne_bytes(a) as u64
    };
    buf.chunks_exact(2 * W)
        .map(|p| (word(&p[..W]), word(&p[W..])))
        .take_while(|(k, _)| *k != 0)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// System boot time in unix seconds (`btime` in /proc/stat).
fn boot_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

fn read_into(path: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        // Field 2 may hold spaces and ')'; values here are fields 14,15,20,22,23,24.
        let line =
            b"42 (q ) (x) R 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 9 0 1234 5000000 250 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, Stat { utime: 7, stime: 3, num_threads: 9, start_ticks: 1234, vsize: 5_000_000, rss_pages: 250 });
    }

    #[test]
    fn limits_rows() {
        let t = "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max address space         unlimited            unlimited            bytes     \n\
                 Max open files            1024                 1048576              files     \n";
        assert_eq!(soft_limit(t, "Max open files"), Some(1024.0));
        assert_eq!(soft_limit(t, "Max address space"), Some(u64::MAX as f64));
        assert_eq!(soft_limit(t, "Max processes"), None);
    }
}
