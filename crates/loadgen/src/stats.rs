//! Measurements of a load run: delivery latency, per-viewer stalls, and the CPU time and
//! memory of the server process read from /proc.

use std::time::Duration;

/// Delivery latencies in microseconds, kept whole and sorted once at the end.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Vec<u32>,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d.as_micros().min(u128::from(u32::MAX)) as u32);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// p50, p99 and max in milliseconds.
    pub fn summary(&mut self) -> Option<(f64, f64, f64)> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let at = |q: f64| {
            let i = ((self.samples.len() - 1) as f64 * q).round() as usize;
            f64::from(self.samples[i]) / 1000.0
        };
        Some((at(0.50), at(0.99), at(1.0)))
    }
}

/// CPU time (user + system) and memory of one process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status. `pid` 0 means this process.
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let base = if pid == 0 {
        "/proc/self".to_owned()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{base}/stat"))?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; Linux
    // reports them in USER_HZ, which is 100 on every mainstream architecture.
    let cpu_seconds = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("{base}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_seconds,
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

/// Each process's sample, in order.
pub fn sample_each(pids: &[u32]) -> anyhow::Result<Vec<ProcSample>> {
    pids.iter().map(|&pid| sample(pid)).collect()
}

/// Sums samples of several processes (nginx's master and workers).
pub fn sample_all(pids: &[u32]) -> anyhow::Result<ProcSample> {
    Ok(sum(&sample_each(pids)?))
}

/// Several processes' samples added up.
pub fn sum(samples: &[ProcSample]) -> ProcSample {
    samples.iter().fold(ProcSample::default(), |mut t, s| {
        t.cpu_seconds += s.cpu_seconds;
        t.rss_kib += s.rss_kib;
        t.peak_rss_kib += s.peak_rss_kib;
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_proc_sampling() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let (p50, p99, max) = l.summary().unwrap();
        assert_eq!((p50.round(), p99, max), (51.0, 99.0, 100.0));
        let me = sample(0).unwrap();
        assert!(me.rss_kib > 0 && me.peak_rss_kib >= me.rss_kib);
    }
}
