//! The results of one run, as text for people or as one JSON object for `scripts/bench`.

use std::io::Write;
use std::time::Duration;

use crate::framing::Framing;
use crate::procfs::{Cpu, Resources};
use crate::session::Measured;

/// Process start → `initialize` answer, over several starts.
pub struct Startup {
    pub runs: usize,
    pub median: Duration,
    /// Median over the starts of the peak RSS right after the initialize answer.
    pub median_peak_rss_kib: u64,
}

/// Resources after initialize and after the run.
pub struct Soak {
    pub before: Resources,
    pub after: Resources,
}

pub struct Report {
    pub label: String,
    pub framing: Framing,
    pub method: String,
    pub in_flight: usize,
    pub measured: Measured,
    /// The server's CPU time and context switches during the run (warm-up included).
    pub server_cpu: Cpu,
    /// Requests the run sent, warm-up included: what `server_cpu` is divided by.
    pub requests_sent: u64,
    pub startup: Option<Startup>,
    pub soak: Option<Soak>,
}

impl Report {
    fn to_json(&self) -> serde_json::Value {
        let m = &self.measured;
        let resources = |r: &Resources| serde_json::json!({"rssKib": r.rss_kib, "peakRssKib": r.peak_rss_kib, "openFds": r.open_fds});
        serde_json::json!({
            "label": self.label,
            "framing": self.framing.name(),
            "method": self.method,
            "inFlight": self.in_flight,
            "answers": m.answers,
            "errors": m.errors,
            "elapsedSeconds": m.elapsed.as_secs_f64(),
            "perSecond": m.per_second(),
            "p50Us": m.quantile_us(0.50),
            "p90Us": m.quantile_us(0.90),
            "p99Us": m.quantile_us(0.99),
            "maxUs": m.quantile_us(1.0),
            "serverCpuUsPerRequest": self.cpu_us_per_request(),
            "serverSwitchesPerRequest": self.switches_per_request(),
            "startup": self.startup.as_ref().map(|s| serde_json::json!({
                "runs": s.runs,
                "medianMs": s.median.as_secs_f64() * 1000.0,
                "medianPeakRssKib": s.median_peak_rss_kib,
            })),
            "soak": self.soak.as_ref().map(|s| serde_json::json!({"before": resources(&s.before), "after": resources(&s.after)})),
        })
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu.on_cpu_ns as f64 / 1000.0 / self.requests_sent.max(1) as f64
    }

    fn switches_per_request(&self) -> f64 {
        self.server_cpu.switches as f64 / self.requests_sent.max(1) as f64
    }

    /// Writes the report to stdout.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", self.to_json())?;
            return Ok(());
        }
        let m = &self.measured;
        writeln!(
            out,
            "{} ({}, {} in flight, {})",
            self.label,
            self.framing.name(),
            self.in_flight,
            self.method
        )?;
        writeln!(
            out,
            "  {:.0} requests/s over {} answers in {:.3} s; latency p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {} errors",
            m.per_second(),
            m.answers,
            m.elapsed.as_secs_f64(),
            m.quantile_us(0.50),
            m.quantile_us(0.90),
            m.quantile_us(0.99),
            m.quantile_us(1.0),
            m.errors
        )?;
        writeln!(
            out,
            "  server: {:.2} µs of CPU and {:.2} context switches per request",
            self.cpu_us_per_request(),
            self.switches_per_request()
        )?;
        if let Some(s) = &self.startup {
            writeln!(
                out,
                "  start → initialize answer: median {:.2} ms of {} starts; peak RSS after initialize {} KiB",
                s.median.as_secs_f64() * 1000.0,
                s.runs,
                s.median_peak_rss_kib
            )?;
        }
        if let Some(s) = &self.soak {
            writeln!(
                out,
                "  soak: RSS {} → {} KiB (peak {} KiB), open fds {} → {}",
                s.before.rss_kib,
                s.after.rss_kib,
                s.after.peak_rss_kib,
                s.before.open_fds,
                s.after.open_fds
            )?;
        }
        Ok(())
    }
}
